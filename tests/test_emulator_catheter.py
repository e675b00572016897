"""Catheter complications through the emulator: the control plane's new fault kinds and the CAP
aspiration (and their OpenAPI entries), the pytest plugin's inject, the console's ground-truth
volumes beside each history sample, and the log's sentence for an aspiration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import firmware_model as fm
from emulator import EmulatorServer, ServerOptions
from emulator._console import History, describe
from emulator._control import FAULTS, openapi
from emulator._runtime import STORE_FILE, open_device
from emulator._scenario import load_scenario, starting_pump
from emulator._store import Store

from .browser_helpers import expect
from .console_helpers import open_console
from .test_emulator_control import SERIAL, http, running

pytest_plugins = ["pytester"]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    options = ServerOptions(speed_milli=1000, control=("127.0.0.1", 0))
    async with EmulatorServer(tmp_path / "pump", options) as s:
        await asyncio.sleep(0)
        yield s


def test_the_openapi_document_lists_the_catheter_faults_and_the_aspiration() -> None:
    doc = openapi()
    body = doc["paths"]["/v1/pumps/{serial}/faults"]["post"]["requestBody"]["content"]
    schema = body["application/json"]["schema"]
    assert {"CATHETER_KINK", "CATHETER_GRANULOMA"} <= set(schema["properties"]["kind"]["enum"])
    assert {"restriction_ppm", "start_ppm", "end_ppm", "days"} <= set(schema["properties"])
    assert "post" in doc["paths"]["/v1/pumps/{serial}/catheter/aspirate"]
    assert FAULTS["CATHETER_KINK"] is fm.CatheterKink


async def test_kink_granuloma_and_aspiration_over_http(
    server: EmulatorServer, tmp_path: Path
) -> None:
    await running(server, tmp_path)
    path = f"/v1/pumps/{SERIAL}"
    status, state = await http(server, "POST", f"{path}/catheter/aspirate")
    assert status == 200 and state["aspiration"]["finding"] == "PATENT"
    assert state["aspiration"]["aspirated_nl"] > 0 and state["catheter"]["cap_finding"] == "PATENT"
    status, state = await http(
        server, "POST", f"{path}/faults", {"kind": "CATHETER_KINK", "restriction_ppm": 400_000}
    )
    assert status == 200 and "CATHETER_KINK" in state["status"]["faults"]
    assert state["catheter"]["restriction_ppm"] == 400_000
    assert state["status"]["active_alarms"] == []
    status, state = await http(
        server,
        "POST",
        f"{path}/faults",
        {"kind": "CATHETER_GRANULOMA", "end_ppm": 500_000, "days": 10},
    )
    assert status == 200 and state["catheter"]["granuloma_final_ppm"] == 500_000
    # 40 % kink, granuloma at 0 % so far: 40 % held back
    assert state["catheter"]["restriction_ppm"] == 400_000
    await http(server, "POST", f"{path}/advance", {"ms": 10 * fm.DAY_MS})
    status, state = await http(server, "GET", path)
    assert state["catheter"]["restriction_ppm"] == 700_000  # 1 - 0.6 x 0.5
    status, state = await http(server, "POST", f"{path}/catheter/aspirate")
    assert state["aspiration"]["finding"] == "PARTIAL_OBSTRUCTION"
    last = state["status"]["event_seq"]
    status, records = await http(server, "GET", f"{path}/events?cursor={last}")
    assert status == 200
    rec = records[-1] if isinstance(records, list) else records["events"][-1]
    assert (rec["kind"], rec["a"], rec["b"]) == ("CONTROL", 11, 3)
    # bad input: refused, nothing changed
    for bad in (
        {"kind": "CATHETER_KINK"},
        {"kind": "CATHETER_KINK", "restriction_ppm": 0},
        {"kind": "CATHETER_GRANULOMA", "end_ppm": 10, "days": 5},  # one is already growing
        {"kind": "CATHETER_GRANULOMA", "end_ppm": 10},
        {"kind": "CATHETER_KINK", "share_ppm": 5},
    ):
        status, body = await http(server, "POST", f"{path}/faults", bad)
        assert status in (400, 409) and body["error"], bad
    status, again = await http(server, "GET", path)
    assert again["catheter"] == state["catheter"]
    status, state = await http(server, "DELETE", f"{path}/faults/catheter_granuloma")
    assert status == 200 and state["catheter"]["restriction_ppm"] == 400_000
    status, state = await http(server, "DELETE", f"{path}/faults/catheter_kink")
    assert status == 200 and state["catheter"]["restriction_ppm"] == 0


def test_history_keeps_the_ground_truth_beside_each_sample() -> None:
    pump = starting_pump(load_scenario("catheter-kink-found-at-refill"), now_ms=1_800_000_000_000)
    pump.inject(fm.CatheterKink(restriction_ppm=400_000))
    history = History()
    history.fill(pump, pump.now + 30 * fm.DAY_MS)
    assert len(history.flows) == len(history.samples) > 100
    program, pumped, patient = history.flows[-1]
    assert pumped == patient and 0.59 < pumped / program < 0.62  # 60 % (x 1.01 accuracy)


def test_an_aspiration_reads_as_a_sentence() -> None:
    e = fm.Event(1, 0, fm.EventKind.CONTROL, fm.Source.CONTROL, fm.NO_COMMAND, 11, 1)
    assert describe(e).startswith("catheter access port aspirated: no CSF and no resistance")


PLUGIN_EXAMPLE = """
import pytest
import programmer
from protocol import Drug


@pytest.mark.pump(speed=1000)
def test_a_kink_shows_at_refill_not_as_an_alarm(pump_emulator, tmp_path):
    with programmer.connect_sync(
        pump_emulator.connection, key=pump_emulator.key_file, journal=tmp_path / "j"
    ) as pump:
        pump.prepare_refill(
            withdrawn_nl=0, added_nl=20_000_000, drug=Drug.MORPHINE, conc_ng_per_ml=25_000_000
        ).commit()
        pump.prepare_dose(3_000_000).commit()
    ctl = pump_emulator.control
    ctl.inject("catheter_kink", restriction_ppm=400_000)
    ctl.advance(days=30)
    state = ctl.state()
    assert state["status"]["active_alarms"] == []
    assert state["catheter"]["restriction_ppm"] == 400_000
    s = state["status"]
    assert s["true_reservoir_nl"] - s["reservoir_nl"] > 1_000_000
    assert ctl.aspirate_cap()["aspiration"]["finding"] == "PARTIAL_OBSTRUCTION"
    ctl.clear("catheter_kink")
    ctl.inject("catheter_leak", share_ppm=1_000_000)
    assert ctl.aspirate_cap()["aspiration"]["finding"] == "DISCONNECTED"
"""


def test_the_plugin_injects_catheter_faults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_catheter_example=PLUGIN_EXAMPLE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)


# --- in the instructor console ----------------------------------------------------------------


async def test_the_console_injects_a_kink_aspirates_and_plots_the_ground_truth(
    tmp_path: Path,
    browser: Any,
) -> None:
    """Inject a 40 % kink from the page, jump 20 days, aspirate: the page says partial
    obstruction, the catheter's truth line says 40 %, and the plot has its fourth panel with
    the counted, pumped and patient volumes."""
    options = ServerOptions(
        speed_milli=0, control=("127.0.0.1", 0), console=True, scenario="routine-refill"
    )
    async with EmulatorServer(tmp_path / "pump", options) as srv:
        assert srv.control is not None
        page = await open_console(browser, srv.control.console_url)
        await page.select_option("#fault-kind", "CATHETER_KINK")
        await page.fill("#fp-restriction_ppm", "40")
        await page.click("#inject")
        await expect(page.locator("#faults-active")).to_have_attribute(
            "data-value", "CATHETER_KINK"
        )
        await expect(page.locator("#catheter-truth")).to_contain_text("holds back 40.0 %")
        await page.fill("#advance-days", "20")
        await page.click("#advance-btn")
        await page.click("#confirm-ok")
        await page.click("#aspirate")
        await expect(page.locator("#cap-finding")).to_contain_text("partial obstruction")
        await expect(page.locator("#history-chart")).to_contain_text("pumped (orange)")
        assert not page.errors


def test_a_pump_stored_before_the_catheter_faults_resumes(tmp_path: Path) -> None:
    """A state directory whose SQLite store holds a version-1 snapshot (the model before this
    change) opens: the pump resumes with its volumes, log and leak, and stores version 2."""
    data = json.loads((Path(__file__).parent / "data" / "snapshot_v1.json").read_text())
    old = fm.restore(json.loads(json.dumps(data)))  # to read the values it holds
    store = Store(tmp_path / STORE_FILE)
    store.check_identity(old.serial, int(old.profile.id))
    events = [
        fm.Event(
            e["seq"],
            e["time_ms"],
            fm.EventKind(e["kind"]),
            fm.Source(e["source"]),
            bytes.fromhex(e["command_id"]),
            e["a"],
            e["b"],
        )
        for e in data["state"]["events"]
    ]
    store.commit(data, events, events[0].seq, old.now, 0, 0)  # speed 0: no downtime applied
    store.close()
    dev = open_device(tmp_path, wall=lambda: 10**13)
    try:
        st = dev.pump.status()
        assert (st.true_reservoir_nl, st.pumped_total_nl) == (18_788_004, 1_211_996)
        assert fm.FaultKind.CATHETER_LEAK in st.faults
        assert dev.pump.catheter().leak_ppm == 250_000
        assert dev.pump.events(0)[: len(events)] == events
        assert dev.store is not None
        saved = dev.store.load()
        assert saved is not None and saved.snapshot["version"] == fm.SNAPSHOT_VERSION
    finally:
        if dev.store is not None:
            dev.store.close()


def test_ctl_aspirate_is_the_aspiration_route() -> None:
    import argparse

    from emulator._cli_ctl import _request

    args = argparse.Namespace(action="aspirate")
    assert _request(args, "/v1/pumps/7") == ("POST", "/v1/pumps/7/catheter/aspirate", None)
