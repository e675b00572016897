#!/usr/bin/env python3
"""Fuzz target: the whole emulated pump (`PumpDevice.receive`: stream decoder items, sessions,
exactly-once command handling, the firmware model, the SQLite store behind it).

Set-up, once per process: `emulator.open_device` on a temporary state directory holding the
fixed role keys of _common.py, on a fake clock; the pump passes its self test, is filled with
morphine and runs a continuous dose; that state is kept as a pristine copy. For every input the
device gets a fresh session layer (fixed randomness) with the recorded clinician handshake
replayed into it, so every input meets the same established clinician session (and the seed
corpus's sealed frames verify in it). The clock does not move while inputs run.

Input: a byte stream; `FrameDecoder().feed(input)` items go through `device.receive(item)`.

Oracle: no exception escapes `receive`; every reply is one frame from the pump; nothing is
logged at ERROR level (the device turns a model exception into an INTERNAL answer and logs it);
and, unless the input holds a validly sealed command (checked independently with `hmac`; the
fuzzer cannot forge one, it can only keep one of the seeds intact), the model's state is
unchanged: `firmware_model.snapshot(pump, include_events=False)["state"]` without events,
next_seq, telemetry_frames and battery_used_bu (the event log and the telemetry battery charge
legitimately grow) equals the pristine one and no command reached the exactly-once layer. An
input with a validly sealed command is exempt from the state check and the device is reopened
from the pristine copy after it, so every input starts from the same state.

Run: .venv/bin/python fuzz/fuzz_device.py fuzz/corpus/device -max_total_time=600 (see README.md).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import importlib
import logging
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    atheris: Any = importlib.import_module("atheris")
    # Not firmware_model: atheris 2.3.0 miscompiles Pump.advance_to
    # (firmware_model._clock.ClockMixin.advance_to) on CPython 3.11 (the `while True` loop
    # jumps back one instruction past its head, so `self` is never loaded: AttributeError on
    # the first loop turn). README.md, "Known tool issue".
    _instrumented: Any = atheris.instrument_imports(include=["protocol", "emulator"])
else:
    _instrumented = contextlib.nullcontext()

with _instrumented:
    import firmware_model as fm
    import protocol as p
    from emulator import PumpDevice, open_device
    from emulator._keys import KEY_FILES
    from fuzz._common import (
        COMMAND_KINDS,
        KEY_BYTES,
        PUMP_ID,
        establish,
        handshake,
        instrument_codecs,
        only_frame,
        pump_security,
        sealed_role,
    )

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, as tests/emulator_helpers.py
STATE_PREFIX = "itp-fuzz-device-"
REPORT_EVERY = 100_000
VOLATILE = ("events", "next_seq", "telemetry_frames", "battery_used_bu")
STATS: collections.Counter[str] = collections.Counter()


class _ErrorLog(logging.Handler):
    """Collects ERROR records of the emulator's logger (model bugs, storage failures)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def therapy_state(pump: fm.Pump) -> dict[str, Any]:
    state = dict(fm.snapshot(pump, include_events=False)["state"])
    for key in VOLATILE:
        del state[key]
    return state


def _state_root() -> Path:
    """A fresh directory named after this process. libFuzzer ends the process with exit(),
    which skips Python's atexit handlers, so directories of processes that are gone are
    removed here, at the start of the next run."""
    tmp = Path(tempfile.gettempdir())
    for old in tmp.glob(f"{STATE_PREFIX}*"):
        pid = old.name.removeprefix(STATE_PREFIX)
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    root = tmp / f"{STATE_PREFIX}{os.getpid()}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    atexit.register(shutil.rmtree, root, True)
    return root


class DeviceRig:
    """One device per process, reopened from a pristine copy only after a valid command."""

    def __init__(self) -> None:
        self.root = _state_root()
        self.pristine = self.root / "pristine"
        self.work = self.root / "work"
        self.pristine.mkdir()
        for role, name in KEY_FILES.items():
            path = self.pristine / name
            path.write_text(KEY_BYTES[role].hex() + "\n", encoding="ascii")
            path.chmod(0o600)
        self.mono_ns = 10**12
        self.wall_ms = T0_MS
        self.errors = _ErrorLog()
        logging.getLogger("emulator").addHandler(self.errors)
        self.program_version = self._prepare()
        self.device = self._reopen()
        exchanges, _ = handshake(pump_security(), (p.Role.CLINICIAN,), self.now_ms)
        self.exchange = exchanges[0]
        self.baseline = therapy_state(self.device.pump)
        self.counts = self._counts()

    @property
    def now_ms(self) -> int:
        return self.mono_ns // 1_000_000

    def _open(self, state_dir: Path) -> PumpDevice:
        return open_device(
            state_dir,
            serial=PUMP_ID,
            wall=lambda: self.wall_ms,
            monotonic_ns=lambda: self.mono_ns,
            randbytes=random.Random(7).randbytes,
        )

    def _prepare(self) -> int:
        """Past the self test, filled with morphine 25 mg/mL, running 10 mg a day."""
        device = self._open(self.pristine)
        self.mono_ns += 2_001 * 1_000_000
        self.wall_ms += 2_001
        device.tick()
        device.security = pump_security()
        _, (host,) = handshake(device.security, (p.Role.CLINICIAN,), self.now_ms)

        def call(message: p.Message) -> p.Message:
            (reply,) = device.receive(only_frame(host.seal(message, seq=1)))
            event = host.receive(only_frame(reply))
            assert isinstance(event, p.Response), event
            return event.message

        status = call(p.GetStatus())
        assert isinstance(status, p.Status), status
        refill = call(
            p.RecordRefill(
                command_id=bytes(range(16)),
                expected_program_version=status.program_version,
                withdrawn_volume_nl=0,
                added_volume_nl=20_000_000,
                drug=p.Drug.MORPHINE,
                concentration_ng_per_ml=25_000_000,
                concentration_unit=p.ConcentrationUnit.MG_PER_ML,
                low_reservoir_threshold_nl=2_000_000,
                confirm_soft_limit=False,
            )
        )
        assert isinstance(refill, p.RefillResult), refill
        ack = call(
            p.SetContinuousDose(
                command_id=bytes(range(1, 17)),
                expected_program_version=refill.program_version,
                dose_ng_per_day=10_000_000,
                confirm_soft_limit=True,
            )
        )
        assert isinstance(ack, p.CommandAck), ack
        device.security.end_all()
        device.tick()
        assert device.flush() is None
        assert device.store is not None
        device.store.close()
        return ack.program_version

    def _reopen(self) -> PumpDevice:
        old = getattr(self, "device", None)
        if old is not None and old.store is not None:
            old.store.close()
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.copytree(self.pristine, self.work)
        return self._open(self.work)

    def _counts(self) -> tuple[int, int, int]:
        s = self.device.stats
        return (s.commands_applied, s.commands_rejected, s.duplicates)

    def reset(self) -> None:
        self.device = self._reopen()
        self.baseline = therapy_state(self.device.pump)
        self.counts = self._counts()

    def run(self, data: bytes) -> None:
        self.errors.records.clear()  # only what this input causes
        device = self.device
        device.security = pump_security()
        establish(device.security, (self.exchange,), self.now_ms)
        valid_command = False
        for item in p.FrameDecoder().feed(data):
            if isinstance(item, p.Frame) and sealed_role(item, (self.exchange,)) is not None:
                valid_command |= item.message_type.KIND in COMMAND_KINDS
            replies = device.receive(item)
            assert isinstance(replies, list), replies
            for reply in replies:
                frame = only_frame(reply)
                assert frame.from_pump and frame.pump_id == PUMP_ID, frame
        assert not self.errors.records, [r.getMessage() for r in self.errors.records]
        if valid_command:
            STATS["inputs with a valid sealed command (reset)"] += 1
            self.reset()
            return
        STATS["inputs checked"] += 1
        if STATS["inputs checked"] % REPORT_EVERY == 0:
            _report()
        assert self._counts() == self.counts, ("a command was handled", data.hex())
        state = therapy_state(device.pump)
        if state != self.baseline:
            diff = {k: (self.baseline[k], v) for k, v in state.items() if self.baseline[k] != v}
            raise AssertionError(f"state changed without a valid command: {diff}")


_RIG: DeviceRig | None = None


def rig() -> DeviceRig:
    global _RIG  # noqa: PLW0603
    if _RIG is None:
        _RIG = DeviceRig()
    return _RIG


def test_one_input(data: bytes) -> None:
    rig().run(data)


def _report() -> None:
    print(f"fuzz_device: {dict(STATS)}", file=sys.stderr)


def main() -> None:
    instrument_codecs(atheris.instrument_func)
    atexit.register(_report)
    rig()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
