"""The programmer reads a clock sync in the event log: `pump-programmer log` (and the web
programmer's log) show "clock set: -05:00 America/New_York (was +00:00 UTC)" in the detail
column of the ZONE_SET record, whatever page or --last window holds its names."""

from __future__ import annotations

import asyncio
import zoneinfo
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import protocol as p
from emulator import EmulatorServer, ServerOptions
from programmer._web_view import event
from programmer._zone import record_details

from .test_programmer_cli import cli


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(tmp_path / "pump", ServerOptions(speed_milli=100_000)) as s:
        yield s


def _offset_text(zone: str) -> str:
    off = datetime.now(UTC).astimezone(zoneinfo.ZoneInfo(zone)).utcoffset()
    assert off is not None
    return p.offset_hhmm(int(off.total_seconds() * 1000))


async def test_the_log_reads_a_clock_sync(server: EmulatorServer, tmp_path: Path) -> None:
    await asyncio.sleep(0.1)  # past the self test at x100,000
    rc, _, err = await cli(server, tmp_path, "clock", "--sync", "--zone", "America/New_York")
    assert rc == 0, err
    rc, out, err = await cli(server, tmp_path, "log", "--last", "3")
    assert rc == 0, err
    # --last 3 keeps the session records and the last name, not the ZONE_SET: no sentence
    assert "clock set:" not in out
    rc, out, err = await cli(server, tmp_path, "log")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split()[-1] == "detail"
    (row,) = [line for line in lines if " ZONE_SET " in line]
    offset = _offset_text("America/New_York")
    assert row.endswith(f"clock set: {offset} America/New_York (was +00:00 UTC)"), row
    names = [line for line in lines if " ZONE_NAME " in line]
    seq = row.split()[0]
    assert len(names) == 3 and all(n.endswith(f"zone name of record {seq}") for n in names)
    rc, out, _ = await cli(server, tmp_path, "clock", "--sync", "--zone", "America/New_York")
    rc, again, _ = await cli(server, tmp_path, "log")
    assert [line for line in again.splitlines() if " ZONE_SET " in line] == [row]  # no change


def _rec(seq: int, kind: p.EventKind, a: int, b: int) -> p.EventRecord:
    return p.EventRecord(
        seq=seq, time_ms=0, kind=int(kind), source=p.EventSource.PROGRAMMER,
        command_id=bytes(16), value_a=a, value_b=b,
    )  # fmt: skip


def test_the_web_log_has_the_same_detail() -> None:
    names = p.zone_name_parts(1, "Europe/Paris") + p.zone_name_parts(2, "UTC")
    records = [_rec(5, p.EventKind.CLOCK_SET, 0, 0), _rec(6, p.EventKind.ZONE_SET, 0, 3_600_000)]
    records += [_rec(7 + i, p.EventKind.ZONE_NAME, a, b) for i, (a, b) in enumerate(names)]
    details = record_details(records)
    assert details[6] == "clock set: +01:00 Europe/Paris (was +00:00 UTC)"
    assert event(records[1], details[6])["detail"] == details[6]
    assert 5 not in details and event(records[0])["detail"] == ""
    # a page that starts after the ZONE_SET: each name record read alone
    alone = record_details(records[3:])
    assert alone[8] == "new zone name, part 2 of 2: 'aris'"  # Europe/P + aris
