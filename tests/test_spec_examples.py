"""Every worked example of docs/protocol.md section 18 is one a default pump accepts (or refuses
with the code shown), and the pump derives exactly the numbers the document shows. The examples
and their arithmetic are protocol/_dosing.py, the data the document is rendered from."""

from __future__ import annotations

import random

import pytest

import firmware_model as fm
import protocol as p
from emulator._device_commands import apply_message
from protocol import _dosing
from protocol._dosing import DOSE_EXAMPLES, DoseExample

T0 = 1_767_225_600_000


def default_pump(ex: DoseExample) -> fm.Pump:
    """The emulator's default pump (`Pump.create`'s defaults), past its self test, refilled."""
    pump = fm.Pump.create(serial=1234, now_ms=T0)
    pump.advance_to(T0 + pump.profile.post_ms)
    pump.record_refill(
        withdrawn_nl=0, added_nl=20_000_000, drug=fm.Drug(int(ex.drug)),
        conc_ng_per_ml=ex.conc_ng_per_ml, unit=fm.ConcentrationUnit(int(ex.unit)),
        confirm_soft_limit=True,
    )  # fmt: skip
    if ex.programmed:
        pump.set_continuous_dose(5_000_000)
    return pump


@pytest.mark.parametrize("ex", DOSE_EXAMPLES, ids=[e.title for e in DOSE_EXAMPLES])
def test_every_worked_example_is_what_a_default_pump_does(ex: DoseExample) -> None:
    pump = default_pump(ex)
    assert getattr(ex.message, "expected_program_version", None) == pump.program_version
    if ex.refused is not None:
        with pytest.raises(fm.Rejected) as exc:
            apply_message(pump, ex.message)
        assert p.ErrorCode(int(exc.value.reason)) is ex.refused
        return
    apply_message(pump, ex.message)
    want = {name: value for name, (value, _) in _dosing.derived(ex).items()}
    st = pump.status()
    got: dict[str, int] = {}
    m = ex.message
    if isinstance(m, p.SetContinuousDose):
        got["rate_nl_per_day"] = st.basal_rate_nl_per_day
    elif isinstance(m, p.SetSchedule):
        for i, step in enumerate(m.steps):  # the rate in force at each step's start
            probe = fm.snapshot(pump)
            twin = fm.restore(probe)
            day = T0 - T0 % 86_400_000 + 86_400_000
            twin.advance_to(day + step.start_minute * 60_000 + 1)
            got[f"step {i + 1} rate_nl_per_day"] = twin.status().basal_rate_nl_per_day
    elif isinstance(m, p.StartClinicianBolus):
        bolus = pump.bolus
        assert bolus is not None
        got["volume_nl"] = bolus.volume_nl
    elif isinstance(m, p.StartPrimingBolus):
        bolus = pump.bolus
        assert bolus is not None
        got["dose_ng"] = bolus.dose_ng
    elif isinstance(m, p.StartBridge):
        got["bridge rate_nl_per_day"] = st.basal_rate_nl_per_day
        ends = pump.bridge_ends_at_ms
        assert ends is not None
        got["bridge duration_ms"] = ends - st.clock_ms
        pump.advance_to(pump.now + got["bridge duration_ms"] + 1)
        got["rate_nl_per_day"] = pump.status().basal_rate_nl_per_day
    assert got == want


def test_the_documented_rate_formula_is_the_pumps_for_any_dose() -> None:
    rng = random.Random(16)
    pump = default_pump(DOSE_EXAMPLES[0])
    for _ in range(200):
        conc = rng.randint(1_000_000, 25_000_000)
        dose = rng.randint(100_000, 15_000_000)
        rate = _dosing.rate_nl_per_day(dose, conc)
        if not 48_000 <= rate <= 24_000_000:
            continue
        pump.record_refill(
            withdrawn_nl=0, added_nl=20_000_000, drug=fm.Drug.MORPHINE, conc_ng_per_ml=conc,
            unit=fm.ConcentrationUnit.MG_PER_ML, confirm_soft_limit=True,
        )  # fmt: skip
        pump.set_continuous_dose(dose, confirm_soft_limit=True)
        assert pump.status().basal_rate_nl_per_day == rate
        bolus = rng.randint(1_000, min(conc // 2, 10_000_000))
        pump.start_clinician_bolus(bolus, 3_600_000, confirm_soft_limit=True)
        b = pump.bolus
        assert b is not None and b.volume_nl == _dosing.bolus_volume_nl(bolus, conc)
        pump.cancel_bolus()
