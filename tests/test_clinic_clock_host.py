"""The clinic's clock from the host (issue 15 item 4): the programmer's zone look-ups (zoneinfo),
SET_CLOCK_LOCAL / GET_CLOCK_LOCAL against the emulator, the stale-offset warning and the CLI's
`clock --sync --zone`.

Paris: CET (UTC+1) until Sunday 29 March 2026 01:00 UTC, CEST (UTC+2) after (IANA tz
database). Tokyo: UTC+9 all year (no DST since 1951), so a CLI test run on any date knows the
offset the pump must get: 9 x 3 600 000 = 32 400 000 ms.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import programmer
import protocol as p
from emulator import EmulatorServer, ServerOptions
from programmer._zone import host_zone, offset_text, zone_offset_ms
from tests.test_programmer_cli import cli

H = 3_600_000
DST_START = 1_774_746_000_000  # 2026-03-29T01:00:00Z
MAR_28_NOON = DST_START - 13 * H  # 2026-03-28T12:00:00Z
MAR_30_NOON = DST_START + 35 * H  # 2026-03-30T12:00:00Z


def test_zone_offsets_from_the_tz_database() -> None:
    assert zone_offset_ms("Europe/Paris", DST_START - 1) == 1 * H
    assert zone_offset_ms("Europe/Paris", DST_START) == 2 * H
    assert zone_offset_ms("Asia/Kolkata", DST_START) == 5 * H + H // 2
    assert zone_offset_ms("America/New_York", DST_START) == -4 * H  # US DST began 8 March
    assert zone_offset_ms("UTC", DST_START) == 0
    assert offset_text(5 * H + H // 2) == "UTC+05:30" and offset_text(-4 * H) == "UTC-04:00"
    with pytest.raises(programmer.BadInput, match="IANA name"):
        zone_offset_ms("Mars/Olympus_Mons", DST_START)


def test_host_zone_from_tz_else_localtime_else_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert host_zone() == "Asia/Tokyo"
    monkeypatch.setenv("TZ", ":Europe/Paris")
    assert host_zone() == "Europe/Paris"
    monkeypatch.setenv("TZ", "not a zone")  # ignored: /etc/localtime or UTC
    monkeypatch.setattr("os.path.realpath", lambda _: "/nowhere/localtime")
    assert host_zone() == "UTC"
    monkeypatch.setattr("os.path.realpath", lambda _: "/usr/share/zoneinfo/Europe/Lisbon")
    assert host_zone() == "Europe/Lisbon"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(tmp_path / "pump", ServerOptions(speed_milli=1_000)) as s:
        yield s


def _connect(server: EmulatorServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    assert server.port_path
    return programmer.connect(
        f"serial://{server.port_path}",
        key=server.key_files[p.Role.CLINICIAN],
        journal=tmp_path / "journal.sqlite",
    )


async def test_sync_with_a_zone_then_a_dst_change_makes_the_offset_stale(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """Synced to Paris on 28 March (UTC+1); a 1.0 SET_CLOCK on 30 March moves the clock but
    keeps UTC+1, which is stale for Paris (UTC+2): the programmer warns; a sync with the zone
    sets UTC+2 and the warning goes."""
    async with _connect(server, tmp_path) as pump:
        await pump.sync_clock(MAR_28_NOON, zone="Europe/Paris")
        local = await pump.local_clock()
        assert local is not None
        assert (local.utc_offset_ms, local.zone, local.stale) == (H, "Europe/Paris", False)
        assert local.local_ms - local.pump_time_ms == H
        assert server.device.pump.status().utc_offset_ms == H
        await pump.sync_clock(MAR_30_NOON)  # 1.0 SET_CLOCK: the offset stays
        local = await pump.local_clock()
        assert local is not None and local.stale and local.zone_offset_ms == 2 * H
        warning = local.warning()
        assert warning is not None and "UTC+01:00" in warning and "UTC+02:00" in warning
        await pump.sync_clock(MAR_30_NOON, zone="Europe/Paris")
        snap = await pump.interrogate()
        assert snap.local_clock is not None and snap.local_clock.utc_offset_ms == 2 * H
        assert not snap.local_clock.stale


async def test_the_pump_refuses_a_bad_zone_and_keeps_its_clock(
    server: EmulatorServer, tmp_path: Path
) -> None:
    async with _connect(server, tmp_path) as pump:
        await pump.sync_clock(MAR_28_NOON, zone="Europe/Paris")
        for zone, offset in (("", H), ("Europe/Paris;", H), ("Europe/Paris", H + 1)):
            msg = p.SetClockLocal(
                command_id=uuid.uuid4().bytes,
                pump_time_ms=MAR_30_NOON,
                utc_offset_ms=offset,
                zone=zone,
            )
            with pytest.raises(programmer.Refused) as exc:
                await pump.send_command(msg)
            assert exc.value.code is p.ErrorCode.INVALID_VALUE
        local = await pump.local_clock()
        assert local is not None and (local.utc_offset_ms, local.zone) == (H, "Europe/Paris")
        assert local.pump_time_ms < MAR_30_NOON
        with pytest.raises(programmer.BadInput, match="not a time zone"):
            await pump.sync_clock(zone="Europe/Atlantis")


async def test_cli_clock_sync_zone_and_interrogate(server: EmulatorServer, tmp_path: Path) -> None:
    rc, out, _ = await cli(server, tmp_path, "clock", "--sync", "--zone", "Asia/Tokyo")
    assert rc == 0 and "Asia/Tokyo (UTC+09:00)" in out and "local time" in out
    st = server.device.pump.status()
    assert (st.utc_offset_ms, st.zone) == (9 * H, "Asia/Tokyo")
    rc, out, _ = await cli(server, tmp_path, "interrogate")
    assert rc == 0 and "Asia/Tokyo (UTC+09:00)" in out and "WARNING" not in out
    rc, out, _ = await cli(server, tmp_path, "clock", "--json")
    assert rc == 0 and '"zone": "Asia/Tokyo"' in out
    rc, _, err = await cli(server, tmp_path, "clock", "--sync", env={"TZ": "Asia/Kolkata"})
    assert rc == 0 and server.device.pump.status().zone == "Asia/Kolkata"
    rc, _, err = await cli(server, tmp_path, "clock", "--sync", "--zone", "Mars/Olympus_Mons")
    assert rc != 0 and "not a time zone" in err
    assert server.device.pump.status().zone == "Asia/Kolkata"
