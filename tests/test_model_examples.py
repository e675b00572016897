"""The worked examples of domain.md section 2, reproduced exactly by the firmware model."""

from __future__ import annotations

from fractions import Fraction

from firmware_model import (
    DAY_MS,
    MS_PER_HOUR,
    NG_PER_MCG,
    NG_PER_MG,
    NL_PER_ML,
    Alarm,
    ConcentrationUnit,
    DeliveryInaccuracy,
    Drug,
    EventKind,
    Mode,
    ProfileId,
)

from .model_helpers import T0, baclofen_pump, morphine_pump, new_pump


def test_baclofen_alarm_day_72_empty_day_80() -> None:
    # domain.md 2.2: 20 mL, 2000 mcg/mL, 500 mcg/day -> 0.25 mL/day; 2 mL threshold.
    p = baclofen_pump()
    t0 = p.now
    st = p.status()
    assert st.basal_rate_nl_per_day == 250_000
    assert st.daily_dose_ng == 500_000
    assert st.low_reservoir_at_ms == p.clock_ms + 72 * DAY_MS
    assert st.empty_at_ms == p.clock_ms + 80 * DAY_MS
    p.advance_to(t0 + 72 * DAY_MS - 1)
    assert not p.active_alarms
    assert p.status().reservoir_nl == 2 * NL_PER_ML + 1
    p.advance_to(t0 + 72 * DAY_MS)
    assert p.active_alarms == Alarm.LOW_RESERVOIR
    assert p.status().reservoir_nl == 2 * NL_PER_ML
    p.advance_to(t0 + 80 * DAY_MS)
    assert p.active_alarms == Alarm.LOW_RESERVOIR | Alarm.EMPTY_RESERVOIR
    assert p.status().reservoir_nl == 0
    raised = [e for e in p.events() if e.kind is EventKind.ALARM_RAISED]
    assert [(e.a, e.time_ms - (T0 + 2000)) for e in raised] == [
        (int(Alarm.LOW_RESERVOIR), 72 * DAY_MS),
        (int(Alarm.EMPTY_RESERVOIR), 80 * DAY_MS),
    ]


def test_empty_reservoir_stops_delivery() -> None:
    p = baclofen_pump()
    p.advance_to(p.now + 80 * DAY_MS)
    total = p.status().program_total_nl
    assert total == 20 * NL_PER_ML
    p.advance_to(p.now + 10 * DAY_MS)
    assert p.status().program_total_nl == total
    assert not p.status().delivering


def test_refill_check_over_delivery_ratio_1_093() -> None:
    # Day 60: expected residual 5.0 mL; aspirated 3.6 -> delivered 16.4 vs 15.0 -> 1.093.
    p = baclofen_pump()
    p.advance_to(p.now + 60 * DAY_MS)
    r = p.record_refill(
        withdrawn_nl=3_600_000,
        added_nl=20 * NL_PER_ML,
        drug=Drug.BACLOFEN,
        conc_ng_per_ml=2000 * NG_PER_MCG,
        unit=ConcentrationUnit.MCG_PER_ML,
    )
    assert r.expected_residual_nl == 5 * NL_PER_ML
    assert r.discrepancy_nl == -1_400_000
    assert r.delivery_ratio_ppm == 1_093_333
    assert r.beyond_limits  # 1.4 mL beyond the 1 mL limit of a 20 mL pump (domain #23)
    assert r.low_reservoir_at_ms == p.clock_ms + 72 * DAY_MS
    assert r.empty_at_ms == p.clock_ms + 80 * DAY_MS


def test_refill_check_under_delivery_ratio_0_83() -> None:
    p = baclofen_pump()
    p.advance_to(p.now + 60 * DAY_MS)
    r = p.record_refill(
        withdrawn_nl=7_500_000,
        added_nl=20 * NL_PER_ML,
        drug=Drug.BACLOFEN,
        conc_ng_per_ml=2000 * NG_PER_MCG,
        unit=ConcentrationUnit.MCG_PER_ML,
    )
    assert r.discrepancy_nl == 2_500_000
    assert r.delivery_ratio_ppm == 833_333
    assert r.beyond_limits


def test_refill_with_true_residual_and_default_accuracy() -> None:
    # The device over-infuses by +1 %: after 60 days the true residual is 4.85 mL.
    p = baclofen_pump()
    p.advance_to(p.now + 60 * DAY_MS)
    st = p.status()
    assert st.reservoir_nl == 5_000_000
    assert st.true_reservoir_nl == 20 * NL_PER_ML - 15_150_000
    r = p.record_refill(
        withdrawn_nl=st.true_reservoir_nl,
        added_nl=20 * NL_PER_ML,
        drug=Drug.BACLOFEN,
        conc_ng_per_ml=2000 * NG_PER_MCG,
        unit=ConcentrationUnit.MCG_PER_ML,
    )
    assert r.delivery_ratio_ppm == 1_010_000
    assert not r.beyond_limits


def test_flex_schedule_total_525_mcg() -> None:
    # domain.md 2.6: 400 mcg/day 00-07 and 22-24, 600 mcg/day 07-22 -> 525 mcg/day.
    p = baclofen_pump()
    p.set_schedule([(0, 400_000), (7 * 60, 600_000), (22 * 60, 400_000)])
    st = p.status()
    assert st.mode is Mode.SCHEDULE
    assert st.daily_dose_ng == 525_000
    assert st.daily_volume_nl == 262_500  # 0.2625 mL/day
    # over exactly one day from midnight the pump delivers the schedule's volume, to the nL
    midnight = p.now - p.clock_ms % DAY_MS + DAY_MS
    p.advance_to(midnight)
    before = p.status().program_total_nl
    p.advance_to(midnight + DAY_MS)
    assert p.status().program_total_nl - before == 262_500
    # the rate follows the time of day
    p.advance_to(midnight + DAY_MS + 8 * MS_PER_HOUR)
    assert p.status().basal_rate_nl_per_day == 300_000
    p.advance_to(midnight + DAY_MS + 23 * MS_PER_HOUR)
    assert p.status().basal_rate_nl_per_day == 200_000


def test_flex_schedule_alarm_date_integrates_the_schedule() -> None:
    p = baclofen_pump()
    p.set_schedule([(0, 400_000), (7 * 60, 600_000), (22 * 60, 400_000)])
    predicted = p.status().low_reservoir_at_ms
    assert predicted is not None
    p.advance_to(predicted - p.clock_ms + p.now - 1)
    assert not p.active_alarms & Alarm.LOW_RESERVOIR
    p.advance_to(p.now + 1)
    assert p.active_alarms & Alarm.LOW_RESERVOIR


def test_bridge_duration_1_105_days() -> None:
    # domain.md 2.3: 85 cm x 0.0026 mL/cm = 0.221 mL; morphine 10 -> 20 mg/mL at 2 mg/day.
    p = morphine_pump(conc_mg=10, dose_mg_x10=20)
    assert p.status().basal_rate_nl_per_day == 200_000
    p.advance_to(p.now + DAY_MS)
    p.record_refill(
        withdrawn_nl=p.status().true_reservoir_nl,
        added_nl=20 * NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=20 * NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    assert p.status().mode is Mode.STOPPED and p.status().awaiting_program
    start = p.now
    p.start_bridge(221_000, 10 * NG_PER_MG, 2 * NG_PER_MG)
    assert p.status().basal_rate_nl_per_day == 200_000  # the old concentration's rate
    assert p.bridge_ends_at_ms == p.clock_ms + 95_472_000  # 1.105 days
    p.advance_to(start + 95_472_000 - 1)
    assert p.status().mode is Mode.BRIDGE
    p.advance_to(start + 95_472_000)
    assert p.status().mode is Mode.CONTINUOUS
    assert p.status().basal_rate_nl_per_day == 100_000
    assert p.status().daily_dose_ng == 2 * NG_PER_MG


def test_bridge_keeps_the_patient_dose_where_no_bridge_under_doses() -> None:
    """The catheter holds old drug: a bridge delivers the intended dose through the change,
    switching straight to the new rate halves it for the dead volume (domain.md 2.3)."""

    def run(bridge: bool) -> int:
        p = morphine_pump(conc_mg=10, dose_mg_x10=20)
        p.inject(DeliveryInaccuracy(0))
        p.advance_to(p.now + 5 * DAY_MS)  # the catheter is full of 10 mg/mL drug
        p.record_refill(
            withdrawn_nl=p.status().true_reservoir_nl,
            added_nl=20 * NL_PER_ML,
            drug=Drug.MORPHINE,
            conc_ng_per_ml=20 * NG_PER_MG,
            unit=ConcentrationUnit.MG_PER_ML,
        )
        dead = 221_000 + p.profile.pump_tubing_nl
        if bridge:
            p.start_bridge(dead, 10 * NG_PER_MG, 2 * NG_PER_MG)
        else:
            p.set_continuous_dose(2 * NG_PER_MG)
        before = p.status().patient_dose_ng
        p.advance_to(p.now + DAY_MS)
        return p.status().patient_dose_ng - before

    assert abs(run(bridge=True) - 2 * NG_PER_MG) <= 1
    assert abs(run(bridge=False) - 1 * NG_PER_MG) <= 1


def test_patient_bolus_refill_date_118_days() -> None:
    # domain.md 2.7: basal 3 mg/day + 6 x 0.1 mg at 25 mg/mL -> 0.144 mL/day worst case;
    # 20 mL pump, refill date when 3.0 mL left: 17 / 0.144 = 118.06 days.
    p = morphine_pump(conc_mg=25, dose_mg_x10=30)
    assert p.status().basal_rate_nl_per_day == 120_000  # 3 mg/day at 25 mg/mL = 0.12 mL/day
    p.set_alarm_settings(
        low_threshold_nl=3 * NL_PER_ML, critical_repeat_ms=600_000, noncritical_repeat_ms=3_600_000
    )
    p.set_patient_bolus(
        enabled=True,
        dose_ng=100_000,
        duration_ms=600_000,
        lockout_ms=2 * MS_PER_HOUR,
        max_per_24h=6,
    )
    assert p.status().low_reservoir_at_ms == p.clock_ms + 10_200_000_000
    assert Fraction(10_200_000_000, DAY_MS) == Fraction(17) / Fraction(144, 1000)
    # recomputed at each bolus start (domain #32)
    g = p.request_patient_bolus()
    assert g.dose_ng == 100_000 and g.volume_nl == 4_000 and g.boluses_left == 5
    assert g.refill_due_at_ms is not None and g.refill_due_at_ms < p.clock_ms + 10_200_000_000


def test_continuous_dose_rate_and_days_to_alarm_40_ml() -> None:
    # domain.md 2.5: morphine 25 mg/mL, 3 mg/day -> 0.12 mL/day; 40 mL: (40-2)/0.12 = 316.7 d.
    p = morphine_pump(ml=40)
    st = p.status()
    assert st.basal_rate_nl_per_day == 120_000
    assert st.low_reservoir_at_ms == p.clock_ms + -(-38 * NL_PER_ML * DAY_MS // 120_000)


def test_constant_flow_dose_changes_only_with_concentration() -> None:
    # domain.md 2.11: 0.5 mL/day fixed; dose 2 mg/day needs 4 mg/mL.
    p = new_pump(ProfileId.CONSTANT_FLOW)
    p.record_refill(
        withdrawn_nl=0,
        added_nl=20 * NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=4 * NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    st = p.status()
    assert st.mode is Mode.CONTINUOUS and st.daily_dose_ng == 2 * NG_PER_MG
    assert st.empty_at_ms == p.clock_ms + 40 * DAY_MS  # 20 mL / 0.5 mL/day
    p.advance_to(p.now + 10 * DAY_MS)
    p.set_drug(Drug.MORPHINE, 8 * NG_PER_MG, ConcentrationUnit.MG_PER_ML)
    assert p.status().daily_dose_ng == 4 * NG_PER_MG
    assert p.status().basal_rate_nl_per_day == 500_000
