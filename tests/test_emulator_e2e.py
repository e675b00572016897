"""End to end: a client built on `protocol/` talks to the emulator through a real pseudo-terminal
(over MQTT, through a real Mosquitto broker started by the test suite:
tests/test_emulator_e2e_mqtt.py; the command line: tests/test_emulator_e2e_cli.py)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

import pytest

import firmware_model as fm
import protocol as p
from emulator import EmulatorServer, ServerOptions, read_key

from .e2e_client import PumpError, SerialTransport
from .e2e_helpers import (
    HOST_MESSAGES,
    SERIAL,
    X1000000,
    clinician,
    every_message,
    fill_and_run,
    past_self_test,
)

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


# --- the whole catalogue over both transports -------------------------------------------------


async def test_every_message_over_a_real_pty(tmp_path: Path) -> None:
    async with EmulatorServer(tmp_path, ServerOptions(speed_milli=100_000)) as server:
        assert server.port_path
        c = clinician(server, SerialTransport(server.port_path))
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
