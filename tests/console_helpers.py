"""Helpers of the instructor console's tests: plain HTTP and Server-Sent Events clients, the
console's pump (a `server` fixture) and what its page must show."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from emulator import EmulatorServer, ServerOptions
from emulator._control import ControlPlane

from .browser_helpers import expect
from .emulator_helpers import http_request as http

SERIAL = 1234


# --- plain HTTP and SSE helpers ------------------------------------------------------------


async def get_json(url: str, path: str, token: str, method: str = "GET", body: Any = None) -> Any:
    status, _, payload = await http(url, method, path, body, token=token)
    assert status == 200, payload
    return json.loads(payload)


class Sse:
    """A Server-Sent Events client on a raw connection (what EventSource does)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.status = 0
        self.headers: dict[str, str] = {}

    @classmethod
    async def open(cls, url: str, path: str, headers: dict[str, str] | None = None) -> Sse:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
        self = cls(reader, writer)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        self.status = int(head[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        return self

    async def next(self, timeout: float = 5) -> tuple[str, int | None, Any]:
        """(event name, id, parsed data) of the next event; comments and retry skipped."""
        async with asyncio.timeout(timeout):
            while True:
                block = (await self.reader.readuntil(b"\n\n")).decode()
                fields: dict[str, str] = {}
                for line in block.strip("\n").split("\n"):
                    name, _, value = line.partition(": ")
                    fields[name] = value
                if "data" in fields:
                    event_id = int(fields["id"]) if "id" in fields else None
                    return fields.get("event", "message"), event_id, json.loads(fields["data"])

    async def until(self, event: str, timeout: float = 5) -> tuple[int | None, Any]:
        deadline = time.monotonic() + timeout
        while True:
            name, event_id, data = await self.next(max(0.01, deadline - time.monotonic()))
            if name == event:
                return event_id, data

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    options = ServerOptions(
        speed_milli=1000,
        control=("127.0.0.1", 0),
        console=True,
        scenario="low-reservoir-alarm-day",
    )
    async with EmulatorServer(tmp_path / "pump", options) as s:
        yield s


def control_of(server: EmulatorServer) -> ControlPlane:
    assert server.control is not None
    return server.control


async def open_console(browser: Any, url: str, **context: Any) -> Any:
    page = await browser.new_page(viewport={"width": 1920, "height": 1080}, **context)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    await page.goto(url)
    await page.wait_for_selector("body[data-ready]")
    return page


def words(name: str) -> str:
    return name.lower().replace("_", " ")


async def assert_page_shows(page: Any, state: dict[str, Any]) -> None:
    """What the page shows is the control plane's state: raw values and their formatting."""
    st = state["status"]
    ml = {
        "res-calc": st["reservoir_nl"],
        "res-true": st["true_reservoir_nl"],
        "res-low": st["low_threshold_nl"],
        "res-capacity": state["capacity_nl"],
    }
    for element, nl in ml.items():
        await expect(page.locator(f"#{element}")).to_have_attribute("data-value", str(nl))
        await expect(page.locator(f"#{element}")).to_have_text(f"{nl / 1e6:.2f} mL")
    rate = st["current_rate_nl_per_day"]
    await expect(page.locator("#rate")).to_have_text(f"{rate / 1e6:.3f} mL/day")
    await expect(page.locator("#drug")).to_have_text(words(st["drug"]))
    await expect(page.locator("#mode")).to_have_attribute("data-value", st["mode"])
    await expect(page.locator("#dose")).to_have_attribute("data-value", str(st["daily_dose_ng"]))
    await expect(page.locator("#battery-state")).to_have_text(words(st["battery"]))
    await expect(page.locator("#eri")).to_have_attribute("data-value", str(st["eri_at_ms"]))
    await expect(page.locator("#faults-active")).to_have_attribute(
        "data-value", ",".join(st["faults"])
    )
    await expect(page.locator("#clock")).to_have_attribute("data-value", str(st["clock_ms"]))
    speed = "paused" if state["speed_factor"] == 0 else f"x{state['speed_factor']:,.0f}"
    await expect(page.locator("#speed-display")).to_have_text(speed)
    alarms = state["alarms"]
    top = next((a for a in alarms if a["sounding"]), alarms[0] if alarms else None)
    await expect(page.locator("#alarm-name")).to_have_attribute(
        "data-value", "+".join(top["alarm"]) if top else ""
    )
    await expect(page.locator("#alarm-body tr")).to_have_count(len(alarms))
