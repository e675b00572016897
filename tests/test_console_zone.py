"""The instructor console shows the pump's clinic zone and UTC offset beside the pump clock, and
reads a clock sync's records as one line of the log (Playwright on Debian's Chromium)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import firmware_model as fm
import protocol as p
from emulator import EmulatorServer, ServerOptions

from .browser_helpers import expect
from .console_helpers import get_json, open_console

HOUR = 3_600_000


async def test_the_console_shows_the_zone_beside_the_pump_clock(
    tmp_path: Path,
    browser: Any,
) -> None:
    options = ServerOptions(
        speed_milli=1000, control=("127.0.0.1", 0), console=True, pty=False,
        zone="America/St_Johns",
    )  # fmt: skip
    async with EmulatorServer(tmp_path / "pump", options) as srv:
        assert srv.control is not None
        cp = srv.control
        state = await get_json(cp.url, f"/v1/pumps/{srv.device.pump.serial}", cp.token)
        off = state["status"]["utc_offset_ms"]
        assert state["status"]["zone"] == "America/St_Johns" and off % (30 * 60_000) == 0
        page = await open_console(browser, cp.console_url)
        zone = page.locator("#clock-zone")
        # a half-hour zone west of UTC: the sign and the minutes both matter
        await expect(zone).to_have_text(f"America/St_Johns (UTC{p.offset_hhmm(off)})")
        await expect(zone).to_have_attribute("data-value", str(off))
        first = f"clock set: {p.offset_hhmm(off)} America/St_Johns (was +00:00 UTC)"
        await expect(page.locator("#log-body")).to_contain_text(first)

        dev = srv.device  # a sync while the page is open (past the pump's self test)
        dev.clock.jump_to(dev.clock.now() + 3_000)
        dev.advance()
        dev.pump.set_clock(
            dev.pump.clock_ms, utc_offset_ms=5 * HOUR + 30 * 60_000, zone="Asia/Kolkata",
            source=fm.Source.CONTROL,
        )  # fmt: skip
        await expect(zone).to_have_text("Asia/Kolkata (UTC+05:30)")
        await expect(zone).to_have_attribute("data-value", str(5 * HOUR + 30 * 60_000))
        row = page.locator("#log-body tr[data-kind=ZONE_SET]").first
        await expect(row).to_contain_text(
            f"clock set: +05:30 Asia/Kolkata (was {p.offset_hhmm(off)} America/St_Johns)"
        )
        assert not page.errors
