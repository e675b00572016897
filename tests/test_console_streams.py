"""The instructor console's Server-Sent Events streams over raw HTTP (what the page's EventSource
reads), and the history they carry."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

import firmware_model as fm
import programmer
import protocol as p
from emulator import EmulatorServer, ServerOptions
from emulator._console import EVENT_CATEGORIES, History, describe
from emulator._scenario import load_scenario, starting_pump

from .console_helpers import (
    SERIAL,
    Sse,
    control_of,
    get_json,
    server,
)
from .emulator_helpers import http_request as http

__all__ = ["server"]  # the console's pump fixture (tests/console_helpers.py), used by name

# --- the streams -----------------------------------------------------------------------------


async def test_the_pump_stream_pushes_state_log_and_history(server: EmulatorServer) -> None:
    cp = control_of(server)
    stream = await Sse.open(cp.url, f"/v1/pumps/{SERIAL}/stream?access_token={cp.token}")
    try:
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream"
        name, _, state = await stream.next()
        assert name == "state" and state["serial"] == SERIAL and state["events"] == []
        assert state["status"]["drug"] == "BACLOFEN"
        name, seq, log = await stream.next()
        assert name == "log" and log["reset"] and seq == log["records"][-1]["seq"]
        kinds = [r["kind"] for r in log["records"]]
        assert kinds[0] == "POWER_ON" and "REFILL" in kinds
        refill = next(r for r in log["records"] if r["kind"] == "REFILL")
        assert refill["text"].startswith("refill: 20.000 mL added")
        assert refill["category"] == "therapy" and refill["source"] == "PROGRAMMER"
        name, _, history = await stream.next()
        assert name == "history" and history["reset"] and len(history["samples"][0]) == 6
        # a control action is pushed at once: its state, its CONTROL record, new samples
        await get_json(cp.url, f"/v1/pumps/{SERIAL}/advance", cp.token, "POST", {"ms": fm.DAY_MS})
        new_seq, log = await stream.until("log", timeout=2)
        assert [r["kind"] for r in log["records"]][-1] == "CONTROL" and not log["reset"]
        assert log["records"][-1]["text"] == "time advanced by 1.00 days"
        assert new_seq is not None and seq is not None and new_seq > seq
        _, history = await stream.until("history", timeout=2)
        assert not history["reset"] and len(history["samples"]) > 10  # the jump, sampled
        days = [(s[0] - history["samples"][0][0]) / fm.DAY_MS for s in history["samples"]]
        assert days == sorted(days) and days[-1] > 0.9
    finally:
        stream.close()
    # Last-Event-ID resumes the log where it stopped (what EventSource sends on reconnect)
    await get_json(cp.url, f"/v1/pumps/{SERIAL}/pause", cp.token, "POST")
    stream = await Sse.open(
        cp.url, f"/v1/pumps/{SERIAL}/stream", {"Authorization": f"Bearer {cp.token}",
                                               "Last-Event-ID": str(new_seq)}
    )  # fmt: skip
    try:
        _, log = await stream.until("log")
        assert not log["reset"] and [r["text"] for r in log["records"]] == ["pump time paused"]
    finally:
        stream.close()


async def test_the_fleet_stream_pushes_changed_summaries(server: EmulatorServer) -> None:
    cp = control_of(server)
    stream = await Sse.open(cp.url, f"/v1/stream?access_token={cp.token}")
    try:
        _, first = await stream.until("pumps")
        assert first["reset"] and [s["serial"] for s in first["pumps"]] == [SERIAL]
        summary = first["pumps"][0]
        assert summary["drug"] == "BACLOFEN" and summary["top_alarm"] is None
        assert summary["days_to_refill"] == pytest.approx(72, abs=0.1)  # domain.md 2.2
        await get_json(
            cp.url, f"/v1/pumps/{SERIAL}/advance", cp.token, "POST", {"until": "low-reservoir"}
        )
        _, update = await stream.until("pumps", timeout=3)
        assert not update["reset"]
        (summary,) = update["pumps"]
        assert summary["top_alarm"]["alarm"] == "LOW_RESERVOIR" and summary["days_to_refill"] == 0
    finally:
        stream.close()


async def test_streams_need_the_token_in_a_header_or_the_query(server: EmulatorServer) -> None:
    cp = control_of(server)
    for path in (f"/v1/pumps/{SERIAL}/stream", "/v1/stream", "/v1/stream?access_token=wrong"):
        status, _, body = await http(cp.url, "GET", path)
        assert status == 401 and b"token" in body
    # the query token is for streams only: every other route still wants the header
    status, _, _ = await http(cp.url, "GET", f"/v1/pumps?access_token={cp.token}")
    assert status == 401
    status, _, _ = await http(cp.url, "GET", f"/v1/pumps/999/stream?access_token={cp.token}")
    assert status == 404


async def test_closing_the_server_ends_open_streams(tmp_path: Path) -> None:
    options = ServerOptions(control=("127.0.0.1", 0), console=True, pty=False)
    server = EmulatorServer(tmp_path / "pump", options)
    await server.__aenter__()
    cp = control_of(server)
    streams = [
        await Sse.open(cp.url, f"/v1/pumps/{SERIAL}/stream?access_token={cp.token}"),
        await Sse.open(cp.url, f"/v1/stream?access_token={cp.token}"),
    ]
    idle = await asyncio.open_connection(*cp.address)  # a browser's idle keep-alive socket
    started = time.monotonic()
    await asyncio.wait_for(server.aclose(), 5)
    assert time.monotonic() - started < 3
    for s in streams:
        assert await asyncio.wait_for(s.reader.read(), 3) is not None  # EOF: ended
        s.close()
    idle[1].close()


def test_every_record_kind_reads_as_a_sentence() -> None:
    for kind in fm.EventKind:
        text = describe(fm.Event(1, 0, kind, fm.Source.PUMP, fm.NO_COMMAND, 1, 1))
        assert text and "a=" not in text, kind
        assert kind.name in EVENT_CATEGORIES


def test_history_samples_a_jump_without_changing_the_pump() -> None:
    pump = starting_pump(load_scenario("low-reservoir-alarm-day"), now_ms=1_800_000_000_000)
    twin = fm.restore(fm.snapshot(pump))
    target = pump.now + 80 * fm.DAY_MS
    history = History()
    history.fill(pump, target)
    pump.advance_to(target)
    twin.advance_to(target)
    assert pump.log_digest() == twin.log_digest() and pump.status() == twin.status()
    assert 200 <= len(history.samples) <= 250
    low = [s for s in history.samples if s[1] <= 2_000_000]
    assert low and (low[0][0] - history.samples[0][0]) / fm.DAY_MS == pytest.approx(72, abs=0.4)


def test_history_catches_every_step_of_a_schedule_at_the_end_of_a_jump() -> None:
    pump = starting_pump(load_scenario("routine-refill"), now_ms=1_800_000_000_000)
    pump.set_schedule([(0, 400_000), (420, 600_000), (1320, 400_000)])
    target = pump.now + 30 * fm.DAY_MS
    history = History()
    history.fill(pump, target)
    end = target + pump.clock_ms - pump.now  # pump clock at the target
    tail = [s for s in history.samples if s[0] > end - fm.DAY_MS]
    changes = [s for a, s in itertools.pairwise(tail) if s[3] != a[3]]
    minutes = {(s[0] % fm.DAY_MS) // fm.MS_PER_MIN for s in changes}
    assert minutes == {420, 1320}  # sampled at the very step, not hours later
    assert {s[5] for s in history.samples[1:]} == {262_500}  # 525 mcg/day at 2 mg/mL


async def test_a_programmer_command_is_pushed_without_waiting_for_the_tick(
    server: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command from a programmer wakes the streams itself (the runtime tells the console):
    with the periodic look made an hour long, its record still arrives."""
    import emulator._console as console

    monkeypatch.setattr(console, "TICK_S", 3600.0)
    cp = control_of(server)
    stream = await Sse.open(cp.url, f"/v1/pumps/{SERIAL}/stream?access_token={cp.token}")
    try:
        await stream.until("history")  # the opening picture
        assert server.port_path
        async with programmer.connect(
            f"serial://{server.port_path}",
            key=server.key_files[p.Role.CLINICIAN],
            journal=tmp_path / "journal.sqlite",
        ) as pump:
            await pump.suspend()
        kinds: list[str] = []
        while "SUSPENDED" not in kinds:
            _, log = await stream.until("log", timeout=10)
            kinds += [r["kind"] for r in log["records"]]
    finally:
        stream.close()
