"""The web programmer's page keeps up with the pump on its own and sends suspend and resume
from a Finish-style confirmation (programmer/web_static/programmer.js), in a real browser
(Playwright driving Debian's Chromium, the fixtures of tests/test_programmer_web.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import firmware_model as fm
from emulator import EmulatorServer
from programmer._web import WebProgrammer

from .emulator_helpers import http_request
from .test_programmer_web import browser, expect, model, open_page, row, server, web

__all__ = ["browser", "server", "web"]  # the fixtures, used by name


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
