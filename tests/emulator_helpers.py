"""A pump device on a fake clock joined to in-memory hosts: the emulator's wire behaviour without
ports or brokers."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from pathlib import Path
from typing import Any

import firmware_model as fm
import protocol as p
from emulator import PumpDevice, open_device
from emulator._keys import key_path, read_key

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SERIAL = 1234
NS_PER_MS = 1_000_000
MORPHINE_25 = 25_000_000  # ng/mL
# RECORD_REFILL of a new pump: 20 mL of morphine 25 mg/mL (the threshold is given per test)
MORPHINE_FILL: dict[str, Any] = {
    "withdrawn_volume_nl": 0,
    "added_volume_nl": 20_000_000,
    "drug": p.Drug.MORPHINE,
    "concentration_ng_per_ml": 25_000_000,
    "concentration_unit": p.ConcentrationUnit.MG_PER_ML,
}


class Host:
    """One programmer: a HostSecurity plus seq numbering and the last program version read."""

    def __init__(self, rig: Rig, role: p.Role, key: p.SecretKey | None = None) -> None:
        self.rig = rig
        self.security = p.HostSecurity(
            SERIAL, role, key or rig.keys[role], rig.rng.randbytes, host_id=rig.next_host_id()
        )
        self.seq = 0
        self.version = 0

    def next_seq(self) -> int:
        self.seq = self.seq % 0xFFFF + 1
        return self.seq

    def handshake(self) -> p.SessionReady:
        (challenge,) = self.rig.send(self.security.hello(seq=self.next_seq()))
        event = self.security.receive(only_frame(challenge))
        assert isinstance(event, p.Send)
        self.next_seq()
        (ready,) = self.rig.send(event.data)
        est = self.security.receive(only_frame(ready))
        assert isinstance(est, p.Established)
        return est.ready

    def seal(self, message: p.Message) -> bytes:
        return self.security.seal(message, seq=self.next_seq())

    def call(self, message: p.Message) -> Any:
        """The pump's answer (a message, ERROR included), or None when it stays silent."""
        data = (
            self.seal(message)
            if self.security.established
            else self.security.plain(message, seq=self.next_seq())
        )
        return self.answer(self.rig.send(data))

    def answer(self, replies: list[bytes]) -> Any:
        if not replies:
            return None
        (reply,) = replies
        frame = only_frame(reply)
        if not frame.authenticated:
            return frame.decode()
        event = self.security.receive(frame)
        assert isinstance(event, p.Response)
        msg = event.message
        if hasattr(msg, "program_version") and not isinstance(msg, p.CommandStatus):
            self.version = msg.program_version
        return msg

    def command(self, cls: type[p.Message], /, **fields: Any) -> Any:
        names = {f.name for f in cls.FIELDS}
        if "command_id" in names:
            fields.setdefault("command_id", uuid.UUID(int=self.rig.rng.getrandbits(128)).bytes)
        if "expected_program_version" in names:
            fields.setdefault("expected_program_version", self.version)
        if "confirm_soft_limit" in names:
            fields.setdefault("confirm_soft_limit", False)
        return self.call(cls(**fields))

    def status(self) -> p.Status:
        st = self.call(p.GetStatus())
        assert isinstance(st, p.Status), st
        self.version = st.program_version
        return st


def events_of(rig: Rig, kind: fm.EventKind) -> list[fm.Event]:
    return [e for e in rig.pump.events() if e.kind is kind]


def assert_delivered_alike(rig: Rig, twin: Rig) -> None:
    """Therapy was not paused: the pump delivered exactly what its untouched twin did (to the
    nanolitre, by the program's count and truly out of the reservoir), and something."""
    a, b = rig.pump.status(), twin.pump.status()
    assert (a.program_total_nl, a.pumped_total_nl, a.reservoir_nl) == (
        b.program_total_nl,
        b.pumped_total_nl,
        b.reservoir_nl,
    )
    assert a.program_total_nl > 0


async def http_request(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on a fresh connection (the control plane's tests): status, headers
    and body. `body` is sent as JSON, `raw` as it is."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
    if token is not None:
        head += f"Authorization: Bearer {token}\r\n"
    writer.write((head + "Connection: close\r\n\r\n").encode() + data)
    response = await reader.read()
    writer.close()
    head_bytes, _, payload = response.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return int(lines[0].split()[1]), headers, payload


def only_frame(data: bytes) -> p.Frame:
    items = p.FrameDecoder().feed(data)
    assert len(items) == 1 and isinstance(items[0], p.Frame), items
    return items[0]


class Rig:
    """A pump device in a state directory, on a clock the test moves by hand."""

    def __init__(self, state_dir: Path, *, speed_milli: int = 1000, seed: int = 1, **kw: Any):
        self.state_dir = state_dir
        self.rng = random.Random(seed)
        self.mono_ns = 10**12
        self.wall_ms = T0
        self.speed_milli = speed_milli
        self.kw = kw
        self.device = self._open()
        self._host_ids = 100
        self.keys = {
            r: read_key(key_path(state_dir, r)) for r in (p.Role.CLINICIAN, p.Role.PATIENT)
        }

    def _open(self) -> PumpDevice:
        return open_device(
            self.state_dir,
            serial=self.kw.get("serial", SERIAL),
            profile=self.kw.get("profile"),
            speed_milli=self.speed_milli,
            wall=lambda: self.wall_ms,
            monotonic_ns=lambda: self.mono_ns,
            randbytes=self.rng.randbytes,
            stale_recovery_log=self.kw.get("stale_recovery_log", True),
        )

    @property
    def pump(self) -> fm.Pump:
        return self.device.pump

    def next_host_id(self) -> int:
        """Each Host is another programmer (one host_id supersedes its own older sessions)."""
        self._host_ids += 1
        return self._host_ids

    def sleep(self, ms: int) -> None:
        """Real time passes (model time passes at the speed factor)."""
        self.mono_ns += ms * NS_PER_MS
        self.wall_ms += ms
        self.device.tick()

    def advance(self, ms: int) -> None:
        """Model time jumps ahead (as the control plane's "advance" does); sessions stay open."""
        self.device.clock.jump_to(self.device.clock.now() + ms)
        self.device.tick()

    def restart(self, down_ms: int = 0) -> None:
        """Stop the emulator (cleanly), let `down_ms` of real time pass, start it again."""
        self.device.security.end_all()
        self.device.tick()
        self.device.flush()
        assert self.device.store is not None
        self.device.store.close()
        self.mono_ns += down_ms * NS_PER_MS
        self.wall_ms += down_ms
        self.device = self._open()

    def crash(self) -> None:
        """The process dies: nothing after the last commit survives."""
        assert self.device.store is not None
        self.device.store.close()
        self.device = self._open()

    def send(self, data: bytes) -> list[bytes]:
        out = []
        for item in p.FrameDecoder().feed(data):
            out.extend(self.device.receive(item))
        return out

    def host(self, role: p.Role = p.Role.CLINICIAN, *, handshake: bool = True) -> Host:
        h = Host(self, role)
        if handshake:
            h.handshake()
        return h

    def ready_pump(self, host: Host, *, dose_ng: int = 10_000_000) -> None:
        """Past the self test, filled with morphine 25 mg/mL and running `dose_ng` a day."""
        self.sleep(2_001)
        host.status()
        refill = host.command(p.RecordRefill, **MORPHINE_FILL, low_reservoir_threshold_nl=2_000_000)
        assert isinstance(refill, p.RefillResult), refill
        ack = host.command(p.SetContinuousDose, dose_ng_per_day=dose_ng, confirm_soft_limit=True)
        assert isinstance(ack, p.CommandAck), ack

    def model_state(self) -> dict[str, Any]:
        return fm.snapshot(self.pump)


def wait_ready(
    proc: Any,
    ready: Path,
    log: Path | None = None,
    timeout_s: float = 30,
    *,
    may_exit: bool = False,
) -> dict[str, Any]:
    """The JSON `pump-emulator serve --ready-file` (or `fleet`) writes once serving, from the
    subprocess `proc` (its output in `log`, or in its pipes): fails with that output if the
    process exits first, unless `may_exit` (a test that kills it while starting): then {}."""
    deadline = time.monotonic() + timeout_s
    while not ready.exists():
        if proc.poll() is not None:
            if may_exit:
                return {}
            output = log.read_text() if log is not None else proc.communicate()
            raise AssertionError(f"exited with {proc.returncode} before ready: {output}")
        assert time.monotonic() < deadline, f"no ready file after {timeout_s} s"
        time.sleep(0.02)
    info: dict[str, Any] = json.loads(ready.read_text())
    return info
