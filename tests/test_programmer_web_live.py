"""The web programmer's page keeps up with the pump on its own and sends suspend and resume
from a Finish-style confirmation (programmer/web_static/programmer.js), in a real browser
(Playwright driving Debian's Chromium, the fixtures of tests/test_programmer_web.py)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

import firmware_model as fm
from emulator import EmulatorServer
from programmer._web import WebProgrammer
from programmer._web_session import Gone

from .browser_helpers import expect
from .emulator_helpers import http_request
from .test_programmer_web import model, open_page, row, server, web

__all__ = ["server", "web"]  # the fixtures, used by name


async def control(server: EmulatorServer, method: str, path: str, body: Any = None) -> Any:
    assert server.control is not None and server.runtime is not None
    status, _, raw = await http_request(
        server.control.url,
        method,
        f"/v1/pumps/{server.runtime.serial}{path}",
        body,
        token=server.control.token,
    )
    assert status == 200, raw
    return json.loads(raw)


@pytest.mark.parametrize("server", ["routine-refill"], indirect=True)
async def test_an_alarm_the_instructor_raises_shows_without_the_trainee_asking(
    server: EmulatorServer, web: WebProgrammer, browser: Any
) -> None:
    page = await open_page(browser, web)
    await expect(page.locator("#summary-alarms li")).to_have_text("none")
    await expect(page.locator("#updated")).to_have_text(re.compile(r"^updated \d\d:\d\d:\d\d$"))
    await control(server, "POST", "/faults", {"kind": "MOTOR_STALL"})
    assert server.runtime is not None
    assert fm.Alarm.MOTOR_STALL in server.runtime.device.pump.active_alarms
    alarm = page.locator("#summary-alarms li")
    await expect(alarm).to_contain_text("motor stall", timeout=15_000)  # the next poll
    await expect(alarm).to_contain_text("raised")  # the full details were read
    await expect(page.locator("#message")).to_contain_text("New alarm on the pump: motor stall")
    await expect(row(page, "#summary", "mode")).to_contain_text(model(server).mode.name.lower())
    assert page.errors == []


@pytest.mark.parametrize("server", ["routine-refill"], indirect=True)
async def test_suspend_then_resume_from_finish_screens(
    server: EmulatorServer, web: WebProgrammer, browser: Any
) -> None:
    page = await open_page(browser, web)
    assert server.runtime is not None
    pump = server.runtime.device.pump
    dose = row(page, "#summary", "daily dose")
    await expect(dose).to_contain_text("/day")
    running = f"continuous, {await dose.text_content()}"
    await page.click("nav button[data-panel=delivery]")
    # resuming a running pump is refused before anything is sent
    await page.click("form[data-kind=resume] button[type=submit]")
    await expect(page.locator("form[data-kind=resume] .error")).to_contain_text("nothing to resume")
    await page.click("form[data-kind=suspend] button[type=submit]")
    await expect(page.locator("#finish-title")).to_have_text("Finish: suspend delivery")
    await expect(page.locator("#finish-diff tr[data-row='delivery'] td").first).to_have_text(
        running
    )
    await expect(row(page, "#finish-diff", "delivery")).to_have_text("suspended: no drug delivered")
    await expect(row(page, "#finish-diff", "rate")).to_have_text("0 mL/day")
    await expect(page.locator("#finish-warnings li")).to_contain_text("withdrawal")
    await page.click("#finish-send")  # the warning is not confirmed: nothing is sent
    await expect(page.locator("#finish-error")).to_contain_text("nothing was sent")
    assert not pump.status().suspended
    await page.check("#finish-confirm")
    await page.click("#finish-send")
    await expect(page.locator("#finish")).to_be_hidden()
    await expect(page.locator("#message")).to_contain_text("Sent: suspend delivery")
    assert server.runtime.device.pump.status().suspended
    await expect(row(page, "#summary", "mode")).to_contain_text("(suspended)")
    with pytest.raises(Gone):  # a Finish screen is sent once: the same one again is refused
        await web.session.commit("c2", True)
    await page.click("nav button[data-panel=delivery]")
    await page.click("form[data-kind=resume] button[type=submit]")
    await expect(page.locator("#finish-title")).to_have_text("Finish: resume delivery")
    await expect(row(page, "#finish-diff", "delivery")).to_have_text(running)
    await expect(page.locator("#finish-confirm-label")).to_be_hidden()  # no warning
    await page.click("#finish-send")
    await expect(page.locator("#finish")).to_be_hidden()
    await expect(page.locator("#message")).to_contain_text("Sent: resume delivery")
    assert not server.runtime.device.pump.status().suspended
    await expect(row(page, "#summary", "mode")).not_to_contain_text("suspended")
    kinds = [e.kind for e in server.runtime.device.pump.events()]
    assert kinds.count(fm.EventKind.SUSPENDED) == 1 and kinds.count(fm.EventKind.RESUMED) == 1
    assert page.errors == []


@pytest.mark.parametrize("server", ["routine-refill"], indirect=True)
async def test_alarm_settings_from_a_finish_screen(
    server: EmulatorServer, web: WebProgrammer, browser: Any
) -> None:
    page = await open_page(browser, web)
    assert server.runtime is not None
    before = list(server.runtime.device.pump.alarm_settings)
    await page.click("nav button[data-panel=alarms]")
    form = page.locator("form[data-kind=alarm_settings]")
    await form.locator("button[type=submit]").click()  # nothing given: refused
    await expect(form.locator(".error")).to_contain_text("at least one new setting")
    await form.locator("input[name=low_alarm]").fill("3 mg")
    await form.locator("button[type=submit]").click()
    await expect(form.locator(".error")).to_contain_text("nothing was sent")
    assert list(server.runtime.device.pump.alarm_settings) == before
    await form.locator("input[name=low_alarm]").fill("3 mL")
    await form.locator("button[type=submit]").click()
    await expect(row(page, "#finish-diff", "low-reservoir alarm at")).to_have_text("3 mL")
    await page.click("#finish-send")
    await expect(page.locator("#finish")).to_be_hidden()
    after = list(server.runtime.device.pump.alarm_settings)
    assert after[0] == 3 * fm.NL_PER_ML and after[1:] == before[1:]
    assert page.errors == []


@pytest.mark.parametrize("server", ["routine-refill"], indirect=True)
async def test_the_poll_reads_nothing_while_a_finish_screen_is_sent(
    server: EmulatorServer, web: WebProgrammer
) -> None:
    """The poll is one STATUS read; while a commit is under way (or another library call runs)
    it reads nothing and says why."""
    assert server.runtime is not None
    session = web.session
    await session.interrogate()  # the first interrogation is used
    stats = server.runtime.device.stats
    before = stats.frames_in
    polled = await session.poll()
    assert polled["skipped"] is None and stats.frames_in == before + 1
    assert ("drug", "baclofen") in [tuple(r) for r in polled["rows"]]
    change = await session.prepare("dose", {"dose": "450 mcg/day"})
    commit = asyncio.create_task(session.commit(change["id"], False))
    await asyncio.sleep(0)  # the commit has started its send
    before = stats.frames_in
    assert (await session.poll())["skipped"] == "a Finish screen is being sent"
    await commit
    assert stats.frames_in > before  # the commit's own frames only
    assert (await session.poll())["skipped"] is None
