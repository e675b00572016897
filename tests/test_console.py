"""The instructor console: its Server-Sent Events streams and static files over raw HTTP, and the
page itself in a real browser (Playwright driving Debian's Chromium), checked against the
control plane's JSON state. Screenshots go to the test's tmp dir; ITP_UPDATE_SCREENSHOTS=1
also rewrites docs/console.png (the README's picture).

The README's test command installs both Debian's Chromium and playwright, so a missing one fails
the browser tests (with the command that installs it) rather than skipping them."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import firmware_model as fm
import programmer
import protocol as p
from emulator import EmulatorServer, PumpDevice, Runtime, ServerOptions, VirtualClock
from emulator._clock import wall_ms
from emulator._console import EVENT_CATEGORIES, FILES, History, describe
from emulator._control import ROUTES, ControlPlane, openapi
from emulator._scenario import load_scenario, starting_pump
from emulator.testing import EmulatedPump

from .emulator_helpers import http_request as http

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SERIAL = 1234
FLEX = [(0, 400_000), (7 * 60, 600_000), (22 * 60, 400_000)]  # (start minute, ng/day)

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


def _cp(server: EmulatorServer) -> ControlPlane:
    assert server.control is not None
    return server.control


# --- the streams -----------------------------------------------------------------------------


async def test_the_pump_stream_pushes_state_log_and_history(server: EmulatorServer) -> None:
    cp = _cp(server)
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
    cp = _cp(server)
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
    cp = _cp(server)
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
    cp = _cp(server)
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


# --- static files, catalogue, OpenAPI --------------------------------------------------------


async def test_console_files_are_served_only_with_console(tmp_path: Path) -> None:
    options = ServerOptions(control=("127.0.0.1", 0), pty=False)
    async with EmulatorServer(tmp_path / "a", options) as plain:
        status, _, body = await http(_cp(plain).url, "GET", "/console/")
        assert status == 404 and b"--console" in body
    options = ServerOptions(console=True, pty=False)  # --console alone: control on port 0
    async with EmulatorServer(tmp_path / "b", options) as server:
        cp = _cp(server)
        assert cp.console_url.startswith(f"{cp.url}/console/#token=")
        status, headers, body = await http(cp.url, "GET", "/console/")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert "connect-src 'self'" in headers["content-security-policy"]
        assert b'src="console.js"' in body
        status, headers, _ = await http(cp.url, "GET", "/console/console.js")
        assert status == 200 and headers["content-type"].startswith("text/javascript")
        status, headers, _ = await http(cp.url, "GET", "/console")
        assert status == 301 and headers["location"] == "/console/"
        assert (await http(cp.url, "GET", "/console/secrets.txt"))[0] == 404
        assert (await http(cp.url, "GET", "/console/..%2f_control.py"))[0] == 404


def _ready(cmd: list[str], ready: Path, log: Path) -> tuple[subprocess.Popen[bytes], Any]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", *cmd, "--ready-file", str(ready)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 20
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)
    return proc, json.loads(ready.read_text())


@pytest.mark.parametrize("command", ["serve", "fleet"])
def test_the_command_line_prints_the_console_url(
    command: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if command == "serve":
        cmd = ["serve", "--state-dir", str(tmp_path / "s"), "--no-serial", "--console"]
    else:
        broker = request.getfixturevalue("broker")
        cmd = ["fleet", "--count", "3", "--mqtt", broker.url, "--console", "--name", "console"]
    proc, info = _ready(cmd, tmp_path / "ready.json", tmp_path / "log")
    try:
        token = info["control_token"]
        assert info["console"] == f"{info['control']}/console/#token={token}"
        with urllib.request.urlopen(info["control"] + "/console/", timeout=10) as r:
            assert r.status == 200 and b"console.js" in r.read()
        req = urllib.request.Request(info["control"] + "/v1/pumps")
        req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert len(json.loads(r.read())) == (1 if command == "serve" else 3)
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0
    assert info["console"] in (tmp_path / "log").read_text()  # printed for the instructor


def test_the_page_fetches_nothing_from_elsewhere() -> None:
    """No CDN, no web font, no external script: every file is in the package."""
    folder = ROOT / "emulator" / "console"
    assert {f.name for f in folder.iterdir()} == set(FILES)
    for name in FILES:
        text = (folder / name).read_text()
        urls = re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text)
        assert all(u == "http://www.w3.org/2000/svg" for u in urls), (name, urls)
        assert "@import" not in text and "url(" not in text


async def test_the_catalogue_and_openapi_describe_the_console_routes(
    server: EmulatorServer,
) -> None:
    cp = _cp(server)
    cat = await get_json(cp.url, "/v1/catalogue", cp.token)
    assert cat["faults"]["MOTOR_STALL"]["params"]["recover_after_ms"]["default"] is None
    assert cat["faults"]["PREMATURE_EOS"]["irreversible"]
    assert not cat["faults"]["MOTOR_STALL"]["irreversible"]
    assert cat["alarms"]["MOTOR_STALL"]["tone"] == "TWO_TONE"
    assert cat["alarms"]["LOW_RESERVOIR"]["tone"] == "SINGLE_TONE"
    assert "low-reservoir-alarm-day" in [s["name"] for s in cat["scenarios"]]
    doc = openapi()
    stream = doc["paths"]["/v1/pumps/{serial}/stream"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert [q["name"] for q in stream["parameters"] if q["in"] == "query"] == ["access_token"]
    assert doc["paths"]["/console/"]["get"]["security"] == []
    assert {r.kind for r in ROUTES} == {"json", "stream", "static"}


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


# --- in a real browser -----------------------------------------------------------------------


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's Chromium is not installed: apt-get install -y chromium")
    try:
        api = importlib.import_module("playwright.async_api")
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'")
    async with api.async_playwright() as pw:
        # Never a browser of Playwright's own: Debian's, at its fixed path.
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


def expect(locator: Any) -> Any:
    return importlib.import_module("playwright.async_api").expect(locator)


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


async def test_drive_a_training_scenario_from_the_page(
    server: EmulatorServer, browser: Any, tmp_path: Path
) -> None:
    """A trainee programs a flex schedule; the instructor fast-forwards to the low-reservoir
    alarm, injects a motor stall and clears it through the page's controls only; the page is
    checked against the control plane's JSON at each step."""
    cp = _cp(server)
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
    cp = _cp(server)
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
    cp = _cp(server)
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
    cp = _cp(server)
    page = await browser.new_page()
    await page.goto(f"{cp.url}/console/#token=wrong")
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#login-error")).to_contain_text("refused")
    await page.fill("#token-input", cp.token)
    await page.press("#token-input", "Enter")
    await expect(page.locator("#detail")).to_be_visible()
    await expect(page.locator("#drug")).to_have_text("baclofen")


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
        for summary in await get_json(cp.url, "/v1/pumps", cp.token):
            row = page.locator(f"#fleet-body tr[data-serial='{summary['serial']}']")
            days = f"{summary['days_to_refill']:.1f}"
            await expect(row.locator("td.days")).to_have_text(days)
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


async def test_a_programmer_command_is_pushed_without_waiting_for_the_tick(
    server: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command from a programmer wakes the streams itself (the runtime tells the console):
    with the periodic look made an hour long, its record still arrives."""
    import emulator._console as console

    monkeypatch.setattr(console, "TICK_S", 3600.0)
    cp = _cp(server)
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
