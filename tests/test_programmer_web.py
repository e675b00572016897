"""The web programmer (`pump-programmer web`) in a real browser (Playwright driving Debian's
Chromium: tests/browser_helpers.py, as for tests/test_console.py): a trainee refills and changes
the dose through the page and the emulated pump's state matches; a wrong entry is refused with a
clear message and changes nothing; a lost link leaves the outcome UNKNOWN, never re-sent, and
Reconnect resolves it from the pump. ITP_UPDATE_SCREENSHOTS=1 also rewrites
docs/programmer-web.png and docs/programmer-web-finish.png (the refill's Finish screen)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import firmware_model as fm
import protocol as p
from emulator import EmulatorServer, ServerOptions
from emulator._exercise import grade, read_activity, write_grade
from emulator._runtime import Impairment
from programmer._web import WebProgrammer
from programmer._web_session import WebSession

from .browser_helpers import expect
from .emulator_helpers import http_request

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def server(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[EmulatorServer]:
    scenario = getattr(request, "param", "low-reservoir-alarm-day")
    options = ServerOptions(
        speed_milli=1000, scenario=scenario, control=("127.0.0.1", 0), console=True
    )
    async with EmulatorServer(tmp_path / "pump", options) as s:
        yield s


@pytest.fixture
async def web(server: EmulatorServer, tmp_path: Path) -> AsyncIterator[WebProgrammer]:
    assert server.port_path
    session = WebSession(
        f"serial://{server.port_path}",
        server.key_files[p.Role.CLINICIAN],
        journal=tmp_path / "journal.sqlite",
        timeout_s=0.3,
        activity=tmp_path / "activity.jsonl",
    )
    w = WebProgrammer(session)
    await w.start()
    await session.open()
    try:
        yield w
    finally:
        await w.close()


async def open_page(browser: Any, web: WebProgrammer) -> Any:
    page = await browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    await page.goto(web.page_url)
    await page.wait_for_selector("body[data-complete]", state="attached")
    return page


def model(server: EmulatorServer) -> fm.Status:
    assert server.runtime is not None
    return server.runtime.device.pump.status()


def row(page: Any, table: str, name: str) -> Any:
    return page.locator(f"{table} tr[data-row='{name}'] td").last


async def test_a_refill_and_a_dose_change_through_the_page(
    server: EmulatorServer, web: WebProgrammer, browser: Any, tmp_path: Path
) -> None:
    page = await open_page(browser, web)
    await expect(page.locator("#link-state")).to_have_text("connected")
    await expect(row(page, "#summary", "drug")).to_have_text("baclofen")
    await expect(row(page, "#summary", "concentration")).to_have_text("2000 mcg/mL")
    await expect(row(page, "#summary", "daily dose")).to_have_text("500 mcg/day")
    await expect(row(page, "#summary", "reservoir")).to_have_text("20.00 mL")
    for label in ("next refill (low-reservoir alarm)", "battery", "battery replacement due"):
        await expect(row(page, "#summary", label)).to_contain_text(" ")
    font = await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert font >= 20

    # the refill wizard: aspirate, then a new concentration, then the Finish screen
    await page.click("nav button[data-panel=refill]")
    focused = await page.evaluate("document.activeElement.name")
    assert focused == "withdrawn"  # the first step has the focus
    await page.keyboard.type("20 mL")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")  # past the drug (chosen below), to the concentration
    await page.keyboard.type("1500 mcg/mL")
    await page.select_option("select[name=drug]", "baclofen")
    await page.fill("input[name=added]", "18 mL")
    await page.locator("#panel-refill button[type=submit]").press("Enter")
    finish = page.locator("#finish")
    await expect(finish).to_be_visible()
    assert await page.evaluate("document.activeElement.id") == "finish-cancel"
    await expect(row(page, "#finish-diff", "concentration")).to_have_text("1500 mcg/mL")
    await expect(page.locator("#finish-diff tr[data-row='concentration'] td").first).to_have_text(
        "2000 mcg/mL"
    )
    await expect(row(page, "#finish-diff", "expected residual")).to_contain_text("mL")
    await expect(page.locator("#finish-verdict")).to_contain_text("within the limits")
    # the new alarm dates: none while the new concentration stops the program
    await expect(row(page, "#finish-diff", "empty")).to_have_text("when a new program is set")
    await expect(page.locator("#finish-warnings li")).to_contain_text("concentration changes")
    if os.environ.get("ITP_UPDATE_SCREENSHOTS") == "1":
        await page.screenshot(path=ROOT / "docs" / "programmer-web-finish.png")
    version = model(server).program_version
    # the warning must be confirmed: Send without it sends nothing
    await page.click("#finish-send")
    await expect(page.locator("#finish-error")).to_contain_text("nothing was sent")
    assert model(server).program_version == version
    await page.check("#finish-confirm")
    await page.click("#finish-send")
    await expect(finish).to_be_hidden()
    await expect(page.locator("#message")).to_contain_text("Sent: refill")
    st = model(server)
    assert st.conc_ng_per_ml == 1_500_000 and st.reservoir_nl == 18 * fm.NL_PER_ML
    await expect(row(page, "#summary", "concentration")).to_have_text("1500 mcg/mL")
    await expect(row(page, "#summary", "reservoir")).to_have_text("18.00 mL")

    # the dose change, by keyboard only: type, Enter, Tab to Send, Enter
    await page.click("nav button[data-panel=dose]")
    await page.keyboard.type("600 mcg/day")
    await page.keyboard.press("Enter")
    await expect(finish).to_be_visible()
    await expect(row(page, "#finish-diff", "daily dose")).to_have_text("600 mcg/day")
    await expect(row(page, "#finish-diff", "rate")).to_have_text("0.4 mL/day")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "finish-send"
    await page.keyboard.press("Enter")
    await expect(finish).to_be_hidden()
    await expect(row(page, "#summary", "daily dose")).to_have_text("600 mcg/day")
    st = model(server)
    assert st.daily_dose_ng == 600_000 and st.mode is fm.Mode.CONTINUOUS
    assert st.basal_rate_nl_per_day == 400_000
    # each Finish screen went exactly once: one refill (its new concentration stops the
    # program: a PROGRAM_CHANGED of its own) and one dose change
    assert server.runtime is not None
    kinds = [e.kind for e in server.runtime.device.pump.events() if e.seq > 4]
    assert kinds.count(fm.EventKind.REFILL) == 1
    assert kinds.count(fm.EventKind.DRUG_CHANGED) == 1
    assert kinds.count(fm.EventKind.PROGRAM_CHANGED) == 2
    activity = (tmp_path / "activity.jsonl").read_text().splitlines()
    assert len(activity) == 2 and '"warnings_confirmed": ["the drug' in activity[0]
    await page.screenshot(path=tmp_path / "programmer-web.png", full_page=True)
    if os.environ.get("ITP_UPDATE_SCREENSHOTS") == "1":
        await page.screenshot(path=ROOT / "docs" / "programmer-web.png", full_page=True)
    assert page.errors == []


async def test_a_wrong_entry_is_refused_and_changes_nothing(
    server: EmulatorServer, web: WebProgrammer, browser: Any
) -> None:
    page = await open_page(browser, web)
    before = model(server)
    seq = before.event_seq
    await page.click("nav button[data-panel=dose]")
    error = page.locator("#panel-dose .error")
    cases = {
        "600 mcg/mL": "that is a concentration",
        "600": "give a unit",
        "abc mg": "is not a number",
        "3000 mcg/day": "hard limit",
    }
    for typed, why in cases.items():
        await page.fill("input[name=dose]", typed)
        await page.keyboard.press("Enter")
        await expect(error).to_contain_text("nothing was sent")
        await expect(error).to_contain_text(why)
        await expect(page.locator("#finish")).to_be_hidden()
    await page.click("nav button[data-panel=refill]")
    await page.fill("input[name=withdrawn]", "2 mg")
    await page.fill("input[name=concentration]", "2000 mcg/mL")
    await page.fill("input[name=added]", "20 mL")
    await page.keyboard.press("Enter")
    await expect(page.locator("#panel-refill .error")).to_contain_text("a volume in mL")
    # cancelling a Finish screen sends nothing either
    await page.fill("input[name=withdrawn]", "20 mL")
    await page.select_option("select[name=drug]", "baclofen")
    await page.keyboard.press("Enter")
    await expect(page.locator("#finish")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.locator("#message")).to_contain_text("nothing was sent")
    after = model(server)
    assert after.program_version == before.program_version
    assert (after.daily_dose_ng, after.conc_ng_per_ml) == (500_000, 2_000_000)
    assert server.runtime is not None
    new = [e.kind for e in server.runtime.device.pump.events() if e.seq > seq]
    assert fm.EventKind.REFILL not in new and fm.EventKind.PROGRAM_CHANGED not in new
    assert page.errors == []


async def test_a_lost_link_shows_unknown_and_reconnect_resolves_it(
    server: EmulatorServer, web: WebProgrammer, browser: Any
) -> None:
    page = await open_page(browser, web)
    await page.click("nav button[data-panel=dose]")
    await page.keyboard.type("700 mcg/day")
    await page.keyboard.press("Enter")
    await expect(page.locator("#finish")).to_be_visible()
    assert server.runtime is not None
    server.runtime.impairment = Impairment(cut=True)  # the wand slips off
    await page.click("#finish-send")
    await expect(page.locator("#link-state")).to_have_text("outcome unknown", timeout=30_000)
    await expect(page.locator("#message")).to_contain_text("UNKNOWN")
    await expect(page.locator("#message")).to_contain_text("not sent again")
    await expect(page.locator("#unresolved")).to_contain_text("not re-sent")
    assert model(server).daily_dose_ng == 500_000  # the cut line carried nothing
    server.runtime.impairment = Impairment()
    await page.click("#reconnect")
    await expect(page.locator("#link-state")).to_have_text("connected", timeout=15_000)
    await expect(page.locator("#unresolved")).to_contain_text("resolved by the pump as")
    await expect(page.locator("#unresolved")).not_to_contain_text("not re-sent")
    assert model(server).daily_dose_ng == 500_000  # resolved, never re-sent
    assert page.errors == []


async def refill_on_the_page(page: Any, withdrawn: str, conc: str, added: str) -> None:
    await page.click("nav button[data-panel=refill]")
    await page.fill("input[name=withdrawn]", withdrawn)
    await page.select_option("select[name=drug]", "baclofen")
    await page.fill("input[name=concentration]", conc)
    await page.fill("input[name=added]", added)
    await page.keyboard.press("Enter")
    await expect(page.locator("#finish")).to_be_visible()
    if await page.locator("#finish-warnings li").count():
        await page.check("#finish-confirm")  # the trainee overrides the warning
    await page.click("#finish-send")
    await expect(page.locator("#message")).to_contain_text("Sent: refill")


async def graded(server: EmulatorServer, tmp_path: Path) -> dict[str, Any]:
    """The exercise graded twice: by the control plane's route (what the instructor sees) and
    by grade() with the trainee's activity file (the warnings overridden too)."""
    assert server.control is not None and server.runtime is not None
    status, _, body = await http_request(
        server.control.url, "GET", "/v1/pumps/1234/exercise", None, token=server.control.token
    )
    assert status == 200, body
    live = json.loads(body)
    exercise, start = server.runtime.exercise
    activity = read_activity(tmp_path / "activity.jsonl")
    result = grade(exercise, server.runtime.device.pump, start, activity=activity)
    assert [c["ok"] for c in live["checks"]] == [c["ok"] for c in result["checks"]][: live["total"]]
    # what `pump-emulator ctl exercise --activity FILE --out DIR` does: the same score
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emulator.cli", "ctl", "--url", server.control.url,
        f"--token={server.control.token}", "exercise",  # a token may begin with "-"
        "--activity", str(tmp_path / "activity.jsonl"), "--out", str(tmp_path / "ctl"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    assert json.loads(out)["checks"] == result["checks"]
    assert (tmp_path / "ctl" / "grade.html").exists()
    paths = write_grade(result, tmp_path / "grade")
    assert json.loads(paths[0].read_text()) == result
    assert result["score"] in paths[1].read_text()
    return result


@pytest.mark.parametrize("server", ["exercise-refill-keep-dose"], indirect=True)
async def test_a_graded_exercise_done_right_passes(
    server: EmulatorServer, web: WebProgrammer, browser: Any, tmp_path: Path
) -> None:
    assert server.control is not None
    console = await browser.new_page(viewport={"width": 1600, "height": 1000})
    await console.goto(server.control.console_url + "&pump=1234")
    progress = console.locator("#exercise-score")
    await expect(progress).to_contain_text("in progress")  # the instructor's live view
    await expect(console.locator("#exercise-task")).to_contain_text("Refill the pump")
    page = await open_page(browser, web)
    await expect(row(page, "#summary", "reservoir")).to_have_text("8.00 mL")
    await refill_on_the_page(page, "8 mL", "2000 mcg/mL", "20 mL")
    await expect(progress).to_contain_text("passed: 5/5 right")
    await expect(console.locator("#exercise-checks li.wrong")).to_have_count(0)
    result = await graded(server, tmp_path)
    assert result["passed"], result
    assert result["score"] == "6/6" and result["warnings_overridden"] == []
    assert page.errors == []


@pytest.mark.parametrize("server", ["exercise-refill-keep-dose"], indirect=True)
async def test_a_graded_exercise_done_wrong_fails_on_what_was_wrong(
    server: EmulatorServer, web: WebProgrammer, browser: Any, tmp_path: Path
) -> None:
    page = await open_page(browser, web)
    # the wrong vial: 1000 mcg/mL, and the warning that the program stops is overridden
    await refill_on_the_page(page, "8 mL", "1000 mcg/mL", "20 mL")
    result = await graded(server, tmp_path)
    assert not result["passed"]
    wrong = {c["check"] for c in result["checks"] if not c["ok"]}
    assert wrong == {
        "baclofen 2000 mcg/mL in the pump",
        "the daily dose is still 500 mcg/day, delivering",
        "at most 0 warning(s) overridden",
    }, result
    assert result["score"] == "3/6"
    assert "concentration changes" in result["warnings_overridden"][0]
    assert page.errors == []


async def confirm_dialog(page: Any, says: str, sent: str) -> None:
    dialog = page.locator("#confirm")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#confirm-text")).to_contain_text(says)
    assert await page.evaluate("document.activeElement.id") == "confirm-cancel"
    await page.click("#confirm-send")
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#message")).to_contain_text(f"Sent: {sent}")  # the pump answered


async def finish_and_send(page: Any) -> None:
    await expect(page.locator("#finish")).to_be_visible()
    if await page.locator("#finish-warnings li").count():
        await page.check("#finish-confirm")
    await page.click("#finish-send")
    await expect(page.locator("#finish")).to_be_hidden()
    await expect(page.locator("#message")).to_contain_text("Sent:")


@pytest.mark.parametrize("server", ["exercise-low-reservoir-alarm"], indirect=True)
async def test_alarms_schedule_bolus_log_and_clock_through_the_page(
    server: EmulatorServer, web: WebProgrammer, browser: Any
) -> None:
    assert server.runtime is not None
    pump = server.runtime.device.pump
    page = await open_page(browser, web)
    await expect(page.locator("#summary-alarms li")).to_contain_text("low reservoir")

    # alarm review: silence it (confirmed first), then acknowledge it
    await page.click("nav button[data-panel=alarms]")
    await page.check("input[name=alarm][value=low_reservoir]")
    await page.fill("#alarm-form input[name=minutes]", "30 min")
    await page.click("button[data-command=silence]")
    await confirm_dialog(page, "for 30 min", "silenced for 30 min")
    assert [a.state for a in pump.alarms()] == [fm.AlarmState.SILENCED]
    await expect(page.locator("#summary-alarms li")).to_contain_text("silenced until")
    await page.check("input[name=alarm][value=low_reservoir]")
    await page.click("button[data-command=ack]")
    await confirm_dialog(page, "Acknowledge low reservoir", "acknowledged")
    assert [a.state for a in pump.alarms()] == [fm.AlarmState.ACKNOWLEDGED]

    # the flex schedule: too many steps are refused; three steps with the daily total shown
    await page.click("nav button[data-panel=schedule]")
    await expect(page.locator("#max-steps")).to_have_text("24")
    many = "\n".join(f"{h:02d}:00=400mcg" for h in range(24)) + "\n23:30=400mcg"
    await page.fill("textarea[name=steps]", many)
    await page.click("#panel-schedule button[type=submit]")
    await expect(page.locator("#panel-schedule .error")).to_contain_text("at most 24 steps")
    await page.fill("textarea[name=steps]", "00:00=400mcg\n07:00=600mcg\n22:00=400mcg")
    await page.click("#panel-schedule button[type=submit]")
    await expect(row(page, "#finish-diff", "daily dose")).to_have_text("525 mcg/day")
    await finish_and_send(page)
    assert pump.schedule == ((0, 400_000), (420, 600_000), (1320, 400_000))
    await expect(row(page, "#summary", "schedule")).to_contain_text("07:00 600 mcg/day")

    # a clinician bolus on top of it
    await page.click("nav button[data-panel=bolus]")
    await page.fill("#panel-bolus input[name=dose]", "20 mcg")
    await page.click("#panel-bolus form[data-kind=bolus] button[type=submit]")
    await expect(row(page, "#finish-diff", "bolus")).to_contain_text("20 mcg")
    await finish_and_send(page)
    assert pump.status().bolus is fm.BolusKind.CLINICIAN

    # the event log shows what was done, newest first
    await page.click("nav button[data-panel=log]")
    await expect(page.locator("#log tbody tr").first).to_contain_text("bolus started")
    await expect(page.locator("#log tbody")).to_contain_text("alarm silenced")

    # clock sync, with the clinic's zone
    await page.click("nav button[data-panel=clock]")
    await page.fill("#clock-form input[name=zone]", "Europe/Paris")
    await page.click("button[data-command=clock]")
    await confirm_dialog(page, "Europe/Paris", "clock set")
    assert pump.status().zone == "Europe/Paris"
    await expect(row(page, "#summary", "local time")).to_contain_text("Europe/Paris")
    assert page.errors == []


@pytest.mark.parametrize("server", ["exercise-concentration-bridge"], indirect=True)
async def test_the_bridge_exercise_through_the_page(
    server: EmulatorServer, web: WebProgrammer, browser: Any, tmp_path: Path
) -> None:
    page = await open_page(browser, web)
    await refill_on_the_page(page, "10 mL", "2000 mcg/mL", "20 mL")
    await page.click("nav button[data-panel=bridge]")
    await page.fill("#panel-bridge input[name=previous]", "1000 mcg/mL")
    await page.fill("#panel-bridge input[name=dose]", "400 mcg/day")
    await page.keyboard.press("Enter")
    await expect(page.locator("#finish-diff")).to_contain_text("from the pump")  # catheter
    await finish_and_send(page)
    await expect(row(page, "#summary", "mode")).to_have_text("bridge")
    result = await graded(server, tmp_path)
    assert result["passed"], result["checks"]
    assert len(result["warnings_overridden"]) == 1  # the concentration change, allowed here
    assert page.errors == []


@pytest.mark.parametrize("server", ["exercise-patient-bolus"], indirect=True)
async def test_the_patient_bolus_exercise_through_the_page(
    server: EmulatorServer, web: WebProgrammer, browser: Any, tmp_path: Path
) -> None:
    page = await open_page(browser, web)
    await page.click("nav button[data-panel=patient_bolus]")
    form = page.locator("#panel-patient_bolus form")
    await form.locator("input[name=dose]").fill("0.25 mg")
    await form.locator("input[name=lockout]").fill("120 min")
    await form.locator("input[name=max_per_day]").fill("25")
    await page.keyboard.press("Enter")
    await expect(form.locator(".error")).to_contain_text("1 .. 24")  # refused, nothing sent
    await form.locator("input[name=max_per_day]").fill("4")
    await page.keyboard.press("Enter")
    await expect(row(page, "#finish-diff", "lockout")).to_have_text("120 min")
    await expect(row(page, "#finish-diff", "worst-case daily dose")).to_have_text("4 mg/day")
    await finish_and_send(page)
    await expect(row(page, "#summary", "patient bolus")).to_contain_text("0.25 mg over 10 min")
    result = await graded(server, tmp_path)
    assert result["passed"], result["checks"]
    assert page.errors == []
