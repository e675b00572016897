"""Serial links: a pseudo-terminal the emulator creates, or an existing port / pyserial URL.

The pty traps (docs/emulator.md, reference/libraries.md 2.3) and what we do about each:
- a fresh pty is cooked: `tty.setraw` on the slave right after `openpty`, before the path is
  printed;
- the master is non-blocking and driven by `add_reader`/`add_writer`, so no write can block the
  event loop; output waiting for a slow or absent reader is bounded (oldest frames dropped);
- the emulator keeps its own slave fd open, so a host closing the port never hangs the pty up
  (no EIO) and the same path can be opened again; EIO is still handled as a hang-up;
- a pty ignores the baud rate, so `baud` paces the pump's output like a real 8N1 line.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import threading
import tty
from pathlib import Path
from typing import Any

from ._runtime import Runtime

log = logging.getLogger("emulator.serial")

MAX_PENDING_OUT = 64 * 1024  # bytes waiting for the host; beyond it the oldest frames go
BITS_PER_BYTE = 10  # 8N1: start bit, 8 data bits, stop bit


class PtyLink:
    """The pump's end of a pseudo-terminal pair; hosts open `path`."""

    name = "pty"

    def __init__(self, runtime: Runtime, *, baud: int | None = None, link: Path | None = None):
        if baud is not None and baud <= 0:
            raise ValueError("baud must be > 0")
        self.runtime = runtime
        self.baud = baud
        self.link = link
        self.dropped_frames = 0
        self._out: collections.deque[bytes] = collections.deque()
        self._out_bytes = 0
        self._offset = 0  # bytes of _out[0] already written
        self._master = -1
        self._slave = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writing = False
        self._pacer: asyncio.Task[None] | None = None
        self.path = ""

    def open(self) -> str:
        master, slave = os.openpty()
        tty.setraw(slave)  # before anyone can see the path: a cooked pty mangles frames
        os.fchmod(slave, 0o600)  # frames carry patient data: no group (tty) access
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.path)
            tmp.replace(self.link)  # atomic: a stale link never points to nothing
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(master, self._readable)
        self.runtime.register(self.name, self.send)
        return self.path

    def close(self) -> None:
        if self._loop is not None and self._master >= 0:
            self._loop.remove_reader(self._master)
            if self._writing:
                self._loop.remove_writer(self._master)
        if self._pacer is not None:
            self._pacer.cancel()
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                if self.link.is_symlink():
                    self.link.unlink()

    # --- in ---------------------------------------------------------------------------------

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            # Hang-up (only if someone closed our own slave fd): pause reading briefly.
            assert self._loop is not None
            self._loop.remove_reader(self._master)
            self._loop.call_later(0.1, self._loop.add_reader, self._master, self._readable)
            return
        for reply in self.runtime.feed(self.name, data):
            self.send(reply)

    # --- out --------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if not self._out and self.baud is None:
            # Nothing waiting and no line to pace: one write, the usual answer's whole path
            # (what the pty does not take now is queued for the writer as below).
            try:
                n = os.write(self._master, data)
            except BlockingIOError:
                n = 0
            if n == len(data):
                return
            self._offset = n
        self._out.append(data)
        self._out_bytes += len(data)
        while self._out_bytes > MAX_PENDING_OUT and len(self._out) > 1:
            # Nobody reads: drop the oldest whole frames after the one being written (a real
            # line loses them too; hosts retry with the same command id).
            old = self._out[1]
            del self._out[1]
            self._out_bytes -= len(old)
            self.dropped_frames += 1
        if self.baud is None:
            self._write_now()
        elif self._pacer is None or self._pacer.done():
            assert self._loop is not None
            self._pacer = self._loop.create_task(self._pace())

    def _write_some(self, limit: int | None = None) -> int:
        """Write from the head of the queue; returns bytes written (0 if the pty is full)."""
        written = 0
        while self._out and (limit is None or written < limit):
            head = self._out[0]
            want = len(head) - self._offset
            if limit is not None:
                want = min(want, limit - written)
            try:
                n = os.write(self._master, head[self._offset : self._offset + want])
            except BlockingIOError:
                break
            written += n
            self._offset += n
            if self._offset == len(head):
                self._out.popleft()
                self._out_bytes -= len(head)
                self._offset = 0
            elif n < want:
                break  # the pty's queue is full
        return written

    def _write_now(self) -> None:
        self._write_some()
        assert self._loop is not None
        if self._out and not self._writing:
            self._writing = True
            self._loop.add_writer(self._master, self._writable)

    def _writable(self) -> None:
        self._write_some()
        if not self._out:
            assert self._loop is not None
            self._loop.remove_writer(self._master)
            self._writing = False

    async def _pace(self) -> None:
        """Release bytes no faster than the configured line: byte k of a burst leaves at
        (k + 1) * 10 / baud seconds, in chunks of about a millisecond."""
        assert self._loop is not None and self.baud is not None
        loop = self._loop
        byte_s = BITS_PER_BYTE / self.baud
        start = loop.time()
        released = 0
        while self._out:
            due = int((loop.time() - start) / byte_s) - released
            if due > 0:
                n = self._write_some(due)
                released += n if n else due  # a full pty still costs line time
                if not self._out:
                    return  # drained: a reply queued later starts its own line time
            await asyncio.sleep(max(byte_s, 0.001))


class PortError(Exception):
    """A `--port` that cannot be opened (missing device, no permission, a bad URL)."""


def _reason(exc: Exception) -> str:
    """pyserial's message without its repeated errno and port prefix."""
    errno_ = getattr(exc, "errno", None)
    if isinstance(errno_, int) and errno_ > 0:
        return os.strerror(errno_)
    text = str(exc)
    return text.rsplit("] ", 1)[-1] if "[Errno" in text else text


class SerialPortLink:
    """An existing serial device or pyserial URL (a socat pair, a USB adapter, socket://...).

    pyserial is blocking, so a reader thread hands bytes to the loop and a writer thread owns
    writes; the event loop never blocks on the port."""

    name = "serial"

    def __init__(self, runtime: Runtime, url: str, *, baud: int | None = None) -> None:
        self.runtime = runtime
        self.url = url
        self.baud = baud or 9600
        self._port: Any = None
        self._stop = threading.Event()
        self._out: collections.deque[bytes] = collections.deque()
        self._out_ready = threading.Condition()
        self._threads: list[threading.Thread] = []

    def open(self) -> str:
        import serial  # pyserial: only needed for this link

        try:
            self._port = serial.serial_for_url(self.url, baudrate=self.baud, timeout=0.05)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortError(f"cannot open serial port {self.url}: {_reason(exc)}") from None
        loop = asyncio.get_running_loop()
        self.runtime.register(self.name, self.send)
        self._threads = [
            threading.Thread(target=self._reader, args=(loop,), daemon=True, name="serial-rx"),
            threading.Thread(target=self._writer, daemon=True, name="serial-tx"),
        ]
        for t in self._threads:
            t.start()
        return self.url

    def _reader(self, loop: asyncio.AbstractEventLoop) -> None:
        port = self._port
        while not self._stop.is_set():
            try:
                data = port.read(max(1, port.in_waiting))
            except Exception as exc:  # pyserial raises SerialException and OSError alike
                if not self._stop.is_set():
                    log.error("serial port %s failed: %s", self.url, exc)
                return
            if data:
                loop.call_soon_threadsafe(self._deliver, data)

    def _deliver(self, data: bytes) -> None:
        for reply in self.runtime.feed(self.name, data):
            self.send(reply)

    def send(self, data: bytes) -> None:
        with self._out_ready:
            self._out.append(data)
            self._out_ready.notify()

    def _writer(self) -> None:
        while True:
            with self._out_ready:
                while not self._out and not self._stop.is_set():
                    self._out_ready.wait()
                if self._stop.is_set():
                    return
                data = self._out.popleft()
            try:
                self._port.write(data)
            except Exception as exc:  # pyserial raises SerialException and OSError alike
                log.error("serial port %s write failed: %s", self.url, exc)
                return

    def close(self) -> None:
        self._stop.set()
        with self._out_ready:
            self._out_ready.notify_all()
        for t in self._threads:
            t.join(timeout=1)
        if self._port is not None:
            self._port.close()
