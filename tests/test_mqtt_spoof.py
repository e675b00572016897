"""Spoofing a pump on the broker (issue 19 item 3): any client may publish a retained `status`
= offline or a forged retained `rsp`. The pump says `online` again and clears the `rsp`;
programmers ignore a retained `rsp`; the shipped Mosquitto ACL stops the spoof at the broker."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import aiomqtt
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import programmer
import protocol as p
from emulator import EmulatorServer, ServerOptions, mosquitto_acl, pump_username
from emulator._mqtt import MqttSettings
from emulator.testing import Broker, EmulatedPump
from programmer._links import MqttLink, parse_address

SERIAL = 1234
STATUS, RSP = f"itp/v1/{SERIAL}/status", f"itp/v1/{SERIAL}/rsp"


def forged_answer() -> bytes:
    """A well-formed frame as a pump would send it, but published by someone else."""
    return p.encode_frame(p.GetDeviceInfo(), pump_id=SERIAL, seq=1, from_pump=True)


async def _until(messages: aiomqtt.Client, want: list[tuple[bytes, bool]]) -> None:
    """Read `messages` until `want` (payload, retain) has been seen in that order."""
    i = 0
    async with asyncio.timeout(10):
        async for m in messages.messages:
            assert isinstance(m.payload, bytes)
            if (m.payload, m.retain) == want[i]:
                i += 1
                if i == len(want):
                    return


async def _first_retained(broker: Broker, topic: str) -> bytes:
    async with aiomqtt.Client(broker.host, broker.port) as fresh:
        await fresh.subscribe(topic, qos=1)
        async with asyncio.timeout(10):
            async for m in fresh.messages:
                assert isinstance(m.payload, bytes) and m.retain
                return m.payload
    raise AssertionError("unreachable")


async def test_a_spoofed_retained_offline_is_overwritten_by_the_pump(
    own_broker: Broker, tmp_path: Path
) -> None:
    options = ServerOptions(pty=False, mqtt=MqttSettings.from_url(own_broker.url))
    async with EmulatorServer(tmp_path / "pump", options) as server:
        assert server.mqtt is not None
        async with asyncio.timeout(10):
            await server.mqtt.connected.wait()
        v5 = aiomqtt.ProtocolVersion.V5
        async with (
            aiomqtt.Client(own_broker.host, own_broker.port, protocol=v5) as watcher,
            aiomqtt.Client(own_broker.host, own_broker.port) as intruder,
        ):
            from paho.mqtt.subscribeoptions import SubscribeOptions

            await watcher.subscribe(STATUS, options=SubscribeOptions(qos=1, retainAsPublished=True))
            await _until(watcher, [(b"online", True)])
            await intruder.publish(STATUS, b"offline", qos=1, retain=True)
            # The pump's online follows the forgery, retained.
            await _until(watcher, [(b"offline", True), (b"online", True)])
        assert await _first_retained(own_broker, STATUS) == b"online"
        assert server.mqtt.status_reasserted == 1  # once: it never hears its own online


async def test_a_restart_after_its_own_offline_is_no_forgery(
    own_broker: Broker, tmp_path: Path
) -> None:
    """A clean stop leaves `offline` retained (from another client id than the next run's):
    the next run says online before it watches its status, so it sees no forgery."""
    options = ServerOptions(pty=False, mqtt=MqttSettings.from_url(own_broker.url))
    async with EmulatorServer(tmp_path / "pump", options) as server:
        assert server.mqtt is not None
        async with asyncio.timeout(10):
            await server.mqtt.connected.wait()
    assert await _first_retained(own_broker, STATUS) == b"offline"
    async with EmulatorServer(tmp_path / "pump", options) as server:
        assert server.mqtt is not None
        async with asyncio.timeout(10):
            await server.mqtt.connected.wait()
        async with aiomqtt.Client(own_broker.host, own_broker.port) as intruder:
            # Handled after whatever the broker handed the pump on subscribing.
            await intruder.publish(RSP, forged_answer(), qos=1, retain=True)
            async with asyncio.timeout(10):
                while server.mqtt.rsp_cleared == 0:
                    await asyncio.sleep(0.01)
        assert server.mqtt.status_reasserted == 0


async def test_a_forged_retained_rsp_is_cleared_by_the_pump(
    own_broker: Broker, tmp_path: Path
) -> None:
    options = ServerOptions(pty=False, mqtt=MqttSettings.from_url(own_broker.url))
    async with EmulatorServer(tmp_path / "pump", options) as server:
        assert server.mqtt is not None
        async with asyncio.timeout(10):
            await server.mqtt.connected.wait()
        async with (
            aiomqtt.Client(own_broker.host, own_broker.port) as watcher,
            aiomqtt.Client(own_broker.host, own_broker.port) as intruder,
        ):
            await watcher.subscribe(RSP, qos=1)
            await intruder.publish(RSP, forged_answer(), qos=1, retain=True)
            await _until(watcher, [(forged_answer(), False), (b"", False)])  # cleared
        assert server.mqtt.rsp_cleared == 1


async def test_the_programmer_ignores_a_retained_rsp(own_broker: Broker) -> None:
    async with aiomqtt.Client(own_broker.host, own_broker.port) as intruder:
        await intruder.publish(RSP, forged_answer(), qos=1, retain=True)
        link = await MqttLink(parse_address(f"{own_broker.url}/{SERIAL}")).open()
        try:
            live = p.encode_frame(p.GetStatus(), pump_id=SERIAL, seq=2, from_pump=True)
            await intruder.publish(RSP, live, qos=1)
            async with asyncio.timeout(10):
                frame = await link.recv()
            assert frame.raw == live  # the retained forgery, delivered first, was dropped
        finally:
            await link.close()


class _Publisher:
    """A paho MQTT 5 client: a QoS 1 PUBACK carries the broker's verdict (135: not
    authorised), which aiomqtt does not show."""

    def __init__(self, broker: Broker, user: str) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{user}", protocol=paho.MQTTv5
        )
        self.client.username_pw_set(user, broker.users[user])
        self.verdicts: dict[int, int] = {}
        self._acked = threading.Condition()
        self.client.on_publish = self._on_publish
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_publish(
        self, client: object, userdata: object, mid: int, rc: object, props: object
    ) -> None:
        with self._acked:
            self.verdicts[mid] = int(getattr(rc, "value", 0))
            self._acked.notify_all()

    def publish(self, topic: str, payload: bytes, *, retain: bool = True) -> int:
        """The PUBACK reason code: 0 or 16 (no one subscribed) accepted, 135 refused by the
        ACL."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self._acked:
            assert self._acked.wait_for(lambda: info.mid in self.verdicts, timeout=10)
            return self.verdicts[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


NOT_AUTHORISED = 135
ACCEPTED = (0, 16)


def test_the_acl_blocks_the_spoof(pump_emulator_mqtt_acl: EmulatedPump, tmp_path: Path) -> None:
    pump = pump_emulator_mqtt_acl
    broker = pump.broker
    assert broker is not None and "programmer:" in pump.connection
    mqtt = pump.server.mqtt
    assert mqtt is not None
    intruder = _Publisher(broker, "programmer")  # a clinic's own credentials, misused
    try:
        assert intruder.publish(STATUS, b"offline") == NOT_AUTHORISED
        assert intruder.publish(RSP, forged_answer()) == NOT_AUTHORISED
        assert intruder.publish(f"itp/v1/{SERIAL}/telemetry", b"x", retain=False) == NOT_AUTHORISED
    finally:
        intruder.close()
    # The pump never saw them; programmers on the same broker still work.
    assert (mqtt.status_reasserted, mqtt.rsp_cleared) == (0, 0)
    with programmer.connect_sync(pump.connection, key=pump.key_file, journal=tmp_path / "j") as pm:
        assert pm.status().event_seq > 0


def test_only_a_pump_identity_writes_its_own_topics(tmp_path: Path) -> None:
    broker = Broker.with_acl(tmp_path, [SERIAL, 5678])
    broker.start()
    try:
        other, own = (
            _Publisher(broker, pump_username(5678)),
            _Publisher(broker, pump_username(SERIAL)),
        )
        try:
            assert other.publish(STATUS, b"offline") == NOT_AUTHORISED
            assert other.publish(RSP, forged_answer()) == NOT_AUTHORISED
            assert own.publish(STATUS, b"online") in ACCEPTED
            assert own.publish(f"itp/v1/{SERIAL}/telemetry", b"beacon", retain=False) in ACCEPTED
            assert own.publish("itp/v1/5678/status", b"offline") == NOT_AUTHORISED
        finally:
            other.close()
            own.close()
    finally:
        broker.stop()


@pytest.mark.parametrize("bad", ["", "with space", "a\nuser x", "pump-9", "#"])
def test_the_acl_refuses_user_names_that_would_change_it(bad: str) -> None:
    with pytest.raises(ValueError):
        mosquitto_acl([SERIAL], [bad])
    with pytest.raises(ValueError):
        mosquitto_acl([0])
