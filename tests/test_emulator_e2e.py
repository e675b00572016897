"""End to end: a client built on `protocol/` talks to the emulator through a real pseudo-terminal
and through a real Mosquitto broker started by the test suite."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiomqtt
import pytest

import firmware_model as fm
import protocol as p
from emulator import EmulatorServer, MqttSettings, ServerOptions, read_key
from emulator.testing import Broker

from .e2e_client import Client, MqttTransport, PumpError, SerialTransport
from .emulator_helpers import MORPHINE_FILL

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


# --- over a pty -------------------------------------------------------------------------------


async def test_pty_session_reads_and_commands(tmp_path: Path) -> None:
    link = tmp_path / "pump-port"
    async with EmulatorServer(tmp_path / "s", ServerOptions(link=link)) as server:
        assert server.port_path and os.readlink(link) == server.port_path
        t = SerialTransport(str(link))
        c = clinician(server, t)
        info = await c.call(p.GetDeviceInfo())
        assert isinstance(info, p.DeviceInfo) and info.serial_number == SERIAL
        assert info.speed_factor_milli == 1000
        ready = await c.handshake()
        assert ready.role is p.Role.CLINICIAN
        with pytest.raises(PumpError) as busy:  # the 2 s power-on self test
            await c.command(p.AlarmTest, tone=p.Tone.SINGLE_TONE)
        assert busy.value.code is p.ErrorCode.BUSY
        await past_self_test(server)
        await fill_and_run(c)
        st = await c.status()
        assert st.mode is p.ProgramMode.CONTINUOUS and st.daily_dose_ng == 10_000_000
        # the host closes the port and opens it again: the same path keeps working
        await t.close()
        t = SerialTransport(server.port_path)
        c.t = t
        assert (await c.status()).daily_dose_ng == 10_000_000
        with pytest.raises(PumpError) as refused:
            await c.command(p.SetContinuousDose, dose_ng_per_day=4_000_000_000)
        assert refused.value.code is p.ErrorCode.RATE_OUT_OF_RANGE
        await t.close()
    assert not link.exists()
    assert server.failed_task() is None


async def test_baud_pacing_makes_the_line_realistic(tmp_path: Path) -> None:
    async with EmulatorServer(tmp_path, ServerOptions(baud=9600)) as server:
        assert server.port_path
        t = SerialTransport(server.port_path)
        c = clinician(server, t)
        await c.call(p.GetDeviceInfo())
        started = time.perf_counter()
        await c.call(p.GetDeviceInfo())
        elapsed = time.perf_counter() - started
        await t.close()
    # DEVICE_INFO is a 47-byte frame: 47 x 10 bits at 9600 baud take 49 ms on a real line
    assert elapsed >= 47 * 10 / 9600 * 0.95


async def test_accelerated_month_raises_low_reservoir_on_the_right_day(tmp_path: Path) -> None:
    options = ServerOptions(speed_milli=X1000000)
    async with EmulatorServer(tmp_path, options) as server:
        assert server.port_path
        t = SerialTransport(server.port_path)
        c = clinician(server, t)
        info = await c.call(p.GetDeviceInfo())
        assert info.speed_factor_milli == X1000000
        await c.handshake()
        # 15 mg/day of 25 mg/mL is 0.6 mL/day: from 20 mL to the 5 mL threshold in 25 days
        await fill_and_run(c, dose_ng=15_000_000, low_nl=5_000_000)
        programmed = [
            e for e in server.device.pump.events() if e.kind is fm.EventKind.PROGRAM_CHANGED
        ][-1]
        predicted = (await c.status()).low_reservoir_at_ms
        async with asyncio.timeout(30):
            while not (await c.status()).active_alarms & p.Alarm.LOW_RESERVOIR:
                await asyncio.sleep(0.05)
        (alarm,) = (await c.call(p.GetAlarms())).alarms
        await t.close()
    assert alarm.alarm is p.Alarm.LOW_RESERVOIR
    day = (alarm.raised_at_ms - programmed.time_ms) / fm.DAY_MS
    assert 25.0 <= day < 25.0 + 1 / 86_400  # on day 25, within a second of the exact time
    assert alarm.raised_at_ms == predicted


async def test_trace_records_every_frame_in_and_out(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    async with EmulatorServer(tmp_path / "s", ServerOptions(trace=trace)) as server:
        assert server.port_path
        t = SerialTransport(server.port_path)
        c = clinician(server, t)
        await c.handshake()
        await c.status()
        await t.send(b"noise")
        await t.close()
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    assert lines[0]["trace"] == "itp-frames" and lines[0]["pump_serial"] == SERIAL
    frames = [(x["dir"], p.MESSAGES[int(x["hex"][16:20][2:] + x["hex"][16:18], 16)].NAME)
              for x in lines[1:] if "hex" in x]  # fmt: skip
    assert frames == [
        ("in", "HELLO"),
        ("out", "CHALLENGE"),
        ("in", "CONFIRM"),
        ("out", "SESSION_READY"),
        ("in", "GET_STATUS"),
        ("out", "STATUS"),
    ]
    assert all(x["t_ms"] > 0 for x in lines[1:])
    key = read_key(tmp_path / "s" / "clinician.key").to_hex()
    assert key not in trace.read_text()


async def test_restart_resumes_the_pump_and_remembers_commands(tmp_path: Path) -> None:
    cid = uuid.uuid4().bytes
    async with EmulatorServer(tmp_path) as server:
        assert server.port_path
        t = SerialTransport(server.port_path)
        c = clinician(server, t)
        await c.handshake()
        await past_self_test(server)
        await fill_and_run(c)
        used_version = c.version
        first = await c.command(p.SetContinuousDose, dose_ng_per_day=9_000_000, command_id=cid)
        before = await c.status()
        await t.close()
    await asyncio.sleep(0.2)
    async with EmulatorServer(tmp_path) as server:
        assert server.port_path
        t = SerialTransport(server.port_path)
        c = clinician(server, t)
        await c.handshake()
        after = await c.status()
        c.version = used_version  # the very same command, sealed again after the restart
        again = await c.command(p.SetContinuousDose, dose_ng_per_day=9_000_000, command_id=cid)
        await t.close()
    assert after.program_version == before.program_version
    assert after.daily_dose_ng == 9_000_000
    assert after.pump_time_ms >= before.pump_time_ms + 200
    assert after.reservoir_volume_nl <= before.reservoir_volume_nl
    assert again.duplicate and again.event_seq == first.event_seq


# --- over MQTT --------------------------------------------------------------------------------


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


# --- the command line -------------------------------------------------------------------------


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"pump-emulator exited early: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError("pump-emulator did not become ready")
        time.sleep(0.02)


async def test_cli_serve_runs_until_sigterm_and_saves_state(tmp_path: Path) -> None:
    state, ready, trace = tmp_path / "state", tmp_path / "ready.json", tmp_path / "t.jsonl"
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "serve", "--state-dir", str(state),
         "--ready-file", str(ready), "--trace", str(trace), "--speed", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        _wait_for(ready, proc)
        info = json.loads(ready.read_text())
        assert info["speed_factor"] == 10
        key = read_key(Path(info["key_files"]["clinician"]))
        t = SerialTransport(info["port"])
        c = Client(t, info["pump_serial"], p.Role.CLINICIAN, key)
        await c.handshake()
        await asyncio.sleep(0.3)  # 2 s self test at x10
        await fill_and_run(c)
        await t.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    text = out.decode()
    assert info["port"] in text and "clinician.key" in text and "stopped" in text
    for blob in (text, err.decode(), trace.read_text()):
        assert key.to_hex() not in blob
    # the state survived: a fresh emulator on the same directory has the program
    async with EmulatorServer(state) as server:
        assert server.device.pump.status().daily_dose_ng == 10_000_000


def test_cli_serve_with_no_arguments_is_the_main_job(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_STATE_HOME"}
    env["HOME"] = str(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "serve"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline().decode() for _ in range(4)]
        port = banner[1].split()[2]
        assert banner[0].startswith("pump 1234 (SynchroMed II 20 mL)")
        assert Path(port).exists() and "clinician.key" in banner[3]
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert (tmp_path / ".local/state/itp-emulator/pump-1234/pump.sqlite").exists()


def test_cli_refuses_bad_options(tmp_path: Path) -> None:
    for args in (["--speed", "-1"], ["--pump-serial", "0"], ["--mqtt", "http://x"]):
        r = subprocess.run(
            [sys.executable, "-m", "emulator.cli", "serve", "--state-dir", str(tmp_path), *args],
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert r.returncode == 2 and b"error" in r.stderr, (args, r.stderr)


# --- the whole catalogue over both transports -------------------------------------------------


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


async def test_every_message_over_a_real_pty(tmp_path: Path) -> None:
    async with EmulatorServer(tmp_path, ServerOptions(speed_milli=100_000)) as server:
        assert server.port_path
        c = clinician(server, SerialTransport(server.port_path))
        assert await every_message(server, c) == HOST_MESSAGES
        await c.t.close()
    assert server.failed_task() is None


async def test_every_message_over_mqtt(tmp_path: Path, broker: Broker) -> None:
    options = mqtt_options(broker, serial=4325, speed_milli=100_000)
    async with EmulatorServer(tmp_path, options) as server:
        await connected(server)
        c = clinician(server, await MqttTransport(broker.host, broker.port, 4325).open())
        assert await every_message(server, c) == HOST_MESSAGES
        await c.t.close()
    assert server.failed_task() is None


async def test_serves_an_existing_serial_port(tmp_path: Path) -> None:
    master, slave = os.openpty()
    import tty

    tty.setraw(slave)
    try:
        options = ServerOptions(port=os.ttyname(slave))
        async with EmulatorServer(tmp_path, options) as server:
            assert server.serial_port is not None and server.port_path is None
            c = clinician(server, SerialTransport(fd=master))
            info = await c.call(p.GetDeviceInfo())
            assert isinstance(info, p.DeviceInfo) and info.serial_number == SERIAL
            await c.handshake()
            assert isinstance(await c.status(), p.Status)
            c.t.loop.remove_reader(master)
    finally:
        os.close(master)
        os.close(slave)


async def test_a_host_that_stops_reading_cannot_stall_the_pump(tmp_path: Path) -> None:
    async with EmulatorServer(tmp_path) as server:
        assert server.port_path and server.pty is not None
        t = SerialTransport(server.port_path)
        c = clinician(server, t)
        t.loop.remove_reader(t.fd)  # the host stops reading
        request = p.encode_frame(p.GetDeviceInfo(), pump_id=SERIAL, seq=1, from_pump=False)
        for _ in range(40):
            await t.send(request * 100)  # 4,000 requests, 188 kB of answers nobody reads
            await asyncio.sleep(0)
        await asyncio.sleep(0.1)
        assert server.pty.dropped_frames > 0  # bounded: the oldest answers went
        t.loop.add_reader(t.fd, t._readable)
        c.t = t
        async with asyncio.timeout(10):
            while True:  # drain what is queued, then the pump answers as before
                try:
                    info = await c.call(p.GetDeviceInfo(), timeout=0.5)
                    break
                except TimeoutError:
                    continue
        assert isinstance(info, p.DeviceInfo)
        await t.close()
    assert server.failed_task() is None


async def test_speed_can_change_while_serving_without_a_time_jump(tmp_path: Path) -> None:
    async with EmulatorServer(tmp_path, ServerOptions(speed_milli=X1000000)) as server:
        assert server.runtime is not None and server.port_path
        c = clinician(server, SerialTransport(server.port_path))
        server.runtime.set_speed(0)  # paused
        paused = (await c.call(p.GetDeviceInfo())).speed_factor_milli
        before = server.device.clock.now()
        await asyncio.sleep(0.05)
        assert server.device.clock.now() == before  # time stands still
        server.runtime.set_speed(1000)
        await asyncio.sleep(0.05)
        after = server.device.clock.now()
        info = await c.call(p.GetDeviceInfo())
        await c.t.close()
    assert paused == 0 and info.speed_factor_milli == 1000
    assert 0 < after - before < 1_000  # real time again: no jump from the x1,000,000 period


def _serve_subprocess(state: Path, ready: Path, *extra: str) -> subprocess.Popen[bytes]:
    ready.unlink(missing_ok=True)
    with (state.parent / "emulator.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", "serve", "--state-dir", str(state),
             "--ready-file", str(ready), "--log-level", "warning", *extra],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    _wait_for(ready, proc)
    return proc


async def test_acknowledged_commands_survive_sigkill(tmp_path: Path) -> None:
    state, ready = tmp_path / "state", tmp_path / "ready.json"
    proc = _serve_subprocess(state, ready, "--speed", "100")
    acked: list[tuple[bytes, int]] = []
    try:
        info = json.loads(ready.read_text())
        key = read_key(Path(info["key_files"]["clinician"]))
        c = Client(SerialTransport(info["port"]), SERIAL, p.Role.CLINICIAN, key)
        await c.handshake()
        await asyncio.sleep(0.05)  # the 2 s self test at x100
        await fill_and_run(c)
        for i in range(20):
            cid = uuid.uuid4().bytes
            ack = await c.command(
                p.SetContinuousDose, dose_ng_per_day=5_000_000 + i * 100_000, command_id=cid
            )
            acked.append((cid, ack.event_seq))
        proc.kill()  # no chance to write anything more
        proc.wait()
        await c.t.close()
        proc = _serve_subprocess(state, ready, "--speed", "100")
        info = json.loads(ready.read_text())
        c = Client(SerialTransport(info["port"]), SERIAL, p.Role.CLINICIAN, key)
        await c.handshake()
        for cid, event_seq in acked:
            status = await c.call(p.GetCommandStatus(command_id=cid))
            assert (status.state, status.event_seq) == (p.CommandState.APPLIED, event_seq)
        assert (await c.status()).daily_dose_ng == 5_000_000 + 19 * 100_000
        await c.t.close()
    finally:
        proc.kill()
        proc.wait()


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
