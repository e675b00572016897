"""The pty rows of bench/roundtrip.py: the bare pty echo floor and the emulator's round trips.

`pty_echo` is the floor (a `python -c` process echoing every byte of a raw pseudo-terminal);
`BlockingPtyClient` is a clinician session on the emulator's pty with blocking os.write/os.read
on `protocol.HostSecurity` and `protocol.FrameDecoder`, the least client-side work a round trip
can take; `pty_rows` runs both side by side and times floor, status and therapy interleaved.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import secrets
import subprocess
import sys
import termios
import time
import tty
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _processes import BenchError, stop_process
from _roundtrip_emulator import (
    DOSES,
    EXCHANGE_TIMEOUT_S,
    FRAME_BYTES,
    REFILL,
    SERIAL,
    emulator,
)
from _roundtrip_timing import interleaved, watchdog

import protocol as p
from tests.e2e_client import PumpError

# The echo process of the floor (run with `python -c`, so it shares nothing with us).
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
