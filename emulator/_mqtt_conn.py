"""The pump's lean broker connection: MQTT 5 on an asyncio protocol, no paho, no aiomqtt.

Why: profiling `MqttLink` on aiomqtt showed the pump's process spending most of its time in
paho's per-packet machinery (a `send()` per packet, MQTT 5 property objects, a task and a
`asyncio.wait` per received message, a future per QoS 1 publish awaited before the next
command is read). Here an incoming command is handed to `on_publish` synchronously, inside
`data_received`, and everything it publishes (the answer) plus the PUBACK of the command go
out in one `transport.write`: one system call per request.

What it keeps: QoS 1 both ways (every command is PUBACKed once handled; every QoS 1 publish is
held until its PUBACK, at most the broker's Receive Maximum in flight, the rest queued),
the retain flag of each received message (subscriptions ask for retain as published), the
retained `offline` last will, username/password and TLS, keep-alive pings, and a
`WireError` (an `aiomqtt.MqttError`, so callers handle both clients alike) when the
connection is refused or lost; publishes still waiting for their PUBACK then fail with it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import ssl
from collections.abc import Callable, Iterator
from types import TracebackType

import aiomqtt

from . import _mqtt_wire as w

CONNECT_TIMEOUT_S = 5.0
SUBSCRIBE_BATCH = 500  # topic filters in one SUBSCRIBE packet, at most
MAX_QUEUED = 4096  # QoS 1 publishes held beyond the broker's Receive Maximum, at most


class WireError(aiomqtt.MqttError):
    """The broker refused the connection, broke the protocol, or the connection was lost."""


class _Protocol(asyncio.Protocol):
    def __init__(self, client: WireClient) -> None:
        self.client = client
        self.buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        c = self.client
        c._batch = True
        try:
            pos = 0
            while True:
                got = w.read_varint(buf, pos + 1) if len(buf) > pos else None
                if got is None:
                    break
                length, start = got
                end = start + length
                if end > len(buf):
                    break
                c._packet(buf[pos], bytes(buf[start:end]))
                pos = end
            del buf[:pos]
        except w.ProtocolViolation as exc:
            c._fail(WireError(f"the broker broke MQTT 5: {exc}"))
        finally:
            c._batch = False
            c._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._fail(WireError(f"connection lost: {exc}" if exc else "connection closed"))

    def pause_writing(self) -> None:
        self.client._writable.clear()

    def resume_writing(self) -> None:
        self.client._writable.set()


class WireClient:
    """One MQTT 5 connection. `async with WireClient(...) as c:` connects (CONNACK awaited);
    leaving it disconnects normally (the broker then forgets the last will)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        identifier: str,
        will_topic: str,
        will_payload: bytes = b"offline",
        keepalive_s: int = 10,
        username: str | None = None,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.host, self.port = host, port
        self._connect_packet = w.connect(
            identifier,
            keepalive_s,
            will_topic=will_topic,
            will_payload=will_payload,
            username=username,
            password=password,
        )
        self.keepalive_s = keepalive_s
        self.tls_context = tls_context
        self.timeout_s = timeout_s
        self.on_publish: Callable[[w.Publish], object] = lambda m: None
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._connack: asyncio.Future[tuple[int, dict[int, int]]] = self._loop.create_future()
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self._acks: dict[int, asyncio.Future[int]] = {}  # mid -> PUBACK/SUBACK reason
        self._waiting: collections.deque[tuple[int, bytes]] = collections.deque()
        self.max_queued = MAX_QUEUED
        self.dropped = 0  # QoS 1 publishes refused because `max_queued` were already waiting
        self._inflight = 0
        self._receive_max = 65_535
        self._next_mid = 0
        self._out = bytearray()
        self._batch = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._ping: asyncio.TimerHandle | None = None
        self._heard = 0.0

    # --- connection -----------------------------------------------------------------------------

    async def __aenter__(self) -> WireClient:
        try:
            async with asyncio.timeout(self.timeout_s):
                transport, _ = await self._loop.create_connection(
                    lambda: _Protocol(self),
                    self.host,
                    self.port,
                    ssl=self.tls_context,
                )
                self._transport = transport
                self._heard = self._loop.time()
                self._write(self._connect_packet)
                code, props = await self._connack
        except (OSError, TimeoutError) as exc:
            self._close()
            raise WireError(f"cannot connect to {self.host}:{self.port}: {exc!r}") from exc
        except BaseException:
            self._close()
            raise
        if code >= 0x80:
            self._close()
            raise WireError(f"the broker refused the connection (reason 0x{code:02x})")
        self._receive_max = props.get(w.RECEIVE_MAXIMUM, 65_535) or 65_535
        self.keepalive_s = props.get(w.SERVER_KEEP_ALIVE, self.keepalive_s)
        self._schedule_ping()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._transport is not None and not self.closed.done():
            self._write(w.DISCONNECT_PACKET)
        self._close()

    def _close(self) -> None:
        if self._ping is not None:
            self._ping.cancel()
        if self._transport is not None:
            self._transport.close()
        self._fail(WireError("disconnected"))

    def _fail(self, exc: Exception) -> None:
        if not self._connack.done():
            self._connack.set_exception(exc)
            self._connack.exception()  # retrieved: nobody else waits for it
        if not self.closed.done():
            self.closed.set_exception(exc)
            self.closed.exception()
        for fut in self._acks.values():
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()
        self._acks.clear()
        self._waiting.clear()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()

    def _schedule_ping(self) -> None:
        if self.keepalive_s <= 0:
            return
        self._ping = self._loop.call_later(self.keepalive_s / 2, self._keepalive)

    def _keepalive(self) -> None:
        if self.closed.done():
            return
        if self._loop.time() - self._heard > self.keepalive_s * 1.5:
            self._fail(WireError("the broker stopped answering (keep-alive)"))
            return
        self._write(w.PINGREQ_PACKET)
        self._schedule_ping()

    # --- writing --------------------------------------------------------------------------------

    def _write(self, packet: bytes) -> None:
        if self._batch:  # inside data_received: one write for everything it causes
            self._out += packet
        elif self._transport is not None and not self._transport.is_closing():
            self._transport.write(packet)

    def _flush(self) -> None:
        if self._out:
            data, self._out = bytes(self._out), bytearray()
            self._write(data)

    @contextlib.contextmanager
    def corked(self) -> Iterator[None]:
        """Everything published inside leaves in one `transport.write` at the end (a fleet's
        beacons due in the same tick, its pumps' statuses)."""
        if self._batch:
            yield
            return
        self._batch = True
        try:
            yield
        finally:
            self._batch = False
            self._flush()

    def send_encoded(self, packets: bytes) -> None:
        """Already encoded QoS 0 PUBLISH packets (no packet id to track): a fleet builds its
        beacons' packets from precomputed topic bytes. Raises WireError when not connected."""
        if self.closed.done():
            raise WireError("not connected")
        self._write(packets)

    def _mid(self) -> int:
        while True:
            self._next_mid = self._next_mid % 65_535 + 1
            if self._next_mid not in self._acks:
                return self._next_mid

    # --- API ------------------------------------------------------------------------------------

    def publish_nowait(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[int] | None:
        """Send (or, over the broker's Receive Maximum, queue) a PUBLISH. At QoS 1 returns the
        future of its PUBACK reason code; at QoS 0 None. Raises WireError when not connected
        or when `max_queued` QoS 1 publishes already wait."""
        if self.closed.done():
            raise WireError("not connected")
        if not qos:
            self._write(w.publish(topic, payload, 0, retain, 0))
            return None
        if self._inflight >= self._receive_max and len(self._waiting) >= self.max_queued:
            # The broker acknowledges slower than we are asked to publish (a flood of
            # requests): memory stays bounded, the publish is refused (a programmer repeats
            # an unanswered command under the same command id and gets the same answer).
            self.dropped += 1
            raise WireError(f"{len(self._waiting)} publishes already wait for the broker")
        mid = self._mid()
        fut = self._loop.create_future()
        self._acks[mid] = fut
        packet = w.publish(topic, payload, 1, retain, mid)
        if self._inflight < self._receive_max:
            self._inflight += 1
            self._write(packet)
        else:
            self._waiting.append((mid, packet))
        return fut

    async def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish; at QoS 1 wait for the PUBACK (a refusal code raises WireError)."""
        await self._writable.wait()
        fut = self.publish_nowait(topic, payload, qos, retain)
        if fut is not None:
            code = await fut
            if code >= 0x80:
                raise WireError(f"the broker refused a publish on {topic} (0x{code:02x})")

    async def subscribe(
        self, topic: str, qos: int = 1, *, retain_as_published: bool, no_local: bool = False
    ) -> None:
        if self.closed.done():
            raise WireError("not connected")
        mid = self._mid()
        fut = self._loop.create_future()
        self._acks[mid] = fut
        self._write(
            w.subscribe(mid, topic, qos, retain_as_published=retain_as_published, no_local=no_local)
        )
        async with asyncio.timeout(self.timeout_s):
            code = await fut
        if code >= 0x80:
            raise WireError(f"the broker refused the subscription to {topic} (0x{code:02x})")

    async def subscribe_many(
        self, topics: list[str], qos: int = 1, *, retain_as_published: bool
    ) -> None:
        """Subscribe to many topic filters, up to SUBSCRIBE_BATCH in each SUBSCRIBE packet, all
        packets sent before any SUBACK is awaited (a fleet's one filter per pump)."""
        if self.closed.done():
            raise WireError("not connected")
        futures = []
        for i in range(0, len(topics), SUBSCRIBE_BATCH):
            mid = self._mid()
            fut = self._acks[mid] = self._loop.create_future()
            futures.append(fut)
            chunk = topics[i : i + SUBSCRIBE_BATCH]
            self._write(w.subscribe_many(mid, chunk, qos, retain_as_published=retain_as_published))
        async with asyncio.timeout(self.timeout_s):
            codes = await asyncio.gather(*futures)
        if codes and max(codes) >= 0x80:
            raise WireError(f"the broker refused a subscription (0x{max(codes):02x})")

    # --- reading --------------------------------------------------------------------------------

    def _packet(self, first: int, body: bytes) -> None:
        self._heard = self._loop.time()
        kind = first & 0xF0
        if kind == w.PUBLISH:
            m = w.parse_publish(first, body)
            try:
                self.on_publish(m)
            except Exception as exc:  # a bug in the handler: whoever awaits `closed` hears it
                self._fail(exc)
                return
            if m.qos == 1:  # acknowledged once handled (an answer, if any, goes out with it)
                self._write(w.puback(m.mid))
        elif kind == w.PUBACK:
            mid, code = w.parse_ack(body)
            fut = self._acks.pop(mid, None)
            if fut is not None:
                self._inflight -= 1
                if not fut.done():
                    fut.set_result(code)
                if self._waiting:
                    self._inflight += 1
                    self._write(self._waiting.popleft()[1])
        elif kind == w.SUBACK:
            mid, codes = w.parse_suback(body)
            fut = self._acks.pop(mid, None)
            if fut is not None and not fut.done():
                fut.set_result(max(codes, default=0x80))
        elif kind == w.CONNACK:
            if not self._connack.done():
                self._connack.set_result(w.parse_connack(body))
        elif kind == w.PINGRESP:
            pass
        elif kind == w.DISCONNECT:
            reason = body[0] if body else 0
            self._fail(WireError(f"the broker disconnected us (reason 0x{reason:02x})"))
        else:
            raise w.ProtocolViolation(f"unexpected packet type 0x{first:02x}")
