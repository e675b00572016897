"""The trial phase before an implant (issue 15, item 1): the external trial pump's limits, its
downstream occlusion alarm, the single trial injection's dose arithmetic, the continuous trial
then the implant in one scenario, and the instructor's narration (in the report, never in the
pump's log, pushed live on the console's stream).

Figures: domain.md #27 (catheter 2.6 uL/cm, 85 cm = 221 uL), the baclofen test dose of 50 mcg
in 1 mL of 50 mcg/mL over at least 1 minute (Lioresal labelling, docs/firmware_model.md
section 16), CADD 50/100 mL cassettes and the profile's [U] rate range 1 .. 3000 mL/day."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import firmware_model as fm
import protocol as p
from emulator import EmulatorServer, ServerOptions
from emulator._narration import Narration
from emulator._scenario import ScenarioError, load_scenario, run_scenario, summary

from .browser_helpers import expect
from .console_helpers import Sse, get_json, open_console
from .emulator_helpers import http_request as http

MG, MCG = fm.ConcentrationUnit.MG_PER_ML, fm.ConcentrationUnit.MCG_PER_ML
EXT = fm.ProfileId.EXTERNAL_TRIAL


def external(drug: fm.Drug = fm.Drug.MORPHINE, conc: int = 250_000, ml: int = 50) -> fm.Pump:
    """An external trial pump past its self test, filled with `ml` of `drug` at `conc` ng/mL."""
    pump = fm.Pump.create(EXT, serial=42, now_ms=0)
    pump.advance_to(pump.self_test_ends_at)
    unit = MCG if drug is fm.Drug.BACLOFEN else MG
    pump.record_refill(
        withdrawn_nl=0, added_nl=ml * fm.NL_PER_ML, drug=drug, conc_ng_per_ml=conc, unit=unit
    )
    return pump


# --- the external trial pump profile -----------------------------------------------------------


def test_the_profile_is_on_the_wire_and_has_no_implant_battery() -> None:
    prof = fm.PROFILES[EXT]
    assert p.PumpModel(int(EXT)) is p.PumpModel.EXTERNAL_TRIAL
    assert prof.reservoir_nl == 100_000_000 and prof.battery is None
    assert (prof.min_rate_nl_per_day, prof.max_rate_nl_per_day) == (1_000_000, 3_000_000_000)
    st = external().status()
    assert st.battery is fm.BatteryState.NOT_APPLICABLE
    assert st.eri_at_ms is None and st.eos_at_ms is None


def test_a_continuous_trial_rate_within_the_range_is_accepted() -> None:
    """Morphine 0.25 mg/mL at 0.5 mg/day: rate = 500,000 ng/day x 10^6 / 250,000 ng/mL
    = 2,000,000 nL/day (2 mL/day), inside 1 .. 3000 mL/day; 50 mL last 25 days."""
    pump = external()
    pump.set_continuous_dose(500_000)
    st = pump.status()
    assert st.basal_rate_nl_per_day == 2_000_000 and st.daily_dose_ng == 500_000
    pump.advance_to(pump.now + fm.DAY_MS)
    assert pump.status().reservoir_nl == 50_000_000 - 2_000_000


def test_a_rate_below_the_external_pumps_minimum_is_refused() -> None:
    """0.2 mg/day at 0.25 mg/mL = 800,000 nL/day (0.8 mL/day) < the 1 mL/day minimum."""
    pump = external()
    before = pump.status()
    with pytest.raises(fm.Rejected) as exc:
        pump.set_continuous_dose(200_000)
    assert exc.value.reason is fm.Reason.RATE_OUT_OF_RANGE
    assert "800000 nL/day is outside 1000000 .. 3000000000" in exc.value.detail
    assert pump.status().program_version == before.program_version


def test_a_rate_above_the_maximum_is_refused() -> None:
    """Saline-like dilute morphine 0.001 mg/mL (1,000 ng/mL) at 3.1 mg/day: 3,100 mL/day >
    3,000 mL/day. (3.1 mg/day is under the 15 mg/day soft limit: the rate is what fails.)"""
    pump = external(conc=1_000)
    with pytest.raises(fm.Rejected) as exc:
        pump.set_continuous_dose(3_100_000)
    assert exc.value.reason is fm.Reason.RATE_OUT_OF_RANGE


def test_the_drug_library_limits_apply_to_the_trial_pump() -> None:
    """Morphine 25 mg/mL at 31 mg/day: 1.24 mL/day is a legal rate, but 31 mg/day is over the
    library's 30 mg/day hard limit; 25 mg/day (1 mL/day) is over the 15 mg/day soft limit."""
    pump = external(conc=25_000_000, ml=10)
    with pytest.raises(fm.Rejected) as exc:
        pump.set_continuous_dose(31_000_000, confirm_soft_limit=True)
    assert exc.value.reason is fm.Reason.HARD_LIMIT
    with pytest.raises(fm.Rejected) as exc:
        pump.set_continuous_dose(25_000_000)
    assert exc.value.reason is fm.Reason.SOFT_LIMIT_UNCONFIRMED
    pump.set_continuous_dose(25_000_000, confirm_soft_limit=True)
    assert pump.status().basal_rate_nl_per_day == 1_000_000  # 25 mg / 25 mg/mL


def test_the_cassette_holds_100_ml_not_more() -> None:
    pump = fm.Pump.create(EXT, serial=42, now_ms=0)
    pump.advance_to(pump.self_test_ends_at)
    with pytest.raises(fm.Rejected) as exc:
        pump.record_refill(
            withdrawn_nl=0, added_nl=100_000_001, drug=fm.Drug.MORPHINE,
            conc_ng_per_ml=250_000, unit=MG,
        )  # fmt: skip
    assert exc.value.reason is fm.Reason.INVALID_VALUE
    assert "100000000 nL (reservoir capacity)" in exc.value.detail
    assert pump.status().reservoir_nl == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda pump: pump.set_schedule([(0, 500_000)]),
        lambda pump: pump.set_patient_bolus(
            enabled=True,
            dose_ng=100_000,
            duration_ms=600_000,
            lockout_ms=3_600_000,
            max_per_24h=4,
        ),
        lambda pump: pump.inject(fm.PrematureEri()),
        lambda pump: pump.inject(fm.LowBatteryReset()),
    ],
    ids=["schedule", "patient-bolus", "premature-eri", "low-battery-reset"],
)
def test_what_the_trial_pump_does_not_do_is_refused(call: object) -> None:
    pump = external()
    with pytest.raises(fm.Rejected) as exc:
        call(pump)  # type: ignore[operator]
    assert exc.value.reason is fm.Reason.MODE_NOT_SUPPORTED


def test_an_occlusion_alarms_on_the_external_pump_only() -> None:
    """The external pump's downstream pressure sensor raises a critical alarm; clearing the
    line ends it. An implant (SynchroMed II) has no sensor: the same fault stays silent."""
    pump = external()
    pump.set_continuous_dose(500_000)
    pump.inject(fm.CatheterOcclusion())
    assert pump.status().active_alarms == fm.Alarm.DOWNSTREAM_OCCLUSION
    assert fm.CATALOGUE[fm.Alarm.DOWNSTREAM_OCCLUSION].critical
    assert not pump.status().delivering
    pump.clear_fault(fm.FaultKind.CATHETER_OCCLUSION)
    assert pump.status().active_alarms == fm.Alarm(0) and pump.status().delivering
    implant = fm.Pump.create(fm.ProfileId.SYNCHROMED_II_20, serial=43, now_ms=0)
    implant.advance_to(implant.self_test_ends_at)
    implant.inject(fm.CatheterOcclusion())
    assert implant.status().active_alarms == fm.Alarm(0)


def test_an_occlusion_stops_the_external_pumps_own_count() -> None:
    """The external pump knows it stopped: 30 min of occlusion at 2 mL/day leave its calculated
    volume where it was (an implant's would fall by 2,000,000 x 30 / 1,440 = 41,666 nL)."""
    pump = external()
    pump.set_continuous_dose(500_000)
    pump.advance_to(pump.now + fm.MS_PER_HOUR)
    pump.inject(fm.CatheterOcclusion())
    before = pump.status()
    pump.advance_to(pump.now + 30 * fm.MS_PER_MIN)
    during = pump.status()
    assert during.reservoir_nl == before.reservoir_nl
    assert during.true_reservoir_nl == before.true_reservoir_nl


def test_air_in_line_stops_the_external_pump_until_the_line_is_reprimed() -> None:
    """Critical AIR_IN_LINE; an hour later neither volume moved; after clearing, one more hour
    at 2 mL/day delivers floor(2,000,000 / 24) = 83,333 nL by the pump's count."""
    pump = external()
    pump.set_continuous_dose(500_000)
    seq = pump.inject(fm.AirInLine())
    assert pump.events(seq)[0].a == fm.FaultKind.AIR_IN_LINE
    st = pump.status()
    assert st.active_alarms == fm.Alarm.AIR_IN_LINE and not st.delivering
    assert fm.FaultKind.AIR_IN_LINE in st.faults
    assert fm.CATALOGUE[fm.Alarm.AIR_IN_LINE].critical
    with pytest.raises(fm.Rejected) as exc:
        pump.inject(fm.AirInLine())
    assert exc.value.reason is fm.Reason.INVALID_STATE
    pump.advance_to(pump.now + fm.MS_PER_HOUR)
    assert pump.status().reservoir_nl == st.reservoir_nl == 50_000_000
    pump.clear_fault(fm.FaultKind.AIR_IN_LINE)
    assert pump.status().active_alarms == fm.Alarm(0) and pump.status().delivering
    pump.advance_to(pump.now + fm.MS_PER_HOUR)
    assert pump.status().reservoir_nl == 50_000_000 - 83_333


def test_low_cells_warn_and_delivery_goes_on() -> None:
    """Non-critical EXTERNAL_BATTERY_LOW: one day at 2 mL/day still leaves 48 mL."""
    pump = external()
    pump.set_continuous_dose(500_000)
    pump.inject(fm.ExternalBatteryLow())
    spec = fm.CATALOGUE[fm.Alarm.EXTERNAL_BATTERY_LOW]
    assert not spec.critical and spec.priority is fm.Priority.MEDIUM
    pump.advance_to(pump.now + fm.DAY_MS)
    st = pump.status()
    assert st.active_alarms == fm.Alarm.EXTERNAL_BATTERY_LOW and st.delivering
    assert st.reservoir_nl == 48_000_000
    pump.clear_fault(fm.FaultKind.EXTERNAL_BATTERY_LOW)
    assert pump.status().active_alarms == fm.Alarm(0)


@pytest.mark.parametrize(
    ("fault", "missing"),
    [(fm.AirInLine(), "air-in-line detector"), (fm.ExternalBatteryLow(), "replaceable cells")],
)
def test_an_implant_has_no_external_sensors(fault: fm.Fault, missing: str) -> None:
    implant = fm.Pump.create(fm.ProfileId.SYNCHROMED_II_20, serial=43, now_ms=0)
    implant.advance_to(implant.self_test_ends_at)
    digest = implant.log_digest()
    with pytest.raises(fm.Rejected) as exc:
        implant.inject(fault)
    assert exc.value.reason is fm.Reason.MODE_NOT_SUPPORTED
    assert exc.value.detail == f"SynchroMed II 20 mL has no {missing}"
    assert implant.events()[-1].kind is fm.EventKind.COMMAND_REJECTED
    assert implant.active_faults() == frozenset() and implant.log_digest() != digest


# --- the single trial injection ------------------------------------------------------------------


def test_the_trial_injection_gives_the_50_mcg_test_dose() -> None:
    """Baclofen 50 mcg/mL (50,000 ng/mL), 10 mL in the cassette. The program is the pump's
    lowest rate: 50 mcg/day -> 50,000 x 10^6 / 50,000 = 1,000,000 nL/day.
    Priming: 85 cm x 2,600 nL/cm + 300,000 nL extension = 521,000 nL at 3x10^9 nL/day:
    ceil(521,000 x 86,400,000 / 3x10^9) = ceil(15,004.8) = 15,005 ms, basal paused; it pushes
    the drug-free fluid out, so the line then holds drug to its tip.
    Test dose at 1 min: 50,000 ng / 50,000 ng/mL = 1 mL = 1,000,000 nL over 60,000 ms
    (1,440 mL/day <= 3,000), then the pump stops (single bolus).
    Basal ran 15,005 .. 120,000 ms: floor(10^6 x 104,995 / 86,400,000) = 1,215 nL.
    The patient got 1,000,000 + 1,215 nL of drug: floor(1,001,215 x 50,000 / 10^6) = 50,060 ng;
    left in the cassette 10 - 0.521 - 1 - 0.001215 = 8.477785 mL."""
    report = run_scenario(load_scenario("trial-injection-baclofen"))
    assert report.passed
    started = [e for e in report.events if e.kind is fm.EventKind.BOLUS_STARTED]
    done = [e for e in report.events if e.kind is fm.EventKind.BOLUS_COMPLETED]
    assert [(e.a, e.b) for e in started] == [
        (fm.BolusKind.PRIMING, 521_000 * 50_000 // fm.NL_PER_ML),
        (fm.BolusKind.CLINICIAN_SINGLE, 50_000),
    ]
    assert done[0].time_ms - started[0].time_ms == 15_005
    assert done[1].time_ms - started[1].time_ms == 60_000 and done[1].b == 50_000
    assert report.final["mode"] == "STOPPED"
    assert report.final["delivered_mg"] == 50_060 / fm.NG_PER_MG
    assert report.final["reservoir_ml"] == 8.477785
    assert report.narration[-1]["text"].startswith("Decision: positive response to 50 mcg")


# --- narration -------------------------------------------------------------------------------


def test_narration_is_in_the_report_and_never_in_the_pumps_log() -> None:
    """The 4 h note is at day 4/24; removing every narrate step leaves each pump's log (and so
    what a programmer can read) byte for byte the same."""
    scenario = load_scenario("trial-continuous-then-implant")
    report = run_scenario(scenario)
    first = report.narration[0]
    assert first == {"day": 4 / 24, "text": "patient reports 60 % pain relief at 4 h"}
    notes = summary(report)["narration"]
    assert [n["text"] for n in notes] == [n["text"] for n in report.narration]
    assert json.loads(json.dumps(summary(report)))["narration"][0]["day"] == round(4 / 24, 4)
    import dataclasses

    silent = dataclasses.replace(
        scenario, steps=tuple(s for s in scenario.steps if s.action != "narrate")
    )
    again = run_scenario(silent)
    assert [e.pack() for e in again.events] == [e.pack() for e in report.events]
    assert again.narration == []


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ('at = "1h"\naction = "narrate"\n', "narrate needs text"),
        ('at = "1h"\naction = "narrate"\ntext = "   "\n', "narrate needs text"),
        (f'at = "1h"\naction = "narrate"\ntext = "{"x" * 301}"\n', "1 .. 300 characters"),
        ('at = "0d"\naction = "implant"\nprofile = "synchromed-ii-20"\n', "is the starting pump"),
        ('at = "1d"\naction = "implant"\nprofile = "medtronic"\n', "profile must be one of"),
        ('at = "1d"\naction = "implant"\nprofile = "synchromed-ii-20"\nserial = 0\n', "serial"),
    ],
)
def test_bad_narration_and_implant_steps_are_refused(entry: str, fragment: str) -> None:
    with pytest.raises(ScenarioError, match=fragment):
        load_scenario('[pump]\nprofile = "external-trial"\n[[timeline]]\n' + entry)


def test_narration_keeps_its_order_and_only_grows() -> None:
    n = Narration()
    n.schedule([(3_000, "c"), (1_000, "a"), (1_000, "b")], start_ms=10_000)
    assert [x.text for x in n.due(11_000)] == ["a", "b"]
    n.add(11_000, "  now  ")
    assert [x.text for x in n.due(11_000)] == ["a", "b", "now"]
    assert [x.source for x in n.due(13_000)] == ["scenario", "scenario", "instructor", "scenario"]
    with pytest.raises(ValueError):
        n.add(11_000, " ")


# --- the implant after the trial ---------------------------------------------------------------


def test_the_implant_replaces_the_trial_pump_with_a_fresh_one() -> None:
    """Day 4: a SynchroMed II 20 mL (serial 7003) powers on; first fill 20 mL of 10 mg/mL;
    starting dose 0.5 mg/day -> 500,000 x 10^6 / 10^7 = 50,000 nL/day (0.05 mL/day >= 0.048);
    priming 85 x 2,600 + 12,000 = 233,000 nL at 24 mL/day:
    233,000 x 86,400,000 / 24,000,000 = 838,800 ms (about 14 min)."""
    report = run_scenario(load_scenario("trial-continuous-then-implant"))
    assert report.passed
    assert [(p["day"], p["serial"]) for p in report.pumps] == [(0.0, 7002), (4.0, 7003)]
    power = [e for e in report.events if e.kind is fm.EventKind.POWER_ON]
    assert [(e.a, e.b) for e in power] == [
        (fm.ProfileId.EXTERNAL_TRIAL, 7002),
        (fm.ProfileId.SYNCHROMED_II_20, 7003),
    ]
    later = report.events[report.events.index(power[1]) :]
    assert [e.seq for e in later[:3]] == [1, 2, 3]  # a new pump's log starts fresh
    prime = [
        e for e in later if e.kind in (fm.EventKind.BOLUS_STARTED, fm.EventKind.BOLUS_COMPLETED)
    ]
    assert prime[0].a == fm.BolusKind.PRIMING and prime[1].time_ms - prime[0].time_ms == 838_800
    program = [e for e in later if e.kind is fm.EventKind.PROGRAM_CHANGED]
    assert program[-1].b == 500_000
    assert report.final["profile"] == "SynchroMed II 20 mL" and report.final["mode"] == "CONTINUOUS"


# --- live, over the control plane ------------------------------------------------------------


async def test_narration_is_pushed_on_the_console_stream(tmp_path: Path) -> None:
    """Served from the continuous trial: the 4 h note comes once pump time reaches it; an
    instructor's note comes at once; neither is a record of the pump's log."""
    options = ServerOptions(
        control=("127.0.0.1", 0), console=True, scenario="trial-continuous-then-implant"
    )
    async with EmulatorServer(tmp_path / "pump", options) as server:
        cp = server.control
        assert cp is not None
        serial = server.device.pump.serial
        base = f"/v1/pumps/{serial}"
        stream = await Sse.open(cp.url, f"{base}/stream?access_token={cp.token}")
        try:
            _, first = await stream.until("narration")
            assert first == {"reset": True, "notes": []}
            await get_json(cp.url, f"{base}/advance", cp.token, "POST", {"ms": 5 * fm.MS_PER_HOUR})
            _, due = await stream.until("narration")
            assert [n["text"] for n in due["notes"]] == ["patient reports 60 % pain relief at 4 h"]
            assert due["notes"][0]["source"] == "scenario" and not due["reset"]
            posted = await get_json(
                cp.url, f"{base}/narration", cp.token, "POST", {"text": "BP 120/80, alert"}
            )
            assert [n["source"] for n in posted["notes"]] == ["scenario", "instructor"]
            _, live = await stream.until("narration")
            assert [n["text"] for n in live["notes"]] == ["BP 120/80, alert"]
        finally:
            stream.close()
        listed = await get_json(cp.url, f"{base}/narration", cp.token)
        assert len(listed["notes"]) == 2
        status, _, body = await http(
            cp.url, "POST", f"{base}/narration", {"text": " "}, token=cp.token
        )
        assert status == 400 and b"1 .. 300" in body
        events = await get_json(cp.url, f"{base}/events?limit=4096", cp.token)
        assert not any("BP 120/80" in json.dumps(e) for e in events)


async def test_the_console_page_shows_the_narration(tmp_path: Path, browser: Any) -> None:
    """In the browser: no panel until a note is due; the scenario's 4 h note once pump time
    reaches it; an instructor's note becomes the banner, the older one listed below it."""
    options = ServerOptions(
        control=("127.0.0.1", 0), console=True, scenario="trial-continuous-then-implant"
    )
    async with EmulatorServer(tmp_path / "pump", options) as server:
        cp = server.control
        assert cp is not None
        base = f"/v1/pumps/{server.device.pump.serial}"
        page = await open_console(browser, cp.console_url)
        await expect(page.locator("#narration")).to_be_hidden()
        await get_json(cp.url, f"{base}/advance", cp.token, "POST", {"ms": 5 * fm.MS_PER_HOUR})
        latest = page.locator("#narration-latest")
        await expect(latest).to_have_text("patient reports 60 % pain relief at 4 h")
        await get_json(cp.url, f"{base}/narration", cp.token, "POST", {"text": "BP 120/80"})
        await expect(latest).to_have_text("BP 120/80")
        await expect(page.locator("#narration-list li")).to_have_count(1)
        await expect(page.locator("#narration-list li")).to_contain_text("60 % pain relief")
        await page.screenshot(path=tmp_path / "console-narration.png", full_page=True)
        assert page.errors == []
