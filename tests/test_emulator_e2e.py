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

from .conftest import Broker
from .e2e_client import Client, MqttTransport, PumpError, SerialTransport

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
    refill = await c.command(
        p.RecordRefill,
        withdrawn_volume_nl=0,
        added_volume_nl=20_000_000,
        drug=p.Drug.MORPHINE,
        concentration_ng_per_ml=25_000_000,
        concentration_unit=p.ConcentrationUnit.MG_PER_ML,
        low_reservoir_threshold_nl=low_nl,
    )
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
