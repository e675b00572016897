"""The implanted catheter's volume is set at implant, held by the pump and reported
(CATHETER_INFO, protocol 1.1), and the programmer's bridge uses it by default (issue 15, item 3).

Figures (domain.md #27, 2.3): catheter volume = implanted length x 0.0026 mL/cm; a SynchroMed II
20 mL pump's internal tubing is 12 uL (the model's profile, [U] in domain.md). A 60 cm catheter
holds 60 x 2.6 = 156 uL; the fluid path 156 + 12 = 168 uL.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import firmware_model as fm
import programmer
import protocol as p
from emulator import EmulatorServer, ServerOptions
from emulator._cli_common import catheter_cm, catheter_ul_per_cm
from emulator._runtime import open_device
from emulator._store import StoreError

MG = 1_000_000
ML = 1_000_000
DAY = fm.DAY_MS
CATHETER_60_CM = 60 * 2_600  # 156 uL
TUBING = 12_000  # SynchroMed II 20


def _id() -> bytes:
    return uuid.uuid4().bytes


def _filled_pump(catheter_nl: int) -> fm.Pump:
    """A new SynchroMed II 20 (exact delivery) past its self test, filled with 20 mL of
    morphine 10 mg/mL; its fluid path still holds drug-free fluid."""
    pump = fm.Pump.create(
        fm.ProfileId.SYNCHROMED_II_20,
        serial=7,
        now_ms=0,
        catheter_volume_nl=catheter_nl,
        accuracy_error_ppm=0,
    )
    pump.advance_to(pump.self_test_ends_at)
    pump.record_refill(
        withdrawn_nl=0,
        added_nl=20 * ML,
        drug=fm.Drug.MORPHINE,
        conc_ng_per_ml=10 * MG,
        unit=fm.ConcentrationUnit.MG_PER_ML,
        command_id=_id(),
    )
    return pump


def _primed_pump(catheter_nl: int) -> fm.Pump:
    """Morphine 10 mg/mL at 2 mg/day (0.2 mL/day), the fluid path primed with the drug and five
    days of therapy: the catheter holds the old drug, as in an existing patient."""
    pump = _filled_pump(catheter_nl)
    pump.set_continuous_dose(2 * MG, command_id=_id())
    pump.start_priming_bolus(
        pump.catheter_volume_nl + pump.profile.pump_tubing_nl, command_id=_id()
    )
    pump.advance_to(pump.now + 5 * DAY)
    return pump


def _refill_at_20_mg(pump: fm.Pump) -> None:
    pump.record_refill(
        withdrawn_nl=pump.status().true_reservoir_nl,
        added_nl=20 * ML,
        drug=fm.Drug.MORPHINE,
        conc_ng_per_ml=20 * MG,
        unit=fm.ConcentrationUnit.MG_PER_ML,
        command_id=_id(),
    )


def test_the_pump_holds_its_catheter_volume_through_therapy() -> None:
    """The volume given at implant stays what the pump reports after priming, delivery and a
    refill: the fluid path's contents move, its volume does not."""
    pump = _primed_pump(CATHETER_60_CM)
    assert pump.catheter_volume_nl == 156_000
    _refill_at_20_mg(pump)
    pump.set_continuous_dose(2 * MG, command_id=_id())
    pump.advance_to(pump.now + 30 * DAY)
    assert pump.catheter_volume_nl == 156_000
    restored = fm.restore(fm.snapshot(pump))
    assert restored.catheter_volume_nl == 156_000
    default = fm.Pump.create(fm.ProfileId.SYNCHROMED_II_20, serial=8, now_ms=0)
    assert default.catheter_volume_nl == 85 * 2_600  # 221 uL, the model's default


def test_a_bridge_from_the_pumps_own_volumes_leaves_no_dose_gap() -> None:
    """Morphine 10 -> 20 mg/mL at 2 mg/day. The bridge flushes the 168 uL path at the old rate,
    0.2 mL/day, for 168 / 200 days = 0.84 d = 72,576,000 ms, then runs at 0.1 mL/day.
    First day after the refill: 168 uL of the old 10 mg/mL (1.68 mg) + 0.16 d x 100 uL/d of the
    new 20 mg/mL (16 uL, 0.32 mg) = 2.00 mg: exactly the prescribed dose, and 2 mg every day
    after. The same refill with the default 85 cm guess (233 uL) overdoses: from 0.84 d the
    patient gets 20 mg/mL at 0.2 mL/day (4 mg/day) until 1.165 d: on the first day
    1.68 mg + 0.16 d x 4 mg/d = 2.32 mg, 16 % over the prescription."""
    pump = _primed_pump(CATHETER_60_CM)
    _refill_at_20_mg(pump)
    dead = pump.catheter_volume_nl + pump.profile.pump_tubing_nl
    assert dead == 168_000
    pump.start_bridge(dead, 10 * MG, 2 * MG, command_id=_id())
    start = pump.now
    assert pump.bridge_ends_at_ms == pump.clock_ms + 72_576_000
    daily = []
    for day in range(1, 4):
        before = pump.status().patient_dose_ng
        pump.advance_to(start + day * DAY)
        daily.append(pump.status().patient_dose_ng - before)
    assert all(abs(d - 2 * MG) <= 20 for d in daily), daily  # 1 nL of 20 mg/mL = 20 ng

    guessed = _primed_pump(CATHETER_60_CM)
    _refill_at_20_mg(guessed)
    guessed.start_bridge(85 * 2_600 + TUBING, 10 * MG, 2 * MG, command_id=_id())
    before = guessed.status().patient_dose_ng
    guessed.advance_to(guessed.now + DAY)
    first_day = guessed.status().patient_dose_ng - before
    assert abs(first_day - 2_320_000) <= 40, first_day


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    options = ServerOptions(speed_milli=100_000, catheter_volume_nl=CATHETER_60_CM)
    async with EmulatorServer(tmp_path / "pump", options) as s:
        yield s


def _connect(server: EmulatorServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    assert server.port_path
    return programmer.connect(
        f"serial://{server.port_path}",
        key=server.key_files[p.Role.CLINICIAN],
        journal=tmp_path / "journal.sqlite",
    )


async def _fill_then_concentrate(pump: programmer.Pump) -> None:
    await (
        await pump.prepare_refill(
            withdrawn_nl=0,
            added_nl=20 * ML,
            drug=p.Drug.MORPHINE,
            conc_ng_per_ml=10 * MG,
            low_threshold_nl=2 * ML,
        )
    ).commit()
    await (await pump.prepare_dose(2 * MG)).commit()
    status = await pump.status()
    refill = await pump.prepare_refill(
        withdrawn_nl=status.reservoir_volume_nl, added_nl=20 * ML, conc_ng_per_ml=20 * MG
    )
    await refill.commit(confirm=True)


async def test_the_pump_reports_its_catheter_and_the_bridge_uses_it(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """`serve --catheter-cm 60`: CATHETER_INFO says 156 uL + 12 uL, and a bridge prepared
    without a length flushes 168 uL: 0.84 days at 0.2 mL/day."""
    async with _connect(server, tmp_path) as pump:
        info = await pump.catheter()
        assert (info.catheter_volume_nl, info.pump_tubing_nl) == (156_000, 12_000)
        assert pump.device is not None and pump.device.protocol_minor == 1
        priming = await pump.prepare_priming()  # the path from the pump: 156 + 12 uL
        assert priming.message.volume_nl == 168_000
        assert {n: v for n, _, v in priming.diff}["fluid path"] == (
            "catheter 0.156 mL + pump tubing 0.012 mL, from the pump"
        )
        await _fill_then_concentrate(pump)
        bridge = await pump.prepare_bridge(10 * MG, 2 * MG)
        rows = {name: new for name, _, new in bridge.diff}
        assert "0.2 mL/day for 0.84 days (0.168 mL dead volume)" in rows["bridge"]
        assert rows["dead volume"] == "catheter 0.156 mL + pump tubing 0.012 mL, from the pump"
        assert bridge.message.dead_volume_nl == 168_000
        await bridge.commit()
        program = await pump.program()
        assert program.mode is p.ProgramMode.BRIDGE


async def test_a_pump_without_catheter_info_asks_for_the_length(
    server: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1.0 pump answers GET_CATHETER_INFO with UNKNOWN_MESSAGE (protocol.md section 13): the
    bridge then says to give the catheter length, and with it works as in 1.0."""

    async def unknown(self: programmer.Pump) -> p.CatheterInfo:
        error = p.Error(
            code=p.ErrorCode.UNKNOWN_MESSAGE,
            request_msg_id=p.GetCatheterInfo.MSG_ID,
            command_id=bytes(16),
            detail="unknown message id",
        )
        raise programmer.Refused(error, "GET_CATHETER_INFO")

    monkeypatch.setattr(programmer.Pump, "catheter", unknown)
    async with _connect(server, tmp_path) as pump:
        await _fill_then_concentrate(pump)
        with pytest.raises(programmer.BadInput, match="give the catheter length"):
            await pump.prepare_bridge(10 * MG, 2 * MG)
        bridge = await pump.prepare_bridge(10 * MG, 2 * MG, catheter_length_cm=60)
        assert bridge.message.dead_volume_nl == 156_000


def test_a_stored_pump_keeps_its_catheter(tmp_path: Path) -> None:
    device = open_device(tmp_path / "s", catheter_volume_nl=CATHETER_60_CM)
    assert device.pump.catheter_volume_nl == 156_000
    assert device.store is not None
    device.store.close()
    again = open_device(tmp_path / "s")  # no catheter named: the stored one
    assert again.pump.catheter_volume_nl == 156_000
    assert again.store is not None
    again.store.close()
    with pytest.raises(StoreError, match="156000 nL catheter, not 221000 nL"):
        open_device(tmp_path / "s", catheter_volume_nl=85 * 2_600)


def test_catheter_options() -> None:
    assert catheter_cm("60") == 60
    assert catheter_ul_per_cm("2.6") == 2_600
    for bad in ("0", "201", "6.5", "x"):
        with pytest.raises(Exception, match=r"catheter length|whole number"):
            catheter_cm(bad)
    for bad in ("0.1", "21", "inf", "nan", "x"):
        with pytest.raises(Exception, match="uL per cm"):
            catheter_ul_per_cm(bad)


def test_fill_catheter_puts_the_drug_in_the_whole_path_and_changes_no_volume() -> None:
    """An existing patient: the 168 uL path holds the reservoir's 10 mg/mL drug, so the first
    day at 0.2 mL/day brings the patient 2 mg (a new, unprimed path brings 0.032 mL x 10 mg/mL
    = 0.32 mg: 168 uL of drug-free fluid leave first)."""
    from emulator._scenario import parse_scenario, run_scenario

    def first_day(primed: bool) -> int:
        pump = _filled_pump(CATHETER_60_CM)
        if primed:
            seq = pump.fill_catheter()
            record = pump.events()[-1]
            assert (record.seq, record.kind, record.a, record.b) == (
                seq,
                fm.EventKind.CONTROL,
                fm.CONTROL_CATHETER_FILLED,
                168_000,
            )
        assert pump.catheter_volume_nl == 156_000
        pump.set_continuous_dose(2 * MG, command_id=_id())
        pump.advance_to(pump.now + DAY)
        return pump.status().patient_dose_ng

    assert first_day(True) == 2_000_000
    assert first_day(False) == 320_000

    text = """
[pump]
profile = "synchromed-ii-20"
catheter_cm = 60
catheter_primed = %s
[run]
duration = "2d"
[[timeline]]
at = "0d"
action = "refill"
withdrawn_ml = 0
added_ml = 20
drug = "morphine"
concentration = "10mg/mL"
[[timeline]]
at = "0d"
action = "dose"
dose = "2mg"
"""
    import tomllib

    primed = run_scenario(parse_scenario(tomllib.loads(text % "true")))
    unprimed = run_scenario(parse_scenario(tomllib.loads(text % "false")))
    # two days at 0.2 mL/day (x 1.01, the profile's accuracy): 0.404 mL pumped; unprimed, the
    # first 0.168 mL to reach the patient carry no drug
    assert primed.final["patient_ml"] == pytest.approx(0.404, abs=0.001)
    assert unprimed.final["patient_ml"] == pytest.approx(0.404, abs=0.001)
    assert primed.final["delivered_mg"] == pytest.approx(4.04, abs=0.01)
    assert unprimed.final["delivered_mg"] == pytest.approx(4.04 - 1.68, abs=0.01)


@pytest.mark.parametrize(
    ("pump_table", "message"),
    [
        ("catheter_cm = 0", "catheter_cm must be a whole number"),
        ("catheter_cm = 60.5", "catheter_cm must be a whole number"),
        ("catheter_cm = 60\ncatheter_ul_per_cm = 30", "catheter_ul_per_cm must be 0.5 .. 20"),
        ("catheter_ul_per_cm = 2.6", "goes with pump.catheter_cm"),
        ('catheter_primed = "yes"', "catheter_primed must be true or false"),
        ("catheter_length = 60", "unknown key"),
    ],
)
def test_bad_catheter_settings_in_a_scenario_are_refused(pump_table: str, message: str) -> None:
    import tomllib

    from emulator._scenario import ScenarioError, parse_scenario

    with pytest.raises(ScenarioError, match=message):
        parse_scenario(tomllib.loads(f"[pump]\n{pump_table}\n"))


def test_a_scenario_sets_the_catheter_the_pump_reports() -> None:
    """`catheter_cm = 60` with `catheter_ul_per_cm = 1.5`: 90 uL."""
    import tomllib

    from emulator._scenario import parse_scenario, starting_pump

    scenario = parse_scenario(tomllib.loads("[pump]\ncatheter_cm = 60\ncatheter_ul_per_cm = 1.5\n"))
    assert scenario.catheter_volume_nl == 90_000
    assert starting_pump(scenario, now_ms=0).catheter_volume_nl == 90_000
