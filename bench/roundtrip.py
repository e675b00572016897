"""Round-trip latency of the emulator on its two links, beside raw floors measured in the same run.

What it measures (microseconds per request/response, lower is better), six rows:

1. pty floor     a bare pseudo-terminal echo: `os.openpty()` (slave set raw at once), a separate
                 process blocking-reads the master and writes every byte back; the client
                 writes a 40-byte payload (the size of a sealed GET_STATUS) on the slave with
                 `os.write` and blocking-reads until 40 bytes came back.
2. pty status    `pump-emulator serve` in a subprocess, a clinician session on its pty, one
                 authenticated GET_STATUS per round trip: seal, write, read until the frame
                 with the same seq arrives, verify it (`HostSecurity.receive`) and decode STATUS.
                 Client: a blocking one written here on `protocol.HostSecurity` and
                 `protocol.FrameDecoder` (os.write/os.read on the pty opened raw), so the client
                 adds as little as possible.
3. pty therapy   the same session, SET_CONTINUOUS_DOSE with a fresh uuid4 command id each time
                 and the program version of the previous ack: includes the pump's durable
                 SQLite commit (WAL, synchronous=FULL, so an fsync) before it answers.
4. mqtt floor    a private mosquitto on a free loopback port; an echo client in a separate
                 process subscribes to `bench/req` and republishes each payload on `bench/rsp`;
                 the client publishes a 40-byte payload and awaits the echo (aiomqtt, QoS 1,
                 TCP_NODELAY on both clients, as the emulator uses; MQTT 3.1.1, aiomqtt's
                 default, where the emulator speaks MQTT 5: the same packets on the wire).
5. mqtt status   the emulator started with `--mqtt`; client `tests/e2e_client.py` (`Client` over
                 `MqttTransport`, asyncio + aiomqtt), GET_STATUS as in row 2.
6. mqtt therapy  SET_CONTINUOUS_DOSE as in row 3, over MQTT.

Every emulator run gets a fresh state directory (its pump is new: 2 s power-on self test, then a
refill of morphine and one dose before anything is timed); it is created on a real disk (not
tmpfs, where fsync costs nothing) and removed afterwards. The three rows of a link run side by
side (echo process and emulator both up) and are timed interleaved, as bench/codec.py does: in
`--rounds` rounds, each timing a share of every row in an order rotated each round, so drift
(CPU frequency, a neighbour's load) hits floor and emulator alike. Each row is preceded by
warm-up round trips that are not counted; this process's garbage collector is off while timing.

Run (from the repository root):

    .venv/bin/python bench/roundtrip.py            # 2000 status / 300 therapy round trips
    .venv/bin/python bench/roundtrip.py --quick    # smoke test, a few seconds
    .venv/bin/python bench/roundtrip.py --json     # the table, then the results as JSON

How to read the output: median and p99 (nearest rank; with --quick's 30 therapy round trips the
p99 is the maximum) of each series in microseconds, then the ratios of the median to the floor
of the same link: `pty status / floor` (target < 10x, and a median under 200 µs) and
`mqtt status / floor` (target < 1.5x), with PASS or MISS, and the therapy rows beside them.
Targets are reported, never enforced: the script exits 0 whatever the numbers (1 only if
something could not be measured). The MQTT rows need `/usr/sbin/mosquitto` (or `--broker`);
`--no-mqtt` skips them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import itertools
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import termios
import time
import tty
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.e2e_client

import aiomqtt

import protocol as p
from tests.e2e_client import Client, MqttTransport, PumpError

REPO = Path(__file__).resolve().parent.parent
SERIAL = 1234
FRAME_BYTES = 40  # a sealed GET_STATUS: header 14 + session 8 + payload 0 + tag 16 + crc 2
POST_S = 2.1  # the pump answers BUSY to commands for its first 2 s (power-on self test)
READY_TIMEOUT_S = 20.0
EXCHANGE_TIMEOUT_S = 5.0
NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
DOSES = (5_000_000, 4_000_000)  # ng/day of morphine, alternated so every command changes it
REFILL: dict[str, Any] = {
    "withdrawn_volume_nl": 0,
    "added_volume_nl": 20_000_000,
    "drug": p.Drug.MORPHINE,
    "concentration_ng_per_ml": 25_000_000,
    "concentration_unit": p.ConcentrationUnit.MG_PER_ML,
    "low_reservoir_threshold_nl": 2_000_000,
    "confirm_soft_limit": False,
}
PTY_STATUS_TARGET_X = 10.0
PTY_STATUS_TARGET_US = 200.0
MQTT_STATUS_TARGET_X = 1.5
ROWS = ("pty floor", "pty status", "pty therapy", "mqtt floor", "mqtt status", "mqtt therapy")

# The echo processes of the floors (run with `python -c`, so they share nothing with us).
PTY_ECHO = """
import os, sys
fd = int(sys.argv[1])
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:  # EIO: the slave side was closed, the bench is over
        break
    if not data:
        break
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
"""

MQTT_ECHO = """
import asyncio, socket, sys
import aiomqtt

async def main(host, port):
    opts = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    async with aiomqtt.Client(host, port, socket_options=opts) as c:
        await c.subscribe("bench/req", qos=1)
        print("ready", flush=True)
        async for m in c.messages:
            await c.publish("bench/rsp", m.payload, qos=1)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""

MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
max_queued_messages 100000
max_inflight_messages 100
set_tcp_nodelay true
"""


class BenchError(Exception):
    """Something could not be measured (a process did not start, an answer was wrong)."""


# --- results ------------------------------------------------------------------------------------


@dataclass
class Series:
    row: str
    client: str
    n: int
    median_us: float
    p99_us: float
    min_us: float
    max_us: float

    @classmethod
    def of(cls, row: str, client: str, samples_ns: list[int]) -> Series:
        s = sorted(samples_ns)
        rank = max(1, -(-99 * len(s) // 100))  # nearest rank
        return cls(
            row=row,
            client=client,
            n=len(s),
            median_us=statistics.median(s) / 1000,
            p99_us=s[rank - 1] / 1000,
            min_us=s[0] / 1000,
            max_us=s[-1] / 1000,
        )


@contextlib.contextmanager
def timing() -> Iterator[None]:
    """No garbage collection in this process while a series is timed."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise TimeoutError("no answer in time (watchdog)")


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Bound a series of blocking reads without a syscall per read: SIGALRM interrupts them."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def series_timeout(n: int) -> float:
    return 30.0 + n * 0.05


def measure(n: int, warmup: int, once: Callable[[], object]) -> list[int]:
    out = []
    clock = time.perf_counter_ns
    with watchdog(series_timeout(n + warmup)):
        for _ in range(warmup):
            once()
        with timing():
            for _ in range(n):
                t0 = clock()
                once()
                out.append(clock() - t0)
    return out


async def ameasure(n: int, warmup: int, once: Callable[[], Awaitable[object]]) -> list[int]:
    out = []
    clock = time.perf_counter_ns
    async with asyncio.timeout(series_timeout(n + warmup)):
        for _ in range(warmup):
            await once()
        with timing():
            for _ in range(n):
                t0 = clock()
                await once()
                out.append(clock() - t0)
    return out


# --- processes ----------------------------------------------------------------------------------


def stop_process(proc: subprocess.Popen[Any] | None, *, grace_s: float = 5.0) -> None:
    """SIGTERM, wait; SIGKILL if it does not go."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_tcp(port: int, proc: subprocess.Popen[Any], log: Path, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise BenchError(f"the broker exited ({proc.returncode}): {tail(log)}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.connect(("127.0.0.1", port))
                return
            except OSError:
                pass
        if time.monotonic() > deadline:
            raise BenchError(f"the broker does not accept on port {port}: {tail(log)}")
        time.sleep(0.02)


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


def fs_type(path: Path) -> str:
    """The file system type of the mount holding `path` (from /proc/self/mounts)."""
    path = path.resolve()
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mnt = parts[1].replace("\\040", " ")
        if (path == Path(mnt) or Path(mnt) in path.parents) and len(mnt) >= len(best):
            best, kind = mnt, parts[2]
    return kind


def state_parent(requested: Path | None) -> Path:
    """Where the emulator's state directories go: a real disk, so its fsync is real."""
    if requested is not None:
        return requested
    tmp = Path(tempfile.gettempdir())
    if fs_type(tmp) not in ("tmpfs", "ramfs", "unknown"):
        return tmp
    return REPO / "bench"


@dataclass
class Emulator:
    proc: subprocess.Popen[bytes]
    info: dict[str, Any]
    started: float  # time.monotonic() when its ready file appeared (the pump exists by then)
    key: p.SecretKey

    def wait_post(self) -> None:
        """Sleep until the power-on self test is over (commands before it get BUSY)."""
        time.sleep(max(0.0, self.started + POST_S - time.monotonic()))


@contextlib.contextmanager
def emulator(parent: Path, mqtt_port: int | None) -> Iterator[Emulator]:
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".state-", dir=parent))
    ready = work / "ready.json"
    log = work / "emulator.log"
    cmd = [
        str(REPO / ".venv" / "bin" / "pump-emulator"),
        "serve",
        "--state-dir",
        str(work / "pump"),
        "--pump-serial",
        str(SERIAL),
        "--ready-file",
        str(ready),
        "--beacon-interval",
        "0",
        "--log-level",
        "warning",
    ]
    if not Path(cmd[0]).exists():
        cmd[:1] = [sys.executable, "-m", "emulator.cli"]
    if mqtt_port is not None:
        cmd += ["--mqtt", f"mqtt://127.0.0.1:{mqtt_port}"]
    proc: subprocess.Popen[bytes] | None = None
    try:
        with log.open("wb") as out:
            started = time.monotonic()
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
            )
        deadline = started + READY_TIMEOUT_S
        while not ready.exists():
            if proc.poll() is not None:
                raise BenchError(f"the emulator exited ({proc.returncode}):\n{tail(log)}")
            if time.monotonic() > deadline:
                raise BenchError(f"the emulator wrote no ready file:\n{tail(log)}")
            time.sleep(0.01)
        started = time.monotonic()
        info = json.loads(ready.read_text())
        key = p.SecretKey.from_hex(Path(info["key_files"]["clinician"]).read_text().strip())
        yield Emulator(proc, info, started, key)
        stop_process(proc)
        if proc.returncode not in (0, -signal.SIGTERM):
            raise BenchError(f"the emulator stopped with {proc.returncode}:\n{tail(log)}")
    finally:
        stop_process(proc)
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def broker(exe: str, work: Path) -> Iterator[int]:
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(MOSQUITTO_CONF.format(port=port))
    log = work / "mosquitto.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [exe, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        wait_tcp(port, proc, log)
        yield port
    finally:
        stop_process(proc)


# --- pty ----------------------------------------------------------------------------------------


def read_exactly(fd: int, n: int) -> bytes:
    buf = os.read(fd, n)
    while len(buf) < n:
        more = os.read(fd, n - len(buf))
        if not more:
            raise BenchError("end of file on the pty")
        buf += more
    return buf


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@contextlib.contextmanager
def pty_echo() -> Iterator[Callable[[], None]]:
    """A bare pty echo in a separate process; yields one blocking 40-byte round trip."""
    master, slave = os.openpty()
    tty.setraw(slave)  # before anything is written: a cooked pty echoes and mangles bytes
    echo: subprocess.Popen[bytes] | None = None
    try:
        echo = subprocess.Popen(
            [sys.executable, "-c", PTY_ECHO, str(master)],
            pass_fds=(master,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        os.close(master)
        master = -1
        payload = bytes(range(FRAME_BYTES))

        def once() -> None:
            write_all(slave, payload)
            if read_exactly(slave, FRAME_BYTES) != payload:
                raise BenchError("the pty echo returned other bytes")

        yield once
    finally:
        os.close(slave)  # the echo's read fails with EIO and it exits
        if master >= 0:
            os.close(master)
        if echo is not None:
            try:
                echo.wait(2)
            except subprocess.TimeoutExpired:
                stop_process(echo)


class BlockingPtyClient:
    """A clinician session on the emulator's pty with blocking os.write/os.read: the least
    client-side work a round trip can take (seal, write, read, decode, verify)."""

    def __init__(self, path: str, key: p.SecretKey) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        termios.tcflush(self.fd, termios.TCIFLUSH)
        self.decoder = p.FrameDecoder()
        self.frames: collections.deque[p.Frame] = collections.deque()
        self.security = p.HostSecurity(SERIAL, p.Role.CLINICIAN, key, secrets.token_bytes, 7)
        self.seq = 0
        self.version = 0
        self.request_bytes = 0

    def close(self) -> None:
        os.close(self.fd)

    def _next_seq(self) -> int:
        self.seq = self.seq % 0xFFFF + 1
        return self.seq

    def _exchange(self, data: bytes, seq: int) -> p.Frame:
        write_all(self.fd, data)
        frames = self.frames
        while True:
            while frames:
                frame = frames.popleft()
                if frame.seq == seq and frame.msg_id != p.TelemetryBeacon.MSG_ID:
                    return frame
            for item in self.decoder.feed(os.read(self.fd, 4096)):
                if isinstance(item, p.Frame):
                    frames.append(item)

    def _event(self, frame: p.Frame) -> p.HostEvent:
        if frame.msg_id == p.Error.MSG_ID and not frame.authenticated:
            message = frame.decode()
            assert isinstance(message, p.Error)
            raise PumpError(message)
        return self.security.receive(frame)

    def handshake(self) -> None:
        with watchdog(EXCHANGE_TIMEOUT_S):
            seq = self._next_seq()
            event = self._event(self._exchange(self.security.hello(seq=seq), seq))
            if not isinstance(event, p.Send):
                raise BenchError(f"handshake: {event!r}")
            seq = self._next_seq()  # CONFIRM uses the HELLO's seq + 1
            event = self._event(self._exchange(event.data, seq))
            if not isinstance(event, p.Established):
                raise BenchError(f"handshake: {event!r}")

    def call(self, message: p.Message) -> Any:
        seq = self._next_seq()
        data = self.security.seal(message, seq=seq)
        self.request_bytes = len(data)
        event = self._event(self._exchange(data, seq))
        if not isinstance(event, p.Response):
            raise BenchError(f"unexpected answer: {event!r}")
        if isinstance(event.message, p.Error):
            raise PumpError(event.message)
        return event.message

    def status(self) -> p.Status:
        st = self.call(p.GetStatus())
        assert isinstance(st, p.Status)
        self.version = st.program_version
        return st

    def command(self, cls: type[p.Message], /, **fields: Any) -> Any:
        fields.update(command_id=uuid.uuid4().bytes, expected_program_version=self.version)
        answer = self.call(cls(**fields))
        if hasattr(answer, "program_version"):
            self.version = answer.program_version
        return answer


Variant = tuple[Callable[[], object], int, int]  # one round trip, how many to time, warm-up
AsyncVariant = tuple[Callable[[], Awaitable[object]], int, int]


def share(total: int, rounds: int, r: int) -> int:
    """Round trips of a series timed in round r."""
    return total // rounds + (1 if r < total % rounds else 0)


def rotated(names: list[str], r: int) -> list[str]:
    k = r % len(names)
    return names[k:] + names[:k]


def interleaved(variants: dict[str, Variant], rounds: int) -> dict[str, list[int]]:
    """Warm every variant up, then time them in `rounds` rounds, each a share of every series in
    an order rotated each round (as bench/codec.py does): drift hits every row alike."""
    for once, _n, warmup in variants.values():
        measure(0, warmup, once)
    samples: dict[str, list[int]] = {name: [] for name in variants}
    for r in range(rounds):
        for name in rotated(list(variants), r):
            once, n, _warmup = variants[name]
            samples[name] += measure(share(n, rounds, r), 0, once)
    return samples


async def ainterleaved(variants: dict[str, AsyncVariant], rounds: int) -> dict[str, list[int]]:
    """`interleaved` for coroutines."""
    for once, _n, warmup in variants.values():
        await ameasure(0, warmup, once)
    samples: dict[str, list[int]] = {name: [] for name in variants}
    for r in range(rounds):
        for name in rotated(list(variants), r):
            once, n, _warmup = variants[name]
            samples[name] += await ameasure(share(n, rounds, r), 0, once)
    return samples


def pty_rows(parent: Path, n: int, n_therapy: int, warmup: int, rounds: int) -> dict[str, Any]:
    with pty_echo() as floor, emulator(parent, None) as emu:
        client = BlockingPtyClient(emu.info["port"], emu.key)
        try:
            client.handshake()
            with watchdog(10.0):
                client.status()
            if client.request_bytes != FRAME_BYTES:
                raise BenchError(f"a sealed GET_STATUS is {client.request_bytes} bytes")
            emu.wait_post()
            with watchdog(10.0):
                while True:  # the pump's clock started a little before the ready file
                    try:
                        client.command(p.RecordRefill, **REFILL)
                        break
                    except PumpError as exc:
                        if exc.code is not p.ErrorCode.BUSY:
                            raise
                        time.sleep(0.05)
                client.command(
                    p.SetContinuousDose, dose_ng_per_day=DOSES[1], confirm_soft_limit=False
                )
            doses = itertools.cycle(DOSES)

            def therapy() -> None:
                dose = next(doses)
                client.command(p.SetContinuousDose, dose_ng_per_day=dose, confirm_soft_limit=False)

            samples = interleaved(
                {
                    "pty floor": (floor, n, warmup),
                    "pty status": (client.status, n, warmup),
                    "pty therapy": (therapy, n_therapy, max(1, warmup // 10)),
                },
                rounds,
            )
            with watchdog(10.0):
                st = client.status()
            if st.daily_dose_ng not in DOSES:
                raise BenchError(f"the pump's dose is {st.daily_dose_ng}")
            return samples
        finally:
            client.close()


# --- mqtt ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def mqtt_echo(port: int, work: Path) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """A bare aiomqtt echo in a separate process; yields one 40-byte QoS 1 round trip."""
    log = work / "mqtt-echo.log"
    with log.open("wb") as err:
        echo = subprocess.Popen(
            [sys.executable, "-c", MQTT_ECHO, "127.0.0.1", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    try:
        assert echo.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(echo.stdout.readline), 15)
        if line.strip() != b"ready":
            raise BenchError(f"the MQTT echo did not start:\n{tail(log)}")
        async with aiomqtt.Client("127.0.0.1", port, socket_options=[NODELAY]) as c:
            await c.subscribe("bench/rsp", qos=1)
            messages = c.messages.__aiter__()
            counter = 0

            async def once() -> None:
                nonlocal counter
                counter += 1
                payload = counter.to_bytes(8, "little") + bytes(FRAME_BYTES - 8)
                await c.publish("bench/req", payload, qos=1)
                m = await anext(messages)
                if m.payload != payload:
                    raise BenchError("the MQTT echo returned another payload")

            async with asyncio.timeout(10):  # a first exchange, bounded: is the echo there?
                await once()
            yield once
    finally:
        stop_process(echo)
        if echo.stdout is not None:
            echo.stdout.close()


async def wait_online(port: int) -> None:
    """The emulator announces `online` (retained) after subscribing to its command topic."""
    async with (
        asyncio.timeout(READY_TIMEOUT_S),
        aiomqtt.Client("127.0.0.1", port, socket_options=[NODELAY]) as c,
    ):
        await c.subscribe(f"itp/v1/{SERIAL}/status", qos=1)
        async for m in c.messages:
            if m.payload == b"online":
                return


async def mqtt_rows(
    emu: Emulator, port: int, work: Path, n: int, n_therapy: int, warmup: int, rounds: int
) -> dict[str, Any]:
    async with mqtt_echo(port, work) as floor:
        await wait_online(port)
        transport = await MqttTransport("127.0.0.1", port, SERIAL).open()
        try:
            client = Client(transport, SERIAL, p.Role.CLINICIAN, emu.key)
            await client.handshake()
            await client.status()
            await asyncio.sleep(max(0.0, emu.started + POST_S - time.monotonic()))
            while True:
                try:
                    await client.command(p.RecordRefill, **REFILL)
                    break
                except PumpError as exc:
                    if exc.code is not p.ErrorCode.BUSY:
                        raise
                    await asyncio.sleep(0.05)
            await client.command(p.SetContinuousDose, dose_ng_per_day=DOSES[1])
            doses = itertools.cycle(DOSES)

            async def therapy() -> None:
                dose = next(doses)
                await client.command(p.SetContinuousDose, dose_ng_per_day=dose)

            samples = await ainterleaved(
                {
                    "mqtt floor": (floor, n, warmup),
                    "mqtt status": (client.status, n, warmup),
                    "mqtt therapy": (therapy, n_therapy, max(1, warmup // 10)),
                },
                rounds,
            )
            st = await client.status()
            if st.daily_dose_ng not in DOSES:
                raise BenchError(f"the pump's dose is {st.daily_dose_ng}")
            return samples
        finally:
            await transport.close()


# --- report -------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(results: dict[str, Series], notes: list[str]) -> dict[str, Any]:
    head = (
        f"{'round trip':<14} {'median µs':>10} {'p99 µs':>10} {'min µs':>9} {'max µs':>10} {'n':>6}"
    )
    print("\n" + head + "   client")
    print("-" * (len(head) + 12))
    for row in ROWS:
        s = results.get(row)
        if s is None:
            print(f"{row:<14} {'n/a':>10}")
            continue
        print(
            f"{row:<14} {s.median_us:>10,.1f} {s.p99_us:>10,.1f} {s.min_us:>9,.1f} "
            f"{s.max_us:>10,.1f} {s.n:>6}   {s.client}"
        )
    ratios: dict[str, Any] = {}

    def ratio(name: str, num: str, den: str) -> float | None:
        if num not in results or den not in results:
            return None
        a, b = results[num], results[den]
        value = a.median_us / b.median_us
        ratios[name] = {"median": value, "p99": a.p99_us / b.p99_us}
        return value

    print("\nratios of medians (p99 ratio in brackets):")
    for link in ("pty", "mqtt"):
        status = ratio(f"{link} status / floor", f"{link} status", f"{link} floor")
        therapy = ratio(f"{link} therapy / floor", f"{link} therapy", f"{link} floor")
        extra = ratio(f"{link} therapy / status", f"{link} therapy", f"{link} status")
        if status is None:
            print(f"  {link}: not measured")
            continue
        s = results[f"{link} status"]
        if link == "pty":
            ok = status < PTY_STATUS_TARGET_X and s.median_us < PTY_STATUS_TARGET_US
            target = (
                f"target < {PTY_STATUS_TARGET_X:g}x and median < {PTY_STATUS_TARGET_US:g} µs: "
                f"{verdict(ok)}"
            )
        else:
            ok = status < MQTT_STATUS_TARGET_X
            target = f"target < {MQTT_STATUS_TARGET_X:g}x: {verdict(ok)}"
        ratios[f"{link} status / floor"]["target_met"] = ok
        r = ratios
        print(
            f"  {link} status / floor  = {status:6.2f}x "
            f"[{r[f'{link} status / floor']['p99']:.2f}x]  ({target})"
        )
        assert therapy is not None and extra is not None
        print(
            f"  {link} therapy / floor = {therapy:6.2f}x "
            f"[{r[f'{link} therapy / floor']['p99']:.2f}x]  "
            f"(therapy / status = {extra:.2f}x; a durable SQLite commit per command, "
            "no target)"
        )
    if notes:
        print()
        for note in notes:
            print(f"note: {note}")
    return ratios


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=2000, help="round trips per floor/status row (2000)")
    ap.add_argument("--n-therapy", type=int, default=300, help="round trips per therapy row (300)")
    ap.add_argument(
        "--warmup",
        type=int,
        default=200,
        help="untimed round trips before each floor/status series (200; therapy: a tenth)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=10,
        help="the rows of a link are timed interleaved in this many rounds (10)",
    )
    ap.add_argument("--quick", action="store_true", help="smoke test: 200 status, 30 therapy")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    ap.add_argument(
        "--state-dir",
        type=Path,
        help="where the emulator's temporary state directories go (default: the temp dir if "
        "it is on a real disk, else bench/); each is removed afterwards",
    )
    ap.add_argument("--broker", default="/usr/sbin/mosquitto", help="the mosquitto binary")
    ap.add_argument("--no-mqtt", action="store_true", help="skip the MQTT rows")
    ap.add_argument("--no-pty", action="store_true", help="skip the pty rows")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.n_therapy, args.warmup, args.rounds = 200, 30, 50, 5
    if args.n < 1 or args.n_therapy < 1 or args.warmup < 0 or args.rounds < 1:
        ap.error("--n, --n-therapy and --rounds must be >= 1, --warmup >= 0")
    return args


def run(args: argparse.Namespace, results: dict[str, Series], notes: list[str]) -> None:
    parent = state_parent(args.state_dir)
    kind = fs_type(parent)
    print(f"emulator state: fresh directories under {parent} ({kind}), removed afterwards")
    if kind in ("tmpfs", "ramfs"):
        notes.append(f"{parent} is {kind}: the therapy rows do not include a real fsync")
    n, nt, w, rounds = args.n, args.n_therapy, args.warmup, args.rounds
    clients = {
        "pty floor": "python -c echo process, blocking",
        "pty status": "blocking os.read/os.write + HostSecurity (this file)",
        "mqtt floor": "aiomqtt echo process, QoS 1",
        "mqtt status": "tests/e2e_client.py Client + MqttTransport (asyncio)",
    }
    clients["pty therapy"] = clients["pty status"]
    clients["mqtt therapy"] = clients["mqtt status"]
    if not args.no_pty:
        for row, samples in pty_rows(parent, n, nt, w, rounds).items():
            results[row] = Series.of(row, clients[row], samples)
    if args.no_mqtt:
        return
    if not Path(args.broker).exists():
        notes.append(f"{args.broker} not found: the MQTT rows are skipped")
        return
    with (
        tempfile.TemporaryDirectory(prefix="itp-bench-") as tmp,
        broker(args.broker, Path(tmp)) as port,
        emulator(parent, port) as emu,
    ):
        rows = asyncio.run(mqtt_rows(emu, port, Path(tmp), n, nt, w, rounds))
    for row, samples in rows.items():
        results[row] = Series.of(row, clients[row], samples)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds the finally blocks: nothing leaks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    print("bench/roundtrip.py: emulator round trips on pty and MQTT vs raw floors")
    print(f"python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    print(
        f"status rows: {args.n} round trips, therapy rows: {args.n_therapy}, "
        f"warm-up {args.warmup} (therapy {max(1, args.warmup // 10)}), "
        f"interleaved in {args.rounds} rounds"
    )
    results: dict[str, Series] = {}
    notes: list[str] = []
    failed = None
    try:
        run(args, results, notes)
    except (
        BenchError,
        PumpError,
        p.ProtocolError,
        TimeoutError,
        OSError,
        aiomqtt.MqttError,
    ) as exc:
        failed = f"{type(exc).__name__}: {exc}"
    except KeyboardInterrupt:
        print("\ninterrupted; subprocesses stopped, state directories removed", file=sys.stderr)
        return 130
    ratios = report(results, notes)
    if args.json:
        print(
            json.dumps(
                {
                    "results": {k: asdict(v) for k, v in results.items()},
                    "ratios": ratios,
                    "error": failed,
                },
                indent=2,
            )
        )
    if failed:
        print(f"\nFAILED: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
