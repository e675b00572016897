"""Clear errors where the course goes wrong (docs/programmer.md, "When the course goes wrong"):
the wrong pump, a second programmer on the one-wand line, a paused pump in its self test.
Through the real pty and a real Mosquitto, and through the `pump-programmer` CLI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import programmer
import protocol as p
from emulator import EmulatorServer, MqttSettings, ServerOptions
from emulator.testing import Broker
from programmer._diagnosis import busy_stuck, online_listing

from .test_programmer_cli import cli

SPEED = 100_000


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(tmp_path / "pump", ServerOptions(speed_milli=SPEED)) as s:
        yield s


def _key(server: EmulatorServer) -> Path:
    return server.key_files[p.Role.CLINICIAN]


# --- the wrong pump ---------------------------------------------------------------------------


async def test_the_wrong_pump_on_the_pty_names_the_pump_that_answered(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """Pump 1234 is on the line; the connection asks for 1235. The pump refuses the frame with a
    plain ERROR WRONG_PUMP from 1234: the programmer says so at once (one round trip, not five
    timeouts), opens no session with 1234 and changes nothing."""
    assert server.device.pump.serial == 1234
    started = time.monotonic()
    with pytest.raises(programmer.WrongPump) as e:
        async with programmer.connect(
            f"serial://{server.port_path}?pump=1235", key=_key(server), journal=tmp_path / "j"
        ):
            pass
    assert time.monotonic() - started < 2
    assert (e.value.asked, e.value.answered) == (1235, 1234)
    text = str(e.value)
    assert text.startswith("wrong pump: a pump answering as 1234 is on serial://")
    assert "not pump 1235" in text and "does not switch" in text
    assert isinstance(e.value, programmer.Unreachable) and e.value.exit_code == 4
    assert not server.device.security.sessions  # no handshake with the pump that answered


async def test_the_wrong_pump_in_the_cli(server: EmulatorServer, tmp_path: Path) -> None:
    rc, _, err = await cli(
        server, tmp_path, "interrogate", env={"ITP_CONNECT": f"serial://{server.port_path}?pump=7"}
    )
    assert rc == 4 and "WrongPump: wrong pump: a pump answering as 1234" in err
    assert "not pump 7" in err


async def test_the_wrong_pump_on_mqtt_lists_the_pumps_online(
    tmp_path: Path, broker: Broker
) -> None:
    """On MQTT the serial is the topic: no pump listens on 5151's, so nothing answers. The
    error then reads the broker's retained status topics and names the pumps online there."""
    options = ServerOptions(
        pty=False, serial=5150, speed_milli=SPEED, mqtt=MqttSettings.from_url(broker.url)
    )
    async with EmulatorServer(tmp_path / "pump", options) as server:
        assert server.mqtt is not None
        await asyncio.wait_for(server.mqtt.connected.wait(), 10)
        with pytest.raises(programmer.Unreachable) as e:
            async with programmer.connect(
                f"mqtt://{broker.host}:{broker.port}/5151",
                key=_key(server),
                journal=tmp_path / "j",
                timeout_s=0.2,
                retries=1,
            ):
                pass
        text = str(e.value)
        assert "no pump 5151 is online on this broker (pumps online there: 5150)" in text
        assert "check the pump serial" in text


def test_the_online_listing() -> None:
    assert online_listing(9, None) == ""
    assert "pumps online there: none" in online_listing(9, [])
    assert "pump 9 is online" in online_listing(9, [3, 9])


# --- one wand, one programmer -----------------------------------------------------------------


async def test_a_second_programmer_on_the_pty_is_told_the_line_is_held(
    server: EmulatorServer, tmp_path: Path
) -> None:
    address = f"serial://{server.port_path}"
    async with programmer.connect(address, key=_key(server), journal=tmp_path / "a") as first:
        started = time.monotonic()
        with pytest.raises(programmer.LineHeld) as e:
            async with programmer.connect(address, key=_key(server), journal=tmp_path / "b"):
                pass
        assert time.monotonic() - started < 1
        assert "is held by another programmer" in str(e.value)
        assert str(server.port_path) in str(e.value)
        rc, _, err = await cli(server, tmp_path, "interrogate")
        assert rc == 4 and "LineHeld" in err and "held by another programmer" in err
        assert (await first.status()).mode is p.ProgramMode.STOPPED  # the first is unharmed
    async with programmer.connect(address, key=_key(server), journal=tmp_path / "b") as second:
        assert (await second.status()).mode is p.ProgramMode.STOPPED  # free once closed


# --- a paused pump in its self test -----------------------------------------------------------


def test_when_a_self_test_cannot_end() -> None:
    """Speed in milli: 1000 = real time. The self test's 2000 pump ms take 2 s at x1, 20 s at
    x0.1 (more than the 10 s a programmer waits), never at speed 0."""
    assert busy_stuck(0, "anything") == "its time is paused (speed 0)"
    assert busy_stuck(1000, "power-on self test: retry in 2000 ms") is None
    slow = busy_stuck(100, "power-on self test: retry in 2000 ms")
    assert slow is not None and "ends in 20 s of real time" in slow
    assert busy_stuck(100, "no figure") is None


async def test_a_paused_pump_in_its_self_test_says_how_to_advance(tmp_path: Path) -> None:
    """Speed 0 from the start: the pump never leaves its 2 s self test and answers every
    command BUSY "retry in 2000 ms". The programmer stops at the first BUSY (not after 10 s of
    retries), says how to move pump time on, records the command as not applied; once time
    runs again the same command goes through."""
    options = ServerOptions(speed_milli=0)
    async with (
        EmulatorServer(tmp_path / "pump", options) as server,
        programmer.connect(
            f"serial://{server.port_path}", key=_key(server), journal=tmp_path / "j"
        ) as pump,
    ):
        started = time.monotonic()
        with pytest.raises(programmer.PumpTimePaused) as e:
            await pump.alarm_test()
        assert time.monotonic() - started < 3
        text = str(e.value)
        assert text.startswith("ALARM_TEST not applied: pump 1234 is in its power-on self")
        assert "retry in 2000 ms" in text and "its time is paused (speed 0)" in text
        assert "pump-emulator ctl --serial 1234 resume" in text
        assert "POST /v1/pumps/1234/resume" in text and "advance --hours 1" in text
        assert e.value.code is p.ErrorCode.BUSY and e.value.exit_code == 6
        assert pump.resends == 0
        assert server.runtime is not None
        server.runtime.set_speed(SPEED)
        ack = await pump.alarm_test()
        assert isinstance(ack, p.CommandAck)


async def test_a_paused_pump_in_the_cli(tmp_path: Path) -> None:
    async with EmulatorServer(tmp_path / "pump", ServerOptions(speed_milli=0)) as server:
        rc, _, err = await cli(server, tmp_path, "alarms", "test")
        assert rc == 6 and "PumpTimePaused" in err and "ctl --serial 1234 resume" in err
