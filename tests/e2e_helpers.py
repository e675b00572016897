"""Helpers of the end-to-end tests (tests/test_emulator_e2e*.py): a clinician client on a served
pump, the self test waited out, a pump filled and running, MQTT options, every host message sent
once, and a `serve` subprocess."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import aiomqtt

import firmware_model as fm
import protocol as p
from emulator import EmulatorServer, MqttSettings, ServerOptions, read_key
from emulator.testing import Broker

from .e2e_client import Client
from .emulator_helpers import MORPHINE_FILL, wait_ready

SERIAL = 1234
X1000000 = 1_000_000_000  # speed_milli for a million times real time


def clinician(server: EmulatorServer, transport: object) -> Client:
    key = read_key(server.key_files[p.Role.CLINICIAN])
    return Client(transport, server.device.pump.serial, p.Role.CLINICIAN, key)


async def past_self_test(server: EmulatorServer) -> None:
    """Wait out the pump's 2 s power-on self test (commands are answered BUSY during it)."""
    async with asyncio.timeout(10):
        while server.device.clock.now() < server.device.pump.self_test_ends_at:
            await asyncio.sleep(0.02)


async def fill_and_run(c: Client, *, dose_ng: int = 10_000_000, low_nl: int = 2_000_000) -> None:
    await c.status()
    refill = await c.command(p.RecordRefill, **MORPHINE_FILL, low_reservoir_threshold_nl=low_nl)
    assert isinstance(refill, p.RefillResult)
    ack = await c.command(p.SetContinuousDose, dose_ng_per_day=dose_ng)
    assert isinstance(ack, p.CommandAck)


def mqtt_options(broker: Broker, **kw: object) -> ServerOptions:
    return ServerOptions(
        pty=False,
        mqtt=MqttSettings.from_url(broker.url),
        beacon_interval_s=kw.pop("beacon_interval_s", 0.1),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


async def connected(server: EmulatorServer) -> None:
    assert server.mqtt is not None
    async with asyncio.timeout(10):
        await server.mqtt.connected.wait()


async def retained(broker: Broker, topic: str) -> bytes | None:
    async with aiomqtt.Client(broker.host, broker.port) as watcher:
        await watcher.subscribe(topic, qos=1)
        try:
            async with asyncio.timeout(0.5):
                async for m in watcher.messages:
                    assert isinstance(m.payload, bytes)
                    return m.payload if m.retain else None
        except TimeoutError:
            return None
    return None


async def every_message(server: EmulatorServer, c: Client) -> set[str]:
    """Sends every host-to-pump message once over `c`; returns the names sent."""
    sent: set[str] = set()

    async def call(msg: p.Message, expect: type[p.Message]) -> object:
        sent.add(msg.NAME)
        answer = await c.call(msg)
        assert isinstance(answer, expect), answer
        if hasattr(answer, "program_version") and not isinstance(answer, p.CommandStatus):
            c.version = answer.program_version
        return answer

    async def command(cls: type[p.Message], expect: type[p.Message], **fields: object) -> object:
        sent.add(cls.NAME)
        answer = await c.command(cls, **fields)
        assert isinstance(answer, expect), answer
        return answer

    await call(p.GetDeviceInfo(), p.DeviceInfo)  # plain, before the handshake
    sent |= {"HELLO", "CONFIRM"}
    await c.handshake()
    await past_self_test(server)
    await fill_and_run(c)
    sent.add("RECORD_REFILL")
    sent.add("SET_CONTINUOUS_DOSE")
    st = await call(p.GetStatus(), p.Status)
    for read, expect in [
        (p.GetProgram(), p.Program),
        (p.GetDrug(), p.DrugInfo),
        (p.GetPatientBolus(), p.PatientBolusSettings),
        (p.GetAlarms(), p.AlarmList),
        (p.GetEvents(cursor=0, max_count=16), p.EventPage),
        (p.GetClock(), p.Clock),
        (p.GetClockLocal(), p.ClockLocal),  # protocol 1.1
        (p.GetCatheterInfo(), p.CatheterInfo),  # protocol 1.1
        (p.GetCommandStatus(command_id=uuid.uuid4().bytes), p.CommandStatus),
        (p.GetAlarmSettings(), p.AlarmSettings),
    ]:
        await call(read, expect)
    ack = p.CommandAck
    steps = (p.ScheduleStep(0, 8_000_000), p.ScheduleStep(720, 12_000_000))
    await command(p.SetSchedule, ack, steps=steps)
    await command(p.StartClinicianBolus, ack, dose_ng=500_000, duration_ms=120_000, then_stop=False)
    await command(p.CancelBolus, ack)
    await command(p.Suspend, ack)
    await command(p.Resume, ack)
    await command(
        p.SetPatientBolus,
        ack,
        enabled=True,
        dose_ng=250_000,
        duration_ms=60_000,
        lockout_ms=60_000,
        max_per_24h=4,
    )
    await command(p.RequestPatientBolus, p.PatientBolusAccepted)
    await command(p.CancelBolus, ack)
    await command(p.StartPrimingBolus, ack, volume_nl=200_000)
    await command(p.CancelBolus, ack)
    await command(
        p.SetAlarmSettings,
        ack,
        low_reservoir_threshold_nl=3_000_000,
        critical_repeat_ms=300_000,
        noncritical_repeat_ms=1_800_000,
    )
    await command(p.AlarmTest, ack, tone=p.Tone.TWO_TONE)
    assert isinstance(st, p.Status)
    await command(p.SetClock, ack, pump_time_ms=st.pump_time_ms + 3_600_000)
    await command(
        p.SetClockLocal,
        ack,
        pump_time_ms=st.pump_time_ms + 3_600_000,
        utc_offset_ms=3_600_000,
        zone="Europe/Paris",
    )
    await command(
        p.SetDrug,
        ack,
        drug=p.Drug.MORPHINE,
        concentration_ng_per_ml=20_000_000,
        concentration_unit=p.ConcentrationUnit.MG_PER_ML,
    )
    await command(
        p.StartBridge,
        ack,
        dead_volume_nl=233_000,
        previous_concentration_ng_per_ml=25_000_000,
        dose_ng_per_day=10_000_000,
    )
    server.device.pump.inject(fm.MotorStall())  # what a trainer's control plane will do
    await command(p.SilenceAlarms, ack, alarms=p.Alarm.MOTOR_STALL, duration_ms=60_000)
    await command(p.AcknowledgeAlarms, ack, alarms=p.Alarm.MOTOR_STALL)
    ended = await call(p.EndSession(), p.SessionEnded)
    assert isinstance(ended, p.SessionEnded)
    return sent


HOST_MESSAGES = {
    cls.NAME for cls in p.MESSAGES.values() if cls.DIRECTION is p.Direction.HOST_TO_PUMP
}


def serve_subprocess(state: Path, ready: Path, *extra: str) -> subprocess.Popen[bytes]:
    ready.unlink(missing_ok=True)
    with (state.parent / "emulator.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", "serve", "--state-dir", str(state),
             "--ready-file", str(ready), "--log-level", "warning", *extra],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    wait_ready(proc, ready, state.parent / "emulator.log")
    return proc
