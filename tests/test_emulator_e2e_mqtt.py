"""End to end over MQTT: a client built on `protocol/` talks to the emulator through a real
Mosquitto broker started by the test suite."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiomqtt
import pytest

import protocol as p
from emulator import EmulatorServer, MqttSettings, ServerOptions
from emulator.testing import Broker

from .e2e_client import MqttTransport, PumpError, SerialTransport
from .e2e_helpers import (
    HOST_MESSAGES,
    clinician,
    connected,
    every_message,
    fill_and_run,
    mqtt_options,
    past_self_test,
    retained,
)

# --- over MQTT --------------------------------------------------------------------------------


async def test_mqtt_session_beacons_and_online_status(tmp_path: Path, broker: Broker) -> None:
    async with EmulatorServer(tmp_path, mqtt_options(broker, serial=4321)) as server:
        await connected(server)
        assert await retained(broker, "itp/v1/4321/status") == b"online"
        t = await MqttTransport(broker.host, broker.port, 4321).open()
        c = clinician(server, t)
        assert (await c.call(p.GetDeviceInfo())).serial_number == 4321
        await c.handshake()
        await past_self_test(server)
        await fill_and_run(c)
        st = await c.status()
        assert st.daily_dose_ng == 10_000_000
        async with aiomqtt.Client(broker.host, broker.port) as watcher:
            await watcher.subscribe("itp/v1/4321/telemetry")
            async with asyncio.timeout(5):
                async for m in watcher.messages:
                    assert isinstance(m.payload, bytes)
                    beacon = p.FrameDecoder().feed(m.payload)[0]
                    break
        assert isinstance(beacon, p.Frame) and not beacon.authenticated
        msg = beacon.decode()
        assert isinstance(msg, p.TelemetryBeacon) and msg.delivering
        await t.close()
    assert await retained(broker, "itp/v1/4321/status") == b"offline"


async def test_retained_command_is_refused_and_cleared(tmp_path: Path, broker: Broker) -> None:
    async with EmulatorServer(tmp_path, mqtt_options(broker, serial=4322)) as server:
        await connected(server)
        t = await MqttTransport(broker.host, broker.port, 4322).open()
        c = clinician(server, t)
        await c.handshake()
        await past_self_test(server)
        await fill_and_run(c)
        version = server.device.pump.program_version
        cmd = p.SetContinuousDose(
            command_id=uuid.uuid4().bytes,
            expected_program_version=version,
            dose_ng_per_day=5_000_000,
            confirm_soft_limit=False,
        )
        seq = c._next_seq()
        await t.send(c.security.seal(cmd, seq=seq), retain=True)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                while (await t.recv()).seq != seq:
                    pass
        assert server.mqtt is not None and server.mqtt.retained_refused == 1
        assert server.device.pump.program_version == version
        assert server.device.pump.status().daily_dose_ng == 10_000_000
        assert await retained(broker, "itp/v1/4322/cmd") is None
        await t.close()


async def test_pump_sessions_survive_a_broker_restart(tmp_path: Path, own_broker: Broker) -> None:
    options = mqtt_options(own_broker, serial=4323, beacon_interval_s=0.5)
    async with EmulatorServer(tmp_path, options) as server:
        await connected(server)
        t = await MqttTransport(own_broker.host, own_broker.port, 4323).open()
        c = clinician(server, t)
        await c.handshake()
        await past_self_test(server)
        await fill_and_run(c)
        session = c.security.session
        own_broker.stop()
        await t.close()
        await asyncio.sleep(0.3)
        own_broker.start()
        await asyncio.sleep(0.05)
        assert server.mqtt is not None
        async with asyncio.timeout(15):
            while server.mqtt.connections < 2 or not server.mqtt.connected.is_set():
                await asyncio.sleep(0.05)
        c.t = await MqttTransport(own_broker.host, own_broker.port, 4323).open()
        ack = await c.command(p.SetContinuousDose, dose_ng_per_day=8_000_000)
        assert isinstance(ack, p.CommandAck)
        assert c.security.session == session  # no new handshake was needed
        await c.t.close()
    assert server.failed_task() is None


async def test_pty_and_mqtt_serve_the_same_pump(tmp_path: Path, broker: Broker) -> None:
    options = mqtt_options(broker, serial=4324)
    options.pty = True
    async with EmulatorServer(tmp_path, options) as server:
        await connected(server)
        assert server.port_path
        serial_host = clinician(server, SerialTransport(server.port_path))
        mqtt_host = clinician(server, await MqttTransport(broker.host, broker.port, 4324).open())
        await serial_host.handshake()
        await mqtt_host.handshake()
        await past_self_test(server)
        await fill_and_run(serial_host)
        await mqtt_host.status()
        ack = await mqtt_host.command(p.SetContinuousDose, dose_ng_per_day=7_000_000)
        assert isinstance(ack, p.CommandAck)
        # the serial programmer's view is now stale: compare-and-set refuses its change
        with pytest.raises(PumpError) as stale:
            await serial_host.command(p.SetContinuousDose, dose_ng_per_day=6_000_000)
        assert stale.value.code is p.ErrorCode.PROGRAM_VERSION_MISMATCH
        assert (await serial_host.status()).daily_dose_ng == 7_000_000
        await serial_host.t.close()
        await mqtt_host.t.close()


async def test_every_message_over_mqtt(tmp_path: Path, broker: Broker) -> None:
    options = mqtt_options(broker, serial=4325, speed_milli=100_000)
    async with EmulatorServer(tmp_path, options) as server:
        await connected(server)
        c = clinician(server, await MqttTransport(broker.host, broker.port, 4325).open())
        assert await every_message(server, c) == HOST_MESSAGES
        await c.t.close()
    assert server.failed_task() is None


def test_mqtt_urls_and_credentials() -> None:
    s = MqttSettings.from_url("mqtt://alice:s%40cret@broker.local")
    assert (s.host, s.port, s.username, s.password, s.tls) == (
        "broker.local",
        1883,
        "alice",
        "s@cret",
        False,
    )
    assert "s@cret" not in repr(s) and "alice" in repr(s)
    t = MqttSettings.from_url("mqtts://127.0.0.1", username="bob", password="pw")
    assert (t.port, t.tls, t.username, t.password) == (8883, True, "bob", "pw")
    assert t.tls_context() is not None and s.tls_context() is None
    for bad in ("http://x", "mqtt://", "mqtt://host/path", "mqtt://host:99999"):
        with pytest.raises(ValueError):
            MqttSettings.from_url(bad)


async def test_mqtt_broker_with_passwords(tmp_path: Path) -> None:
    broker = Broker(tmp_path, users={"pump": "pump-secret"})
    broker.start()
    try:
        good = ServerOptions(
            pty=False,
            serial=4326,
            mqtt=MqttSettings.from_url(f"mqtt://pump:pump-secret@127.0.0.1:{broker.port}"),
        )
        async with EmulatorServer(tmp_path / "a", good) as server:
            await connected(server)
        bad = ServerOptions(
            pty=False,
            serial=4327,
            mqtt=MqttSettings.from_url(f"mqtt://pump:wrong@127.0.0.1:{broker.port}"),
        )
        async with EmulatorServer(tmp_path / "b", bad) as server:
            await asyncio.sleep(1.0)
            assert server.mqtt is not None and server.mqtt.connections == 0
            assert server.failed_task() is None  # refused logins are retried, never fatal
    finally:
        broker.stop()
