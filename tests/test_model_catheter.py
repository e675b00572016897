"""Catheter complications with their real signatures: kink, disconnection or tear, tip granuloma,
and the catheter access port (CAP) aspiration (docs/firmware_model.md section 18).

Every number below is worked by hand in the docstring from the manuals' figures: morphine
25 mg/mL at 3 mg/day is 0.12 mL/day (domain.md 2.5); baclofen 2000 mcg/mL at 500 mcg/day is
0.25 mL/day (domain.md 2.2); a 20 mL SynchroMed II flags a refill discrepancy over 1 mL
(domain #23). The pump's own accuracy error is set to 0 so the arithmetic is the fraction's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import firmware_model as fm
from firmware_model import (
    DAY_MS,
    NG_PER_MCG,
    NG_PER_MG,
    NL_PER_ML,
    PPM,
    CapFinding,
    CatheterGranuloma,
    CatheterKink,
    CatheterLeak,
    CatheterOcclusion,
    ConcentrationUnit,
    Drug,
    EventKind,
    FaultKind,
    ProfileId,
    Pump,
    Rejected,
)

from .model_helpers import POST, T0

DATA = Path(__file__).parent / "data"
MORPHINE = 25 * NG_PER_MG  # ng/mL
BACLOFEN = 2000 * NG_PER_MCG


def pump(
    profile: ProfileId = ProfileId.SYNCHROMED_II_20,
    drug: Drug = Drug.MORPHINE,
    conc: int = MORPHINE,
    dose_ng: int = 3 * NG_PER_MG,
    catheter_nl: int = 221_000,
) -> Pump:
    """Filled to 20 mL, running `dose_ng`/day, accuracy error 0."""
    p = Pump.create(
        profile, serial=77, now_ms=T0, accuracy_error_ppm=0, catheter_volume_nl=catheter_nl
    )
    p.advance_to(T0 + POST)
    unit = ConcentrationUnit.MG_PER_ML if drug is Drug.MORPHINE else ConcentrationUnit.MCG_PER_ML
    p.record_refill(
        withdrawn_nl=0, added_nl=20 * NL_PER_ML, drug=drug, conc_ng_per_ml=conc, unit=unit
    )
    p.set_continuous_dose(dose_ng, confirm_soft_limit=True)
    return p


def refill_all(p: Pump, conc: int = MORPHINE) -> fm.RefillReport:
    unit = ConcentrationUnit.MG_PER_ML if conc == MORPHINE else ConcentrationUnit.MCG_PER_ML
    drug = Drug.MORPHINE if conc == MORPHINE else Drug.BACLOFEN
    return p.record_refill(
        withdrawn_nl=p.status().true_reservoir_nl,
        added_nl=20 * NL_PER_ML,
        drug=drug,
        conc_ng_per_ml=conc,
        unit=unit,
    )


def alarm_records(p: Pump) -> list[fm.Event]:
    return [e for e in p.events() if e.kind is EventKind.ALARM_RAISED]


# --- kink / partial occlusion --------------------------------------------------------------


def test_kink_40_percent_for_30_days_found_at_refill() -> None:
    """Morphine 0.12 mL/day for 30 days with a 40 % kink from day 0:
    program (the pump's count) = 0.12 x 30 = 3.6 mL, calculated volume 20 - 3.6 = 16.4 mL;
    pumped = 0.6 x 3.6 = 2.16 mL, true volume 20 - 2.16 = 17.84 mL;
    to the patient = 2.16 mL (the catheter passes what enters it);
    refill: withdrawn 17.84 - expected 16.4 = +1.44 mL > 1 mL: beyond limits;
    delivery ratio (20 - 17.84) / (20 - 16.4) = 2.16 / 3.6 = 60 %. No alarm at any time."""
    p = pump()
    t = p.now
    p.inject(CatheterKink(restriction_ppm=400_000))
    p.advance_to(t + 30 * DAY_MS)
    st = p.status()
    assert st.program_total_nl == 3_600_000
    assert st.reservoir_nl == 16_400_000
    assert st.pumped_total_nl == 2_160_000
    assert st.true_reservoir_nl == 17_840_000
    assert st.patient_total_nl == 2_160_000
    assert st.active_alarms == fm.Alarm(0) and alarm_records(p) == []
    assert FaultKind.CATHETER_KINK in st.faults
    assert st.delivering
    r = refill_all(p)
    assert r.discrepancy_nl == 1_440_000
    assert r.delivery_ratio_ppm == 600_000
    assert r.beyond_limits


IMPLANTS = [p for p in ProfileId if p is not ProfileId.EXTERNAL_TRIAL]


@pytest.mark.parametrize("profile", IMPLANTS)
def test_no_implant_raises_an_alarm_for_a_kink(profile: ProfileId) -> None:
    """No implant has a catheter sensor (SynchroMed II: occlusions show only as a refill
    discrepancy; Prometra II and the constant-flow pump: none documented either)."""
    p = Pump.create(profile, serial=5, now_ms=T0)
    p.advance_to(T0 + POST)
    p.record_refill(
        withdrawn_nl=0,
        added_nl=p.profile.reservoir_nl,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=MORPHINE,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    if not p.profile.fixed_rate_nl_per_day:
        p.set_continuous_dose(3 * NG_PER_MG, confirm_soft_limit=True)
    before = len(alarm_records(p))
    p.inject(CatheterKink(restriction_ppm=900_000))
    p.advance_to(p.now + 10 * DAY_MS)
    assert len(alarm_records(p)) == before
    assert p.status().pumped_total_nl < p.status().program_total_nl


def test_kink_reaching_the_empty_true_reservoir_is_an_exact_event() -> None:
    """True volume 60 uL above the empty threshold, 0.12 mL/day through a 50 % kink:
    0.06 mL/day passes, so the true reservoir runs dry exactly one day later."""
    p = pump()
    p.inject(CatheterKink(restriction_ppm=500_000))
    p.set_true_reservoir(p.profile.empty_threshold_nl + 60_000)
    t = p.now
    p.advance_to(t + DAY_MS - 1)
    assert p.status().delivering
    p.advance_to(t + DAY_MS)
    assert not p.status().delivering
    assert p.status().true_reservoir_nl == p.profile.empty_threshold_nl


def test_kink_cleared_restores_full_flow() -> None:
    """25 % kink for 10 days (0.9 mL pumped of 1.2 mL), then repaired: 10 more days at the full
    0.12 mL/day: 0.9 + 1.2 = 2.1 mL pumped of 2.4 mL programmed."""
    p = pump()
    t = p.now
    p.inject(CatheterKink(restriction_ppm=250_000))
    p.advance_to(t + 10 * DAY_MS)
    p.clear_fault(FaultKind.CATHETER_KINK)
    assert FaultKind.CATHETER_KINK not in p.active_faults()
    p.advance_to(t + 20 * DAY_MS)
    assert p.status().pumped_total_nl == 2_100_000
    assert p.status().program_total_nl == 2_400_000


def test_a_full_kink_is_an_occlusion() -> None:
    """restriction 100 %: nothing leaves the reservoir, the pump does not know."""
    p = pump()
    t = p.now
    p.inject(CatheterKink(restriction_ppm=PPM))
    p.advance_to(t + 5 * DAY_MS)
    st = p.status()
    assert st.pumped_total_nl == 0 and st.program_total_nl == 600_000
    assert not st.delivering
    assert p.cap_finding() is CapFinding.OBSTRUCTED


@pytest.mark.parametrize("bad", [0, -1, PPM + 1])
def test_bad_kink_is_refused_and_changes_nothing(bad: int) -> None:
    p = pump()
    before = fm.snapshot(p)
    with pytest.raises(Rejected) as exc:
        p.inject(CatheterKink(restriction_ppm=bad))
    assert exc.value.reason is fm.Reason.INVALID_VALUE
    after = fm.snapshot(p)
    # only the COMMAND_REJECTED record is new
    assert after["state"]["events"][:-1] == before["state"]["events"]
    assert after["state"]["faults"] == before["state"]["faults"]


def test_the_external_trial_pump_senses_a_kinked_line() -> None:
    """The external pump's pressure sensor (docs/firmware_model.md section 16) sees a kinked
    line: DOWNSTREAM_OCCLUSION, and it stops until the kink is cleared."""
    p = Pump.create(ProfileId.EXTERNAL_TRIAL, serial=5, now_ms=T0)
    p.advance_to(p.self_test_ends_at)
    p.inject(CatheterKink(restriction_ppm=400_000))
    assert fm.Alarm.DOWNSTREAM_OCCLUSION in p.active_alarms
    p.clear_fault(FaultKind.CATHETER_KINK)
    assert fm.Alarm.DOWNSTREAM_OCCLUSION not in p.active_alarms
    before = p.event_seq
    with pytest.raises(ValueError, match="no catheter access port"):
        p.aspirate_cap()
    assert p.event_seq == before


# --- disconnection or tear: CatheterLeak -----------------------------------------------------


def test_baclofen_disconnection_pumps_but_the_patient_gets_nothing() -> None:
    """Baclofen 0.25 mL/day; the catheter disconnects on day 0 (share 100 %) for 14 days:
    pumped = 0.25 x 14 = 3.5 mL (the true volume follows the calculated one: 16.5 mL both);
    to the patient: 0 mL, 0 mcg (instead of 500 mcg/day): withdrawal.
    Refill: withdrawn 16.5 - expected 16.5 = 0: no discrepancy, nothing flagged; only the
    CAP aspiration (no CSF, no resistance) finds it."""
    p = pump(drug=Drug.BACLOFEN, conc=BACLOFEN, dose_ng=500 * NG_PER_MCG)
    t = p.now
    p.inject(CatheterLeak(share_ppm=PPM))
    p.advance_to(t + 14 * DAY_MS)
    st = p.status()
    assert st.pumped_total_nl == 3_500_000
    assert st.true_reservoir_nl == st.reservoir_nl == 16_500_000
    assert st.patient_total_nl == 0 and st.patient_dose_ng == 0
    assert alarm_records(p) == []
    assert p.cap_finding() is CapFinding.DISCONNECTED
    r = refill_all(p, BACLOFEN)
    assert r.discrepancy_nl == 0 and not r.beyond_limits


def test_tear_loses_its_share_to_the_tissue() -> None:
    """A tear losing 30 %, 20 days at 0.12 mL/day with the catheter already full of morphine
    (no dead volume): pumped 2.4 mL, patient 0.7 x 2.4 = 1.68 mL = 1.68 x 25 = 42 mg
    (instead of 60 mg). No refill discrepancy."""
    p = pump(catheter_nl=0)
    tubing = p.profile.pump_tubing_nl
    p.inject(CatheterLeak(share_ppm=300_000))
    t = p.now
    p.advance_to(t + 20 * DAY_MS)
    st = p.status()
    assert st.pumped_total_nl == 2_400_000
    assert st.patient_total_nl == 1_680_000
    # the tubing's drug-free fluid went first: (1.68 mL - 0.7 x tubing) of morphine
    assert st.patient_dose_ng == (1_680_000 - tubing * 7 // 10) * MORPHINE // NL_PER_ML
    assert p.cap_finding() is CapFinding.LEAK
    assert refill_all(p).discrepancy_nl == 0


# --- tip granuloma ---------------------------------------------------------------------------


def test_granuloma_ramp_over_four_weeks_worked_by_hand() -> None:
    """A granuloma growing from 0 to 70 % over 28 days, morphine 0.12 mL/day = 120 uL/day.
    Day d (0 .. 27) holds back 70 % x d / 28 = 2.5 % x d, so 120 - 3 d uL pass that day:
    sum over d = 0 .. 27 = 28 x 120 - 3 x (27 x 28 / 2) = 3360 - 1134 = 2226 uL.
    Then 30 % passes: 36 uL/day; over days 28 .. 41: 14 x 36 = 504 uL.
    Six weeks: pumped 2.730 mL of 5.040 mL programmed; refill discrepancy +2.31 mL."""
    p = pump()
    t = p.now
    p.inject(CatheterGranuloma(end_ppm=700_000, days=28))
    p.advance_to(t + 28 * DAY_MS)
    assert p.status().pumped_total_nl == 2_226_000
    p.advance_to(t + 42 * DAY_MS)
    st = p.status()
    assert st.pumped_total_nl == 2_730_000
    assert st.program_total_nl == 5_040_000
    assert alarm_records(p) == []
    assert p.cap_finding() is CapFinding.PARTIAL_OBSTRUCTION
    r = refill_all(p)
    assert r.discrepancy_nl == 5_040_000 - 2_730_000


def test_granuloma_from_a_start_value_to_full_obstruction() -> None:
    """From 40 % to 100 % over 3 days: day 0 passes 60 %, day 1 40 %, day 2 20 %, then 0:
    120 x (0.6 + 0.4 + 0.2) = 144 uL, and nothing more after day 3."""
    p = pump()
    t = p.now
    p.inject(CatheterGranuloma(start_ppm=400_000, end_ppm=PPM, days=3))
    p.advance_to(t + 10 * DAY_MS)
    assert p.status().pumped_total_nl == 144_000
    assert not p.status().delivering
    assert p.cap_finding() is CapFinding.OBSTRUCTED


def test_granuloma_costs_one_event_a_day_and_splits_exactly() -> None:
    """A 180-day ramp: advancing at once processes about one internal event per day, and
    advancing in uneven steps gives exactly the same state."""
    a, b = pump(), pump()
    for x in (a, b):
        x.inject(CatheterGranuloma(start_ppm=0, end_ppm=333_333, days=180))
    t = a.now
    n = a.advance_to(t + 200 * DAY_MS)
    assert 180 <= n <= 200
    step = 7 * DAY_MS // 3 + 12_345
    while b.now < t + 200 * DAY_MS:
        b.advance_to(min(t + 200 * DAY_MS, b.now + step))
    assert fm.snapshot(a)["state"] == fm.snapshot(b)["state"]


def test_granuloma_with_a_kink_in_series() -> None:
    """A 50 % kink and a granuloma holding 50 % pass 0.5 x 0.5 = 25 %: 0.12 x 0.25 = 30 uL/day
    (the granuloma ramp over 1 day reaches 50 % at the end of day 0: day 0 passes 50 %)."""
    p = pump()
    t = p.now
    p.inject(CatheterKink(restriction_ppm=500_000))
    p.inject(CatheterGranuloma(start_ppm=0, end_ppm=500_000, days=1))
    p.advance_to(t + 3 * DAY_MS)
    assert p.status().pumped_total_nl == 60_000 + 2 * 30_000
    p.clear_fault(FaultKind.CATHETER_GRANULOMA)
    assert FaultKind.CATHETER_GRANULOMA not in p.active_faults()
    p.advance_to(t + 4 * DAY_MS)
    assert p.status().pumped_total_nl == 120_000 + 60_000


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [(0, 0, 10), (500_000, 400_000, 10), (0, PPM + 1, 10), (-1, 10, 10), (0, 10, 0), (0, 10, 3651)],
)
def test_bad_granuloma_is_refused(start: int, end: int, days: int) -> None:
    p = pump()
    faults = fm.snapshot(p)["state"]["faults"]
    with pytest.raises(Rejected):
        p.inject(CatheterGranuloma(end_ppm=end, days=days, start_ppm=start))
    assert fm.snapshot(p)["state"]["faults"] == faults


def test_a_second_granuloma_is_refused() -> None:
    p = pump()
    p.inject(CatheterGranuloma(end_ppm=500_000, days=10))
    with pytest.raises(Rejected) as exc:
        p.inject(CatheterGranuloma(end_ppm=600_000, days=10))
    assert exc.value.reason is fm.Reason.INVALID_STATE


# --- CAP aspiration --------------------------------------------------------------------------


def test_cap_aspiration_of_a_patent_catheter_draws_its_contents() -> None:
    """Patent catheter full of morphine after 10 days (1.2 mL pushed through 221 uL of catheter
    and the pump tubing): the aspiration draws the catheter's 221 uL = 221 x 25 / 1000 =
    5.525 mg of morphine back (the tubing, before the port, keeps its drug) and leaves CSF in
    the catheter: the next 221 uL pumped carry no drug to the patient."""
    p = pump()
    t = p.now
    p.advance_to(t + 10 * DAY_MS)
    dead = 221_000
    r = p.aspirate_cap()
    assert r.finding is CapFinding.PATENT
    assert r.aspirated_nl == dead and r.drug_ng == 5_525_000
    assert p.catheter().dead_volume_nl == dead + p.profile.pump_tubing_nl
    assert r.text == fm.FINDING_TEXT[CapFinding.PATENT]
    last = p.events()[-1]
    assert (last.kind, last.source, last.a, last.b) == (
        EventKind.CONTROL,
        fm.Source.CONTROL,
        11,
        int(CapFinding.PATENT),
    )
    dose = p.status().patient_dose_ng
    p.advance_to(p.now + dead * DAY_MS // 120_000)  # exactly the dead volume pumped
    assert p.status().patient_dose_ng == dose


@pytest.mark.parametrize(
    ("fault", "finding", "draws"),
    [
        (CatheterOcclusion(), CapFinding.OBSTRUCTED, False),
        (CatheterKink(restriction_ppm=400_000), CapFinding.PARTIAL_OBSTRUCTION, True),
        (CatheterGranuloma(end_ppm=PPM, days=1), CapFinding.OBSTRUCTED, False),
        (CatheterLeak(share_ppm=PPM), CapFinding.DISCONNECTED, False),
        (CatheterLeak(share_ppm=200_000), CapFinding.LEAK, True),
    ],
)
def test_cap_finding_follows_the_true_catheter(
    fault: fm.Fault, finding: CapFinding, draws: bool
) -> None:
    p = pump()
    p.inject(fault)
    p.advance_to(p.now + 2 * DAY_MS)
    r = p.aspirate_cap()
    assert r.finding is finding
    assert (r.aspirated_nl > 0) is draws


# --- snapshots -------------------------------------------------------------------------------


def test_a_version_1_snapshot_restores_to_the_same_pump() -> None:
    """tests/data/snapshot_v1.json was written by the model before this change (morphine
    25 mg/mL at 3 mg/day, a 25 % leak, 10 days). It restores with no obstruction, to the
    volumes and log digest it had, and saves as the current version."""
    data = json.loads((DATA / "snapshot_v1.json").read_text())
    assert data["version"] == 1
    p = fm.restore(data)
    st = p.status()
    assert (st.reservoir_nl, st.true_reservoir_nl) == (18_800_003, 18_788_004)
    assert (st.pumped_total_nl, st.patient_total_nl) == (1_211_996, 908_997)
    assert p.log_digest() == "10cd299b385679fdde5b54bfc070aef71d3ae646ae09b2e72aec2338affebead"
    assert FaultKind.CATHETER_LEAK in st.faults
    assert FaultKind.CATHETER_KINK not in st.faults
    again = fm.snapshot(p)
    assert again["version"] == fm.SNAPSHOT_VERSION == 2
    assert fm.snapshot(fm.restore(again)) == again
    p.advance_to(p.now + DAY_MS)  # and it runs on


def test_a_version_1_snapshot_with_new_fields_is_refused() -> None:
    data = json.loads((DATA / "snapshot_v1.json").read_text())
    data["state"]["faults"]["kink_ppm"] = 5
    with pytest.raises(fm.SnapshotError):
        fm.restore(data)
    data["version"] = 3
    with pytest.raises(fm.SnapshotError):
        fm.restore(data)


def test_snapshot_mid_ramp_restores_the_same_future() -> None:
    p = pump()
    t = p.now
    p.inject(CatheterKink(restriction_ppm=123_457))
    p.inject(CatheterGranuloma(start_ppm=10_000, end_ppm=810_000, days=40))
    p.advance_to(t + 17 * DAY_MS + 5_555)
    q = fm.restore(json.loads(json.dumps(fm.snapshot(p))))
    for x in (p, q):
        x.advance_to(t + 60 * DAY_MS)
    assert fm.snapshot(p) == fm.snapshot(q)
    assert p.log_digest() == q.log_digest()


# --- properties ------------------------------------------------------------------------------

CLEARABLE = [FaultKind.CATHETER_KINK, FaultKind.CATHETER_GRANULOMA, FaultKind.CATHETER_LEAK]
# (operation, three integers whose meaning depends on it)
OPS = st.tuples(
    st.sampled_from(["kink", "granuloma", "leak", "clear", "aspirate", "advance"]),
    st.integers(0, PPM),
    st.integers(1, PPM),
    st.integers(1, 20 * DAY_MS),
)


def _apply(x: Pump, op: tuple[str, int, int, int], *, split: bool) -> None:
    name, i, j, k = op
    try:
        if name == "kink":
            x.inject(CatheterKink(restriction_ppm=j))
        elif name == "granuloma":
            x.inject(CatheterGranuloma(end_ppm=j, days=1 + k % 60, start_ppm=min(i, j - 1)))
        elif name == "leak":
            x.inject(CatheterLeak(share_ppm=j))
        elif name == "clear":
            x.clear_fault(CLEARABLE[i % 3])
        elif name == "aspirate":
            x.aspirate_cap()
        else:
            end = x.now + k
            parts = 1 + i % 7 if split else 1
            for n in range(parts, 0, -1):
                x.advance_to(x.now + (end - x.now) // n)
    except Rejected:
        pass


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(OPS, max_size=12))
def test_any_course_of_catheter_faults_is_exact_and_conserves_the_drug(
    ops: list[tuple[str, int, int, int]],
) -> None:
    """Whatever happens to the catheter: what left the reservoir is exactly what the true
    volume lost, the patient never gets more than was pumped, nothing is pumped beyond what
    the pump counted (accuracy 0), advancing in uneven steps equals advancing at once, and a
    snapshot restores to the same future."""
    a, b = pump(), pump()
    true0 = a.status().true_reservoir_nl
    for op in ops:
        _apply(a, op, split=False)
        _apply(b, op, split=True)
        now = a.status()
        assert true0 - now.true_reservoir_nl == now.pumped_total_nl
        assert now.patient_total_nl <= now.pumped_total_nl <= now.program_total_nl
        assert fm.snapshot(a)["state"] == fm.snapshot(b)["state"]
    q = fm.restore(json.loads(json.dumps(fm.snapshot(a))))
    a.advance_to(a.now + 30 * DAY_MS)
    q.advance_to(q.now + 30 * DAY_MS)
    assert fm.snapshot(a) == fm.snapshot(q)
