"""A minimal programmer built on `protocol/` only, for the emulator's end-to-end tests.

Two transports (a serial line opened raw, and MQTT) under one small client that runs the
handshake, seals requests and matches answers by seq. It is deliberately plain: the real host
library is `programmer/`; this one exists so the emulator is tested against the documented
protocol and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import termios
import tty
import uuid
from typing import Any

import aiomqtt

import protocol as p

TIMEOUT_S = 5.0


class SerialTransport:
    """A serial device (a pty path) opened raw and non-blocking, read with add_reader."""

    def __init__(self, path: str | None = None, *, fd: int | None = None) -> None:
        if fd is None:
            assert path is not None
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            tty.setraw(fd)
            termios.tcflush(fd, termios.TCIFLUSH)
        else:
            os.set_blocking(fd, False)
        self.fd = fd
        self.decoder = p.FrameDecoder()
        self.frames: asyncio.Queue[p.Frame] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except (BlockingIOError, OSError):
            return
        for item in self.decoder.feed(data):
            if isinstance(item, p.Frame):
                self.frames.put_nowait(item)

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            view = view[n:]

    async def recv(self) -> p.Frame:
        frame: p.Frame = await self.frames.get()
        return frame

    async def close(self) -> None:
        self.loop.remove_reader(self.fd)
        os.close(self.fd)


class MqttTransport:
    """A host on MQTT: publishes on the pump's cmd topic, reads its rsp topic."""

    def __init__(self, host: str, port: int, serial: int) -> None:
        self.host, self.port, self.serial = host, port, serial
        self.frames: asyncio.Queue[p.Frame] = asyncio.Queue()
        self.client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> MqttTransport:
        self.client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=f"test-host-{secrets.token_hex(4)}",
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        await self.client.__aenter__()
        await self.client.subscribe(f"itp/v1/{self.serial}/rsp", qos=1)
        self._task = asyncio.create_task(self._pump())
        return self

    async def _pump(self) -> None:
        assert self.client is not None
        async for m in self.client.messages:
            assert isinstance(m.payload, bytes)
            for item in p.FrameDecoder().feed(m.payload):
                if isinstance(item, p.Frame):
                    self.frames.put_nowait(item)

    async def send(self, data: bytes, *, retain: bool = False) -> None:
        assert self.client is not None
        await self.client.publish(f"itp/v1/{self.serial}/cmd", data, qos=1, retain=retain)

    async def recv(self) -> p.Frame:
        frame: p.Frame = await self.frames.get()
        return frame

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        if self.client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self.client.__aexit__(None, None, None)


class PumpError(Exception):
    def __init__(self, error: p.Error) -> None:
        super().__init__(f"{error.code.name}: {error.detail}")
        self.error = error
        self.code = error.code


class Client:
    """One session with one pump."""

    def __init__(self, transport: Any, serial: int, role: p.Role, key: p.SecretKey) -> None:
        self.t = transport
        self.serial = serial
        self.security = p.HostSecurity(
            serial, role, key, secrets.token_bytes, host_id=secrets.randbits(32)
        )
        self.seq = 0
        self.version = 0

    def _next_seq(self) -> int:
        self.seq = (self.seq % 0xFFFF) + 1
        return self.seq

    async def exchange(self, data: bytes, seq: int, timeout: float = TIMEOUT_S) -> p.Frame:
        await self.t.send(data)
        async with asyncio.timeout(timeout):
            while True:
                frame: p.Frame = await self.t.recv()
                if frame.seq == seq and frame.msg_id != p.TelemetryBeacon.MSG_ID:
                    return frame

    async def handshake(self) -> p.SessionReady:
        seq = self._next_seq()
        frame = await self.exchange(self.security.hello(seq=seq), seq)
        event = self._host_event(frame)
        assert isinstance(event, p.Send), event
        self.seq = (self.seq % 0xFFFF) + 1  # CONFIRM uses hello seq + 1
        frame = await self.exchange(event.data, self.seq)
        event = self._host_event(frame)
        assert isinstance(event, p.Established), event
        return event.ready

    def _host_event(self, frame: p.Frame) -> p.HostEvent:
        if frame.msg_id == p.Error.MSG_ID and not frame.authenticated:
            raise PumpError(frame.decode())  # type: ignore[arg-type]
        return self.security.receive(frame)

    async def call(self, message: p.Message, timeout: float = TIMEOUT_S) -> Any:
        """Send a request (sealed if the session is up, else plain); return the answer or raise
        PumpError for an ERROR answer."""
        seq = self._next_seq()
        if self.security.established:
            data = self.security.seal(message, seq=seq)
        else:
            data = self.security.plain(message, seq=seq)
        frame = await self.exchange(data, seq, timeout)
        event = self._host_event(frame)
        assert isinstance(event, p.Response), event
        if isinstance(event.message, p.Error):
            raise PumpError(event.message)
        return event.message

    async def send_raw(self, data: bytes) -> None:
        await self.t.send(data)

    async def status(self) -> p.Status:
        st: p.Status = await self.call(p.GetStatus())
        self.version = st.program_version
        return st

    async def command(self, cls: type[p.Message], /, **fields: Any) -> Any:
        """A state-changing command with a fresh command id (and the last version read)."""
        names = {f.name for f in cls.FIELDS}
        if "command_id" in names:
            fields.setdefault("command_id", uuid.uuid4().bytes)
        if "expected_program_version" in names:
            fields.setdefault("expected_program_version", self.version)
        if "confirm_soft_limit" in names:
            fields.setdefault("confirm_soft_limit", False)
        answer = await self.call(cls(**fields))
        if hasattr(answer, "program_version"):
            self.version = answer.program_version
        return answer
