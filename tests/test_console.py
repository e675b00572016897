"""The instructor console's page in a real browser (Playwright driving Debian's Chromium), checked
against the control plane's JSON state. Screenshots go to the test's tmp dir;
ITP_UPDATE_SCREENSHOTS=1 also rewrites docs/console.png (the README's picture). Its streams and
files over raw HTTP: tests/test_console_streams.py, tests/test_console_files.py.

The README's test command installs both Debian's Chromium and playwright, so a missing one fails
the browser tests (with the command that installs it) rather than skipping them."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

import firmware_model as fm
import programmer
import protocol as p
from emulator import EmulatorServer, PumpDevice, Runtime, VirtualClock
from emulator._clock import wall_ms
from emulator._control import ControlPlane
from emulator._scenario import load_scenario, starting_pump
from emulator.testing import EmulatedPump

from .browser_helpers import expect
from .console_helpers import (
    SERIAL,
    assert_page_shows,
    control_of,
    get_json,
    open_console,
    server,
)

__all__ = ["server"]  # the console's pump fixture (tests/console_helpers.py), used by name

ROOT = Path(__file__).resolve().parent.parent


FLEX = [(0, 400_000), (7 * 60, 600_000), (22 * 60, 400_000)]  # (start minute, ng/day)


# --- in a real browser -----------------------------------------------------------------------


async def test_drive_a_training_scenario_from_the_page(
    server: EmulatorServer, browser: Any, tmp_path: Path
) -> None:
    """A trainee programs a flex schedule; the instructor fast-forwards to the low-reservoir
    alarm, injects a motor stall and clears it through the page's controls only; the page is
    checked against the control plane's JSON at each step."""
    cp = control_of(server)
    base = f"/v1/pumps/{SERIAL}"
    pty = f"serial://{server.port_path}"
    key = server.key_files[p.Role.CLINICIAN]
    async with programmer.connect(pty, key=key, journal=tmp_path / "journal.sqlite") as pump:
        # domain.md 2.6: 400 mcg/day at night, 600 by day: 525 mcg/day, 0.2625 mL/day
        await (await pump.prepare_schedule(FLEX)).commit()
    await (await browser.new_page()).goto(f"{cp.url}/openapi.json")  # warm the browser up
    page = await open_console(browser, cp.console_url)
    # how fast it is on screen is measured by bench/console.py, never asserted in a test
    assert await page.evaluate("window.consoleReadyMs") > 0
    assert "token" not in page.url  # not left in the address bar, on the projector
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")

    # pause pump time so the page and the JSON can be compared at leisure
    await page.click("#pause")
    await expect(page.locator("#speed-display")).to_have_text("paused")
    state = await get_json(cp.url, base, cp.token)
    assert state["paused"]
    await expect(page.locator("#pause")).to_contain_text("Resume")
    await assert_page_shows(page, state)
    assert state["program"]["schedule"] == [list(step) for step in FLEX]
    await expect(page.locator("#sched-sub")).to_have_text("(3 steps)")
    minute = (state["status"]["clock_ms"] % fm.DAY_MS) // fm.MS_PER_MIN
    assert await page.get_attribute("#schedule-chart", "data-now") == str(minute)
    await expect(page.locator("#dose")).to_have_text("525 mcg/day")
    flex = page.locator("#log-body tr.src-PROGRAMMER[data-kind=PROGRAM_CHANGED]")
    await expect(flex.first).to_contain_text("program SCHEDULE, 525 mcg/day")
    await page.screenshot(path=tmp_path / "console-start.png", full_page=True)

    # a jump forward asks first; cancel changes nothing
    await page.click("#advance-btn")
    await expect(page.locator("#confirm")).to_be_visible()
    await expect(page.locator("#confirm-text")).to_contain_text("cannot be moved back")
    await page.click("#confirm-cancel")
    await expect(page.locator("#action-result")).to_contain_text("cancelled")
    assert (await get_json(cp.url, base, cp.token))["status"]["now"] == state["status"]["now"]

    # fast-forward to the low-reservoir alarm: 18 mL at 0.2625 mL/day, day 68.57
    await page.select_option("#advance-until", "low-reservoir")
    await page.click("#advance-until-btn")
    await page.click("#confirm-ok")
    await expect(page.locator("#alarm-name")).to_have_attribute("data-value", "LOW_RESERVOIR")
    state = await get_json(cp.url, base, cp.token)
    assert state["status"]["active_alarms"] == ["LOW_RESERVOIR"]
    await assert_page_shows(page, state)
    await expect(page.locator("#alarm-banner")).to_have_attribute("data-level", "noncritical")
    await expect(page.locator("#alarm-tone")).to_have_text("single tone every 1 h 00 min")
    await expect(page.locator("#res-days-low")).to_have_text("raised now")
    advanced = re.compile(r"time advanced by 68\.[56]\d days")  # the flex's phase decides
    jump = page.locator("#log-body tr.src-CONTROL", has_text=advanced)
    await expect(jump).to_have_count(1)
    raised = page.locator("#log-body tr[data-kind=ALARM_RAISED]", has_text="LOW_RESERVOIR")
    await expect(raised).to_have_count(1)
    await expect(page.locator("#history-chart line.mark-ALARM_RAISED")).to_have_count(1)
    assert int(await page.get_attribute("#history-chart", "data-samples")) > 100
    await page.screenshot(path=tmp_path / "console-low-reservoir.png", full_page=True)

    # inject a motor stall: critical, two-tone, no flow
    await page.select_option("#fault-kind", "MOTOR_STALL")
    await page.click("#inject")
    await expect(page.locator("#alarm-name")).to_have_attribute("data-value", "MOTOR_STALL")
    state = await get_json(cp.url, base, cp.token)
    assert state["status"]["faults"] == ["MOTOR_STALL"] and not state["status"]["delivering"]
    await assert_page_shows(page, state)
    await expect(page.locator("#alarm-banner")).to_have_attribute("data-level", "critical")
    await expect(page.locator("#alarm-tone")).to_have_text("two-tone every 10 min 00 s")
    await expect(page.locator("#delivering")).to_have_text("NO")
    await expect(page.locator("#history-chart line.mark-FAULT")).to_have_count(1)
    await page.screenshot(path=tmp_path / "console-motor-stall.png", full_page=True)
    if os.environ.get("ITP_UPDATE_SCREENSHOTS") == "1":
        await page.screenshot(path=ROOT / "docs" / "console.png", full_page=True)

    # clear it: the fault ends, the alarm stays latched until a programmer acknowledges it
    await page.click("button[data-clear=MOTOR_STALL]")
    await expect(page.locator("#faults-active")).to_have_attribute("data-value", "")
    state = await get_json(cp.url, base, cp.token)
    stall = next(a for a in state["alarms"] if a["alarm"] == ["MOTOR_STALL"])
    assert state["status"]["faults"] == [] and not stall["condition"]
    await assert_page_shows(page, state)
    await expect(page.locator("#alarm-state")).to_have_text("active, cause ended")
    faults = page.locator("#log-body tr.src-CONTROL[data-kind=FAULT]")
    await expect(faults).to_have_count(2)
    await expect(faults.first).to_contain_text("fault MOTOR_STALL cleared")

    # the trainee's programmer silences one alarm and acknowledges the other: shown as such
    async with programmer.connect(pty, key=key, journal=tmp_path / "journal.sqlite") as pump:
        await pump.silence_alarms(p.Alarm.LOW_RESERVOIR, fm.MS_PER_HOUR)
        await pump.acknowledge_alarms(p.Alarm.MOTOR_STALL)
    await expect(page.locator("#alarm-body tr[data-alarm=LOW_RESERVOIR] td.state")).to_contain_text(
        "silenced until"
    )
    state = await get_json(cp.url, base, cp.token)
    assert [a["state"] for a in state["alarms"]] == ["SILENCED"]  # the latched stall is gone
    await assert_page_shows(page, state)
    await expect(page.locator("#alarm-banner")).to_have_attribute("data-level", "quiet")
    prog = page.locator("#log-body tr.src-PROGRAMMER[data-kind=ALARM_SILENCED]")
    await expect(prog).to_have_count(1)
    # programmer commands and control actions look different, not only by their badge text
    styles = await page.evaluate(
        "[...document.querySelectorAll('#log-body tr')].map(r => "
        "[r.className.split(' ')[0], getComputedStyle(r).backgroundColor])"
    )
    backgrounds = dict(styles)
    assert backgrounds["src-PROGRAMMER"] != backgrounds["src-CONTROL"]
    await page.screenshot(path=tmp_path / "console-programmer.png", full_page=True)
    assert page.errors == []


async def test_every_action_goes_through_the_control_plane(
    server: EmulatorServer, browser: Any, tmp_path: Path
) -> None:
    cp = control_of(server)
    base = f"/v1/pumps/{SERIAL}"
    page = await open_console(browser, cp.console_url)
    # speed slider: x1000 (stop 9)
    await page.locator("#speed").fill("9")
    await expect(page.locator("#speed-display")).to_have_text("x1,000")
    assert (await get_json(cp.url, base, cp.token))["speed_factor"] == 1000
    await page.click("#pause")
    await expect(page.locator("#speed-display")).to_have_text("paused")
    # next event: a constant program's next event is the low-reservoir alarm, 72 days away
    state = await get_json(cp.url, base, cp.token)
    assert state["next_event_at_ms"] - state["status"]["clock_ms"] > 71 * fm.DAY_MS
    await expect(page.locator("#next-when")).to_contain_text("days")
    await page.click("#next-event")
    await expect(page.locator("#confirm-text")).to_contain_text("days ahead")
    await page.click("#confirm-ok")
    await expect(page.locator("#action-result")).to_have_text("jump to the next event: done")
    state = await get_json(cp.url, base, cp.token)
    assert state["status"]["active_alarms"] == ["LOW_RESERVOIR"]
    # while an alarm sounds, the next event is its next tone: a small step, no question
    assert state["next_event_at_ms"] - state["status"]["clock_ms"] == fm.MS_PER_HOUR
    await page.click("#next-event")
    await expect(page.locator("#clock")).to_have_attribute(
        "data-value", str(state["next_event_at_ms"])
    )
    calc = (await get_json(cp.url, base, cp.token))["status"]["reservoir_nl"]
    # true reservoir (asks first)
    await page.fill("#true-ml", "7.5")
    await page.click("#set-true")
    await page.click("#confirm-ok")
    await expect(page.locator("#res-true")).to_have_attribute("data-value", "7500000")
    state = await get_json(cp.url, base, cp.token)
    assert state["status"]["true_reservoir_nl"] == 7_500_000
    assert state["status"]["reservoir_nl"] == calc  # the pump does not know
    # link impairment
    await page.fill("#link-drop", "20")
    await page.fill("#link-delay", "300")
    await page.click("#link-apply")
    await expect(page.locator("#link-state")).to_have_text("20 % lost, 300 ms delay")
    link = await get_json(cp.url, f"{base}/link", cp.token)
    assert link["drop"] == 0.2 and link["delay_ms"] == 300
    await page.click("#link-clear")
    await expect(page.locator("#link-state")).to_have_text("clean")
    # a fault with a parameter, and one that cannot be undone (asks first)
    await page.select_option("#fault-kind", "POCKET_FILL")
    await page.fill("#fp-volume_nl", "2")
    await page.click("#inject")
    await expect(page.locator("#faults-active")).to_have_attribute("data-value", "POCKET_FILL")
    await page.select_option("#fault-kind", "PREMATURE_ERI")
    await page.click("#inject")
    await expect(page.locator("#confirm-text")).to_contain_text("cannot be cleared")
    await page.click("#confirm-ok")
    eri = page.locator("#alarm-body tr[data-alarm=ELECTIVE_REPLACEMENT]")
    await expect(eri).to_contain_text("non-critical, low")  # behind the low-reservoir alarm
    await expect(page.locator("#battery-state")).to_have_text("elective replacement")
    # a refused action says why, and changes nothing
    await page.fill("#true-ml", "25")
    await page.click("#set-true")
    await page.click("#confirm-ok")
    await expect(page.locator("#action-result")).to_have_attribute("data-kind", "error")
    await expect(page.locator("#action-result")).to_contain_text("(400)")
    assert (await get_json(cp.url, base, cp.token))["status"]["true_reservoir_nl"] == 7_500_000
    # load a training scenario (asks first): a new pump, a new log
    await page.select_option("#scenario", "patient-bolus-lockout")
    await page.click("#load-scenario")
    await expect(page.locator("#confirm-text")).to_contain_text("memory and event log are erased")
    await page.click("#confirm-ok")
    await expect(page.locator("#drug")).to_have_text("morphine")
    state = await get_json(cp.url, base, cp.token)
    await assert_page_shows(page, state)
    await expect(page.locator("#pb-enabled")).to_have_text("yes")
    await expect(page.locator("#pb-used")).to_have_text("0 of 6")
    reset = page.locator("#log-body tr", has_text="reset to a training scenario")
    await expect(reset).to_have_count(1)
    await expect(page.locator("#log-body tr[data-kind=POWER_ON]")).to_have_count(1)
    # the log filters by kind and by source
    await page.select_option("#log-source", "CONTROL")
    sources = await page.locator("#log-body tr").evaluate_all("rs => rs.map(r => r.className)")
    assert sources and all(c.startswith("src-CONTROL") for c in sources)
    await page.select_option("#log-source", "")
    await page.select_option("#log-kind", "PATIENT_BOLUS_SETTINGS")
    await expect(page.locator("#log-body tr")).to_have_count(1)
    await page.screenshot(path=tmp_path / "console-actions.png", full_page=True)
    assert page.errors == []


async def test_alarm_tones_play_unless_muted(server: EmulatorServer, browser: Any) -> None:
    cp = control_of(server)
    base = f"/v1/pumps/{SERIAL}"
    page = await open_console(browser, cp.console_url)
    mute = page.locator("#mute")
    await expect(mute).to_have_attribute("aria-pressed", "false")  # muted by default
    await get_json(cp.url, f"{base}/advance", cp.token, "POST", {"until": "low-reservoir"})
    await expect(page.locator("#alarm-name")).to_have_attribute("data-value", "LOW_RESERVOIR")
    bell = page.locator("#tone-indicator")
    await expect(bell).to_have_attribute("data-tone", "SINGLE_TONE")  # seen, not heard
    await expect(bell).to_have_attribute("data-count", "0")
    await mute.click()
    await expect(mute).to_have_attribute("aria-pressed", "true")
    await expect(mute).to_have_attribute("data-audio", "running")
    # the next tone comes at the model's repeat interval: one hour of pump time
    await get_json(cp.url, f"{base}/advance", cp.token, "POST", {"ms": fm.MS_PER_HOUR})
    await expect(bell).to_have_attribute("data-count", "1")
    await page.wait_for_timeout(1600)  # the single tone lasts about a second
    await get_json(cp.url, f"{base}/faults", cp.token, "POST", {"kind": "MOTOR_STALL"})
    await expect(bell).to_have_attribute("data-tone", "TWO_TONE")
    await expect(bell).to_have_attribute("data-count", "2")
    await page.keyboard.press("m")
    await expect(mute).to_have_attribute("aria-pressed", "false")
    await page.wait_for_timeout(3600)
    await get_json(cp.url, f"{base}/advance", cp.token, "POST", {"ms": 10 * fm.MS_PER_MIN})
    await expect(page.locator("#alarm-detail")).to_contain_text("Last tone")
    await page.wait_for_timeout(600)
    await expect(bell).to_have_attribute("data-count", "2")  # muted: nothing played
    assert page.errors == []


@pytest.mark.pump(console=True, scenario="routine-refill")
async def test_keyboard_and_projector(pump_emulator: EmulatedPump, browser: Any) -> None:
    """The pytest plugin's fixture with console=True; keys, labels, focus and type size."""
    assert pump_emulator.console_url is not None
    page = await open_console(browser, pump_emulator.console_url)
    # every control has a label or a name; buttons are buttons
    unnamed = await page.evaluate(
        """[...document.querySelectorAll('#detail input, #detail select')]
           .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
           .map(e => e.id)"""
    )
    assert unnamed == []
    assert await page.locator("[onclick], div[role=button], a:not([href])").count() == 0
    font = await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert font >= 20  # projector-readable
    # Tab walks the page in reading order and reaches the instructor's actions
    order = []
    for _ in range(12):
        await page.keyboard.press("Tab")
        order.append(await page.evaluate("document.activeElement.id"))
    assert order[:6] == ["skip", "nav-fleet", "mute", "help-btn", "hist-range", "speed"]
    assert order.index("pause") < order.index("next-event") < order.index("advance-days")
    # shortcuts
    await page.locator("#detail").click(position={"x": 5, "y": 5})
    await page.keyboard.press("p")
    await expect(page.locator("#speed-display")).to_have_text("paused")
    # The stream has caught up with the pause: a state it pushed just before the pause cannot
    # come after this record and turn the next P into a second pause.
    await expect(page.locator("#log-body tr", has_text="pump time paused").first).to_be_visible()
    await expect(page.locator("#speed-display")).to_have_text("paused")
    assert (await asyncio.to_thread(pump_emulator.control.state))["paused"]
    await page.keyboard.press("p")
    await expect(page.locator("#speed-display")).to_have_text("x1")
    await page.keyboard.type("+")
    await expect(page.locator("#speed-display")).to_have_text("x2")
    assert (await asyncio.to_thread(pump_emulator.control.state))["speed_factor"] == 2
    await page.keyboard.press("?")
    await expect(page.locator("#help")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.locator("#help")).to_be_hidden()
    await page.keyboard.press("a")  # next alarm asks first; Escape cancels
    await expect(page.locator("#confirm")).to_be_visible()
    focused = await page.evaluate("document.activeElement.id")
    assert focused == "confirm-cancel"  # the safe choice has the focus
    await page.keyboard.press("Escape")
    await expect(page.locator("#action-result")).to_contain_text("cancelled")
    # the schedule chart marks "now" at the pump clock's time of day
    state = await asyncio.to_thread(pump_emulator.control.state)
    minute = (state["status"]["clock_ms"] % fm.DAY_MS) // fm.MS_PER_MIN
    now = int(await page.get_attribute("#schedule-chart", "data-now"))
    assert abs(now - minute) <= 1
    await expect(page.locator("#sched-now")).to_have_count(1)
    assert page.errors == []


async def test_a_wrong_token_asks_for_one(server: EmulatorServer, browser: Any) -> None:
    cp = control_of(server)
    page = await browser.new_page()
    await page.goto(f"{cp.url}/console/#token=wrong")
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#login-error")).to_contain_text("refused")
    await page.fill("#token-input", cp.token)
    await page.press("#token-input", "Enter")
    await expect(page.locator("#detail")).to_be_visible()
    await expect(page.locator("#drug")).to_have_text("baclofen")


async def _days_to_refill(cp: ControlPlane, row: Any, serial: int) -> tuple[str | None, str]:
    """(the row's days to refill, the control plane's to one decimal) once they agree, or at
    the deadline. Pump time runs at x1000, a tenth of a day in 8.6 s: the page's last push and
    one read of the control plane can fall on either side of a tenth, so both are read again
    until a push and a read meet (each push comes within a second)."""
    deadline = time.monotonic() + 60
    while True:
        summaries = await get_json(cp.url, "/v1/pumps", cp.token)
        (summary,) = [s for s in summaries if s["serial"] == serial]
        days = f"{summary['days_to_refill']:.1f}"
        shown = await row.locator("td.days").text_content()
        if shown == days or time.monotonic() > deadline:
            return shown, days
        await asyncio.sleep(0.2)


async def test_a_fleet_at_a_glance(browser: Any, tmp_path: Path) -> None:
    names = ["low-reservoir-alarm-day", "routine-refill", "motor-stall-after-mri"]
    runtimes = {}
    for i, name in enumerate(names):
        pump = starting_pump(load_scenario(name), now_ms=wall_ms(), serial=7000 + i)
        keys = {r: p.SecretKey(secrets.token_bytes(32)) for r in p.Role}
        runtimes[7000 + i] = Runtime(PumpDevice(pump, keys, clock=VirtualClock(pump.now, 1000)))
    tasks = [asyncio.create_task(rt.run_clock()) for rt in runtimes.values()]
    cp = ControlPlane(runtimes, token=secrets.token_urlsafe(16), console=True)
    await cp.start()
    try:
        page = await open_console(browser, cp.console_url)
        await expect(page.locator("#fleet-body tr")).to_have_count(3)
        for serial in runtimes:
            row = page.locator(f"#fleet-body tr[data-serial='{serial}']")
            shown, days = await _days_to_refill(cp, row, serial)
            assert shown == days
            await expect(row.locator("td.alarm")).to_have_text("none")
        # pushed, not reloaded: a pump reaching its alarm shows in the list
        await get_json(cp.url, "/v1/pumps/7002/faults", cp.token, "POST", {"kind": "MOTOR_STALL"})
        row = page.locator("#fleet-body tr[data-serial='7002']")
        await expect(row.locator("td.alarm .badge.crit")).to_have_text("motor stall")
        await page.screenshot(path=tmp_path / "console-fleet.png")
        # each row opens the pump's detail
        await row.get_by_role("button", name="Open pump 7002").click()
        await expect(page.locator("#pump-title")).to_contain_text("pump 7002")
        await expect(page.locator("#alarm-name")).to_have_attribute("data-value", "MOTOR_STALL")
        await page.keyboard.press("f")
        await expect(page.locator("#fleet")).to_be_visible()
        assert page.errors == []
    finally:
        await cp.close()
        for rt in runtimes.values():
            rt.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
