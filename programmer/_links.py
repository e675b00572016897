"""Connection strings and the links under a programmer session.

One grammar for every transport:

    serial:///dev/pts/5?baud=9600      a serial device (also a bare path: /dev/ttyUSB0)
    socket://127.0.0.1:7000            any other pyserial URL (socket://, rfc2217://, loop://...)
    mqtt://[user[:password]@]host[:port]/<pump-serial>[?ca=FILE&cert=FILE&key=FILE&insecure=1]
    mqtts://...                        MQTT over TLS (default port 8883)

A link sends frames and yields the frames that arrive; the session above it matches answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import os
import secrets
import socket
import ssl
import termios
import threading
import tty
import urllib.parse
from pathlib import Path
from typing import Any, Protocol

import aiomqtt

import protocol as p

from ._errors import BadInput, LineHeld, Unreachable

DEFAULT_BAUD = 9600
STATUS_WAIT_S = 0.5  # retained status messages arrive right after the subscription
NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclasses.dataclass(frozen=True)
class Address:
    """A parsed connection string. Never printed with its password."""

    kind: str  # "serial" (a device path), "pyserial" (another pyserial URL) or "mqtt"
    target: str  # device path, pyserial URL, or broker host
    baud: int = DEFAULT_BAUD
    port: int = 0
    pump_serial: int | None = None
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    baud_given: bool = dataclasses.field(default=False, compare=False)  # shown only when given

    def __str__(self) -> str:
        if self.kind == "mqtt":
            auth = (
                f"{self.username}:***@"
                if self.password
                else (f"{self.username}@" if self.username else "")
            )
            scheme = "mqtts" if self.tls else "mqtt"
            return f"{scheme}://{auth}{self.target}:{self.port}/{self.pump_serial}"
        if self.kind == "serial":
            return f"serial://{self.target}" + (f"?baud={self.baud}" if self.baud_given else "")
        return self.target


def _serial_number(text: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadInput(f"{where}: the pump serial must be a number, not {text!r}") from None
    if not 0 < value < p.BROADCAST_PUMP_ID:
        raise BadInput(f"{where}: the pump serial must be 1 .. 4294967294")
    return value


def parse_address(text: str) -> Address:
    """Parse a connection string (see the module doc); raises BadInput with the reason."""
    if text.startswith("/"):
        text = "serial://" + text
    u = urllib.parse.urlsplit(text)
    query = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
    if u.scheme == "serial":
        if not u.path:
            raise BadInput(f"{text!r}: give the device path, e.g. serial:///dev/ttyUSB0")
        baud_given = "baud" in query
        try:
            baud = int(query.pop("baud", DEFAULT_BAUD))
        except ValueError:
            raise BadInput(f"{text!r}: baud must be a number") from None
        pump = query.pop("pump", None)
        if query or baud <= 0:
            raise BadInput(f"{text!r}: serial options are baud=N (> 0) and pump=SERIAL")
        serial = _serial_number(pump, text) if pump is not None else None
        return Address("serial", u.path, baud=baud, pump_serial=serial, baud_given=baud_given)
    if u.scheme in ("mqtt", "mqtts"):
        if not u.hostname:
            raise BadInput(f"{text!r}: no broker host")
        path = u.path.strip("/")
        if not path:
            raise BadInput(f"{text!r}: end the URL with the pump serial: mqtt://host:1883/1234")
        tls = u.scheme == "mqtts"
        try:
            port = u.port or (8883 if tls else 1883)
        except ValueError:
            raise BadInput(f"{text!r}: the port must be a number 1..65535") from None
        known = {"ca", "cert", "key", "insecure"}
        if set(query) - known:
            raise BadInput(f"{text!r}: MQTT options are {', '.join(sorted(known))}")
        if (query.keys() & known) and not tls:
            raise BadInput(f"{text!r}: TLS options need mqtts://")
        return Address(
            "mqtt",
            u.hostname,
            port=port,
            pump_serial=_serial_number(path, text),
            username=urllib.parse.unquote(u.username) if u.username else None,
            password=urllib.parse.unquote(u.password) if u.password else None,
            tls=tls,
            ca_file=query.get("ca"),
            cert_file=query.get("cert"),
            key_file=query.get("key"),
            insecure=query.get("insecure", "0") not in ("0", "", "false", "no"),
        )
    if u.scheme in ("socket", "rfc2217", "loop", "spy", "alt", "hwgrep", "cp2110"):
        return Address("pyserial", text)
    raise BadInput(
        f"{text!r}: unknown connection string; use serial:///dev/..., a pyserial URL, "
        "mqtt://host:port/<pump-serial> or mqtts://..."
    )


class Link(Protocol):
    """Moves frames between a programmer and a pump."""

    bytes_per_s: float | None  # line rate for timeouts; None: a network

    async def send(self, data: bytes) -> None: ...

    async def recv(self) -> p.Frame: ...

    async def close(self) -> None: ...


class _FrameQueue:
    """Frames from the pump, decoded as bytes arrive (any chunking)."""

    def __init__(self) -> None:
        self.decoder = p.FrameDecoder()
        self.frames: asyncio.Queue[p.Frame] = asyncio.Queue()

    def feed(self, data: bytes) -> None:
        for item in self.decoder.feed(data):
            if isinstance(item, p.Frame):
                self.frames.put_nowait(item)

    async def get(self) -> p.Frame:
        frame: p.Frame = await self.frames.get()
        return frame


class SerialDeviceLink:
    """A serial device or pty opened raw and non-blocking, driven by the event loop."""

    def __init__(self, path: str, baud: int) -> None:
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise Unreachable(f"cannot open {path}: {exc.strerror}") from None
        try:
            # One wand, one programmer: an exclusive lock on the open port, released by the
            # kernel when this process closes it or dies (TIOCEXCL would outlive a crash on a
            # pty the emulator keeps open, and does not bind root).
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise LineHeld(path) from None
        try:
            tty.setraw(self.fd)
            attrs = termios.tcgetattr(self.fd)
            speed = getattr(termios, f"B{baud}", None)
            if speed is not None:
                attrs[4] = attrs[5] = speed
                termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
            termios.tcflush(self.fd, termios.TCIFLUSH)
        except termios.error as exc:
            os.close(self.fd)
            raise Unreachable(f"{path} is not a serial device: {exc}") from None
        self.bytes_per_s: float | None = baud / 10
        self._in = _FrameQueue()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            return  # a hang-up: answers stop coming and the session times out
        self._in.feed(data)

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.fd < 0:
                raise Unreachable("the serial link is closed")
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            except OSError as exc:
                raise Unreachable(f"serial write failed: {exc.strerror}") from None
            view = view[n:]

    async def recv(self) -> p.Frame:
        return await self._in.get()

    async def close(self) -> None:
        """Idempotent: a second close must never close a descriptor number the process has
        since given to another file (a journal, a store)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            self._loop.remove_reader(fd)
            os.close(fd)


class PySerialLink:
    """Any pyserial URL; pyserial blocks, so a thread reads and writes are handed off."""

    def __init__(self, url: str, baud: int = DEFAULT_BAUD) -> None:
        import serial  # pyserial

        try:
            self._port = serial.serial_for_url(url, baudrate=baud, timeout=0.05)
        except (serial.SerialException, ValueError) as exc:
            raise Unreachable(f"cannot open {url}: {exc}") from None
        self.bytes_per_s = None if url.startswith(("socket:", "rfc2217:")) else baud / 10
        self._in = _FrameQueue()
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._reader, daemon=True, name="programmer-rx")
        self._thread.start()

    def _reader(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._port.read(max(1, self._port.in_waiting))
            except Exception:  # pyserial raises SerialException and OSError alike
                return
            if data:
                self._loop.call_soon_threadsafe(self._in.feed, data)

    async def send(self, data: bytes) -> None:
        await asyncio.to_thread(self._port.write, data)

    async def recv(self) -> p.Frame:
        return await self._in.get()

    async def close(self) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 1)
        self._port.close()


class MqttLink:
    """A programmer on MQTT: commands on the pump's cmd topic, answers from its rsp topic."""

    bytes_per_s = None

    def __init__(self, address: Address) -> None:
        self.address = address
        self.serial = address.pump_serial
        self._in: asyncio.Queue[p.Frame] = asyncio.Queue()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._online: dict[int, bool] | None = None  # retained status topics, when asked

    def _tls(self) -> ssl.SSLContext | None:
        a = self.address
        if not a.tls:
            return None
        ctx = ssl.create_default_context(cafile=a.ca_file)
        if a.cert_file:
            ctx.load_cert_chain(a.cert_file, a.key_file)
        if a.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def open(self) -> MqttLink:
        a = self.address
        self._client = aiomqtt.Client(
            a.target,
            a.port,
            username=a.username,
            password=a.password,
            identifier=f"itp-programmer-{secrets.token_hex(6)}",
            socket_options=[NODELAY],
            tls_context=self._tls(),
            timeout=5,
        )
        try:
            await self._client.__aenter__()
            await self._client.subscribe(f"itp/v1/{self.serial}/rsp", qos=1)
        except aiomqtt.MqttError as exc:
            raise Unreachable(f"broker {a}: {exc}") from None
        self._task = asyncio.create_task(self._reader(self._client))
        return self

    async def _reader(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for m in client.messages:
                payload = m.payload
                if not isinstance(payload, bytes | bytearray):
                    continue
                parts = str(m.topic).split("/")
                if len(parts) == 4 and parts[3] == "status":
                    if self._online is not None and parts[2].isdigit():
                        self._online[int(parts[2])] = bytes(payload) == b"online"
                    continue
                if m.retain:
                    # Kept by the broker from before we subscribed: no answer to anything we
                    # sent (a pump never publishes rsp retained); a replay or a forgery.
                    continue
                items = p.FrameDecoder().feed(bytes(payload))
                if len(items) == 1 and isinstance(items[0], p.Frame):
                    self._in.put_nowait(items[0])

    async def online_pumps(self, wait_s: float = STATUS_WAIT_S) -> list[int] | None:
        """Serials whose retained status topic says `online` (docs/protocol.md section 12),
        read for `wait_s` after subscribing; None if the broker cannot be asked. For an error
        message only: a status topic is anyone's claim."""
        if self._client is None:
            return None
        found: dict[int, bool] = {}
        self._online = found
        try:
            async with asyncio.timeout(wait_s + 1):  # a broker going away must not hold us
                await self._client.subscribe("itp/v1/+/status", qos=1)
                await asyncio.sleep(wait_s)
                await self._client.unsubscribe("itp/v1/+/status")
        except (aiomqtt.MqttError, TimeoutError):
            return None
        finally:
            self._online = None
        return sorted(s for s, up in found.items() if up)

    async def send(self, data: bytes) -> None:
        if self._client is None:
            raise Unreachable("not connected to the broker")
        try:
            await self._client.publish(f"itp/v1/{self.serial}/cmd", data, qos=1)
        except aiomqtt.MqttError as exc:
            raise Unreachable(f"broker {self.address}: {exc}") from None

    async def recv(self) -> p.Frame:
        frame: p.Frame = await self._in.get()
        return frame

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)


async def open_link(address: Address) -> Any:
    if address.kind == "serial":
        if not Path(address.target).exists():
            raise Unreachable(f"no serial device at {address.target}")
        return SerialDeviceLink(address.target, address.baud)
    if address.kind == "pyserial":
        return PySerialLink(address.target)
    return await MqttLink(address).open()
