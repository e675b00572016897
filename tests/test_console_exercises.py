"""The instructor console lists every trainee's progress live (emulator/console/exercise.js,
GET /v1/exercises): two pumps run a graded exercise, one trainee does it right through the
programmer library over a pty; the fleet page shows both rows, the first turning to passed
without a reload, in a real browser (Playwright driving Debian's Chromium)."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import programmer
import protocol as p
from emulator import PumpDevice, Runtime, VirtualClock
from emulator._clock import wall_ms
from emulator._control import ControlPlane
from emulator._keys import key_path, load_or_create_keys
from emulator._scenario import load_scenario, starting_pump
from emulator._serial import PtyLink

from .browser_helpers import expect
from .console_helpers import get_json, open_console
from .test_exercises import refill_keep_dose

EXERCISE = "exercise-refill-keep-dose"


async def test_the_fleet_page_lists_every_trainee_live(browser: Any, tmp_path: Path) -> None:
    runtimes = {}
    for serial in (7100, 7101):
        model = starting_pump(load_scenario("routine-refill"), now_ms=wall_ms(), serial=serial)
        keys = load_or_create_keys(tmp_path / str(serial))
        runtimes[serial] = Runtime(PumpDevice(model, keys, clock=VirtualClock(model.now, 1000)))
    tasks = [asyncio.create_task(rt.run_clock()) for rt in runtimes.values()]
    cp = ControlPlane(runtimes, token=secrets.token_urlsafe(16), console=True)
    await cp.start()
    link = PtyLink(runtimes[7100])
    try:
        assert await get_json(cp.url, "/v1/exercises", cp.token) == []
        for serial in runtimes:  # the instructor starts the exercise on both pumps
            await get_json(cp.url, f"/v1/pumps/{serial}/reset", cp.token, "POST",
                           {"scenario": EXERCISE})  # fmt: skip
        task = load_scenario(EXERCISE).exercise
        assert task is not None
        page = await open_console(browser, cp.console_url)
        rows = page.locator("#trainees-body tr")
        await expect(rows).to_have_count(2)
        for serial in runtimes:
            row = page.locator(f"#trainees-body tr[data-serial='{serial}']")
            await expect(row.locator("td.task")).to_have_text(task.task)
            await expect(row).to_have_attribute("data-passed", "0")
            await expect(row.locator("td.score")).to_contain_text("in progress: ")
        path = link.open()
        async with programmer.connect(
            f"serial://{path}",
            key=key_path(tmp_path / "7100", p.Role.CLINICIAN),
            journal=tmp_path / "journal.sqlite",
        ) as pump:
            await refill_keep_dose(pump)
        done = page.locator("#trainees-body tr[data-serial='7100']")
        await expect(done).to_have_attribute("data-passed", "1")  # live, no reload
        listed = await get_json(cp.url, "/v1/exercises", cp.token)
        first = next(g for g in listed if g["serial"] == 7100)
        assert first["passed"] and first["not_yet"] == []
        await expect(done.locator("td.score")).to_have_text(f"passed: {first['score']} right")
        await expect(done.locator("td.taken")).to_have_text(f"{first['minutes_taken']:.1f} min")
        await expect(done.locator("td.not-yet")).to_have_text("–")
        other = page.locator("#trainees-body tr[data-serial='7101']")
        await expect(other).to_have_attribute("data-passed", "0")
        second = next(g for g in listed if g["serial"] == 7101)
        assert second["not_yet"]
        await expect(other.locator("td.not-yet")).to_have_text("; ".join(second["not_yet"]))
        assert page.errors == []
    finally:
        link.close()
        await cp.close()
        for rt in runtimes.values():
            rt.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
