"""The pump's lean MQTT 5 connection (emulator/_mqtt_wire.py, emulator/_mqtt_conn.py)."""

from __future__ import annotations

import asyncio
import socket

import aiomqtt
import pytest

from emulator._mqtt_conn import WireClient, WireError
from emulator._mqtt_wire import (
    ProtocolViolation,
    Publish,
    parse_publish,
    properties,
    publish,
    read_varint,
    varint,
)
from emulator.testing import Broker


@pytest.mark.parametrize("n", [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 268_435_455])
def test_varint_round_trip(n: int) -> None:
    raw = varint(n)
    assert read_varint(raw + b"x", 0) == (n, len(raw))
    assert read_varint(raw[:-1], 0) is None  # cut inside: wait for more bytes


def test_varint_of_five_bytes_is_a_violation() -> None:
    with pytest.raises(ProtocolViolation):
        read_varint(b"\xff\xff\xff\xff\x01", 0)


def test_publish_encodes_and_parses_back() -> None:
    raw = publish("itp/v1/7/cmd", b"\x01\x02", 1, True, 513)
    assert raw[0] == 0x33  # PUBLISH, QoS 1, retain
    n, pos = read_varint(raw, 1) or (0, 0)
    assert parse_publish(raw[0], raw[pos : pos + n]) == Publish(
        "itp/v1/7/cmd", b"\x01\x02", 1, True, 513
    )


def test_properties_are_skipped_by_type_and_unknown_ones_refused() -> None:
    # Receive Maximum 20, a reason string, a user property, Maximum Packet Size
    body = b"\x21\x00\x14" + b"\x1f\x00\x02hi" + b"\x26\x00\x01k\x00\x01v" + b"\x27\x00\x01\x00\x00"
    got, end = properties(varint(len(body)) + body, 0)
    assert got == {0x21: 20, 0x27: 65_536} and end == len(body) + 1
    with pytest.raises(ProtocolViolation):
        properties(b"\x02\x7e\x00", 0)


async def test_qos1_publish_retain_flag_and_last_will(broker: Broker) -> None:
    seen: list[Publish] = []
    async with aiomqtt.Client(broker.host, broker.port) as watcher:
        await watcher.subscribe("wire/#", qos=1)
        c = WireClient(broker.host, broker.port, identifier="wire-test", will_topic="wire/status")
        await c.__aenter__()
        c.on_publish = seen.append
        await c.subscribe("wire/in", 1, retain_as_published=True)
        await c.publish("wire/out", b"hello", qos=1)
        async with aiomqtt.Client(broker.host, broker.port) as other:
            await other.publish("wire/in", b"kept", qos=1, retain=True)
            await other.publish("wire/in", b"plain", qos=1)
            await other.publish("wire/in", b"", qos=1, retain=True)  # clear it again
        async with asyncio.timeout(5):
            while len(seen) < 3:
                await asyncio.sleep(0.01)
        assert [(m.payload, m.retain) for m in seen] == [
            (b"kept", True),
            (b"plain", False),
            (b"", True),
        ]
        assert c._transport is not None
        c._transport.abort()  # no DISCONNECT: the broker publishes the will
        got: dict[str, tuple[bytes, bool]] = {}
        async with asyncio.timeout(5):
            async for m in watcher.messages:
                assert isinstance(m.payload, bytes)
                got[str(m.topic)] = (m.payload, m.retain)
                if "wire/status" in got:
                    break
        assert got["wire/out"] == (b"hello", False)
        assert got["wire/status"] == (b"offline", False)  # live delivery to a subscriber
        with pytest.raises(WireError):
            await c.closed
        with pytest.raises(WireError):
            c.publish_nowait("wire/out", b"late")
    async with aiomqtt.Client(broker.host, broker.port) as late:  # the will was retained
        await late.subscribe("wire/status", qos=1)
        async with asyncio.timeout(5):
            async for m in late.messages:
                assert m.payload == b"offline" and m.retain
                break
        await late.publish("wire/status", b"", qos=1, retain=True)


async def test_more_publishes_than_receive_maximum_are_queued(own_broker: Broker) -> None:
    async with WireClient(
        own_broker.host, own_broker.port, identifier="wire-burst", will_topic="burst/status"
    ) as c:
        c._receive_max = 3  # as if the broker had said so in CONNACK
        futs = [c.publish_nowait("burst/x", bytes([i]), qos=1) for i in range(10)]
        assert c._inflight == 3 and len(c._waiting) == 7
        codes = await asyncio.wait_for(asyncio.gather(*futs), 5)  # type: ignore[arg-type]
        assert all(code < 0x80 for code in codes) and c._inflight == 0


async def test_no_broker_is_a_wire_error_which_reconnecting_retries() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: the connection is refused
        with pytest.raises(WireError) as err:
            async with WireClient("127.0.0.1", port, identifier="x", will_topic="x/status"):
                pass
    assert isinstance(err.value, aiomqtt.MqttError)


async def test_publishes_waiting_for_the_broker_are_bounded(own_broker: Broker) -> None:
    async with WireClient(
        own_broker.host, own_broker.port, identifier="wire-bound", will_topic="bound/status"
    ) as c:
        c._receive_max, c.max_queued = 2, 5
        futs = [c.publish_nowait("bound/x", b"x", qos=1) for _ in range(7)]
        with pytest.raises(WireError):
            c.publish_nowait("bound/x", b"one too many", qos=1)
        assert c.dropped == 1 and len(c._waiting) == 5
        await asyncio.wait_for(asyncio.gather(*futs), 5)  # type: ignore[arg-type]
        assert not c._waiting and c._inflight == 0
        await c.publish("bound/x", b"room again", qos=1)
