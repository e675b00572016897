"""The safety rules of security.md 3.1 and 3.2: for each, a case that accepts and one that rejects.

Every rejection must also change nothing but the event log (checked through snapshots).
"""

from __future__ import annotations

from typing import Any

import pytest

from firmware_model import (
    DAY_MS,
    MS_PER_HOUR,
    MS_PER_MIN,
    NG_PER_MCG,
    NG_PER_MG,
    NL_PER_ML,
    Alarm,
    BolusKind,
    CatheterOcclusion,
    ConcentrationUnit,
    DeliveryInaccuracy,
    Drug,
    EventKind,
    FaultKind,
    Mode,
    MotorStall,
    ProfileId,
    Pump,
    Reason,
    Rejected,
    snapshot,
)

from .model_helpers import T0, baclofen_pump, morphine_pump


def rejected(p: Pump, reason: Reason, fn: Any, *args: Any, **kw: Any) -> Rejected:
    """Call fn; it must be refused with `reason` and change nothing but one log record."""
    before = snapshot(p)
    with pytest.raises(Rejected) as info:
        fn(*args, **kw)
    assert info.value.reason is reason, info.value
    after = snapshot(p)
    log_before, log_after = before["state"].pop("events"), after["state"].pop("events")
    seq_before, seq_after = before["state"].pop("next_seq"), after["state"].pop("next_seq")
    assert after == before
    assert seq_after == seq_before + 1
    assert log_after[:-1] == log_before[-len(log_after) + 1 :] or len(log_before) == 0
    last = p.events()[-1]
    assert last.kind in (EventKind.COMMAND_REJECTED, EventKind.BOLUS_DENIED)
    assert last.a == int(reason)
    return info.value


# --- GIP 6.1.3 / 6.1.4: drug-library hard and soft limits ----------------------------------


def test_hard_limit_rejects_and_cannot_be_confirmed() -> None:
    p = morphine_pump()
    rejected(p, Reason.HARD_LIMIT, p.set_continuous_dose, 31 * NG_PER_MG, confirm_soft_limit=True)
    assert p.set_continuous_dose(30 * NG_PER_MG, confirm_soft_limit=True).program_version


def test_soft_limit_needs_confirmation() -> None:
    p = morphine_pump()
    e = rejected(p, Reason.SOFT_LIMIT_UNCONFIRMED, p.set_continuous_dose, 16 * NG_PER_MG)
    assert "soft limit" in e.detail
    p.set_continuous_dose(16 * NG_PER_MG, confirm_soft_limit=True)
    assert p.status().daily_dose_ng == 16 * NG_PER_MG
    p.set_continuous_dose(15 * NG_PER_MG)  # at the limit: no confirmation needed


def test_schedule_limits_use_the_exact_daily_total() -> None:
    p = morphine_pump()
    # 12 h at 40 mg/day + 12 h at 19 mg/day = 29.5 mg/day: under the 30 mg hard limit
    p.set_schedule([(0, 40 * NG_PER_MG), (720, 19 * NG_PER_MG)], confirm_soft_limit=True)
    rejected(
        p,
        Reason.HARD_LIMIT,
        p.set_schedule,
        [(0, 40 * NG_PER_MG), (720, 21 * NG_PER_MG)],
        confirm_soft_limit=True,
    )


def test_rate_range_of_the_profile() -> None:
    p = morphine_pump()
    rejected(p, Reason.RATE_OUT_OF_RANGE, p.set_continuous_dose, 1)  # far below 48 uL/day
    p.set_continuous_dose(1_200_000)  # 48 uL/day at 25 mg/mL: the minimum


# --- GIP 1.4.4: a bolus does not change the programmed basal rate -----------------------------


def test_bolus_on_top_leaves_basal_unchanged_and_program_resumes() -> None:
    p = morphine_pump()
    p.start_clinician_bolus(500_000, 30 * MS_PER_MIN)
    st = p.status()
    assert st.basal_rate_nl_per_day == 120_000
    assert st.current_rate_nl_per_day == 120_000 + 20_000 * DAY_MS // (30 * MS_PER_MIN)
    p.advance_to(p.now + 30 * MS_PER_MIN)
    st = p.status()
    assert st.bolus is BolusKind.NONE and st.mode is Mode.CONTINUOUS
    assert st.basal_rate_nl_per_day == 120_000


def test_single_bolus_then_stopped() -> None:
    p = morphine_pump()
    p.start_clinician_bolus(500_000, 30 * MS_PER_MIN, then_stop=True)
    p.advance_to(p.now + 30 * MS_PER_MIN)
    assert p.status().mode is Mode.STOPPED
    assert p.status().basal_rate_nl_per_day == 0


def test_a_program_set_during_a_single_bolus_is_kept() -> None:
    p = morphine_pump()
    p.start_clinician_bolus(500_000, 30 * MS_PER_MIN, then_stop=True)
    p.set_continuous_dose(2 * NG_PER_MG)
    p.advance_to(p.now + 30 * MS_PER_MIN)
    assert p.status().mode is Mode.CONTINUOUS
    assert p.status().basal_rate_nl_per_day == 80_000


# --- GIP 1.4.11: no bolus while an alarm/error state (critical) is active -------------------------


def test_no_bolus_with_a_critical_alarm() -> None:
    p = morphine_pump()
    p.inject(MotorStall())
    rejected(p, Reason.ALARM_ACTIVE, p.start_clinician_bolus, 100_000, 10 * MS_PER_MIN)
    p.clear_fault(FaultKind.MOTOR_STALL)
    p.acknowledge_alarms(Alarm.MOTOR_STALL)  # latched until acknowledged
    p.start_clinician_bolus(100_000, 10 * MS_PER_MIN)


def test_noncritical_alarm_does_not_block_a_bolus() -> None:
    p = baclofen_pump()
    p.advance_to(p.now + 72 * DAY_MS)
    assert p.active_alarms == Alarm.LOW_RESERVOIR
    p.start_clinician_bolus(50_000, 10 * MS_PER_MIN)


# --- GIP 1.4.12 + security.md 3.2: sliding 24 h cap counting everything ------------------------


def test_bolus_over_the_24h_hard_cap_is_refused() -> None:
    p = morphine_pump(dose_mg_x10=250)  # 25 mg/day basal, 30 mg/day hard limit
    p.start_clinician_bolus(4 * NG_PER_MG, 10 * MS_PER_MIN, confirm_soft_limit=True)
    p.advance_to(p.now + 10 * MS_PER_MIN)
    rejected(
        p,
        Reason.HARD_LIMIT,
        p.start_clinician_bolus,
        2 * NG_PER_MG,
        10 * MS_PER_MIN,
        confirm_soft_limit=True,
    )
    p.advance_to(p.now + DAY_MS)  # the first bolus leaves the window
    p.start_clinician_bolus(2 * NG_PER_MG, 10 * MS_PER_MIN, confirm_soft_limit=True)


# --- GIP 3.1.3: an error condition cancels the active bolus, logging what was delivered ---------


def test_error_cancels_bolus_and_logs_delivered_so_far() -> None:
    p = morphine_pump()
    p.start_clinician_bolus(1 * NG_PER_MG, 60 * MS_PER_MIN)
    p.advance_to(p.now + 15 * MS_PER_MIN)
    p.inject(MotorStall())
    cancelled = [e for e in p.events() if e.kind is EventKind.BOLUS_CANCELLED]
    assert len(cancelled) == 1
    assert cancelled[0].b == 250_000  # a quarter of the dose
    assert p.status().bolus is BolusKind.NONE


def test_no_error_no_cancel() -> None:
    p = morphine_pump()
    p.start_clinician_bolus(1 * NG_PER_MG, 60 * MS_PER_MIN)
    p.advance_to(p.now + 60 * MS_PER_MIN)
    kinds = [e.kind for e in p.events()]
    assert EventKind.BOLUS_COMPLETED in kinds and EventKind.BOLUS_CANCELLED not in kinds


# --- GIP 3.4.6: nothing during the power-on self test ------------------------------------------


def test_commands_refused_during_post() -> None:
    p = Pump.create(ProfileId.SYNCHROMED_II_20, serial=5, now_ms=T0)
    e = rejected(
        p,
        Reason.BUSY,
        p.record_refill,
        withdrawn_nl=0,
        added_nl=NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    assert "self test" in e.detail
    p.advance_to(T0 + p.profile.post_ms)
    p.record_refill(
        withdrawn_nl=0,
        added_nl=NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )


# --- GIP 1.5.1 / 1.5.3 / 1.5.4: reservoir time computed before start, at each change and bolus -


def test_alarm_date_recomputed_at_rate_change_and_bolus() -> None:
    p = morphine_pump()
    d1 = p.status().low_reservoir_at_ms
    p.set_continuous_dose(6 * NG_PER_MG)
    d2 = p.status().low_reservoir_at_ms
    assert d1 is not None and d2 is not None and d2 < d1
    p.start_clinician_bolus(1 * NG_PER_MG, 10 * MS_PER_MIN)
    d3 = p.status().low_reservoir_at_ms
    assert d3 is not None and d3 < d2


# --- GIP 1.10.5 / 1.10.7: occlusion stops flow; no catch-up dosing when it clears ---------------


def test_occlusion_stops_flow_without_alarm_and_no_catch_up() -> None:
    p = morphine_pump()
    p.inject(DeliveryInaccuracy(0))
    p.inject(CatheterOcclusion())
    true0 = p.status().true_reservoir_nl
    patient0 = p.status().patient_total_nl
    p.advance_to(p.now + 10 * DAY_MS)
    st = p.status()
    assert st.true_reservoir_nl == true0 and st.patient_total_nl == patient0
    assert st.reservoir_nl == 20 * NL_PER_ML - 1_200_000  # the pump believes it delivered
    assert not p.active_alarms
    p.clear_fault(FaultKind.CATHETER_OCCLUSION)
    p.advance_to(p.now + DAY_MS)
    assert p.status().patient_total_nl - patient0 == 120_000  # one day's rate, nothing more


def test_occlusion_found_at_refill_as_under_delivery() -> None:
    p = morphine_pump()
    p.inject(DeliveryInaccuracy(0))
    p.inject(CatheterOcclusion())
    p.advance_to(p.now + 30 * DAY_MS)
    r = p.record_refill(
        withdrawn_nl=p.status().true_reservoir_nl,
        added_nl=20 * NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=25 * NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    assert r.discrepancy_nl == 3_600_000 and r.delivery_ratio_ppm == 0 and r.beyond_limits


# --- GIP 1.8.1: reverse delivery impossible ------------------------------------------------------


def test_negative_doses_and_volumes_are_refused() -> None:
    p = morphine_pump()
    rejected(p, Reason.INVALID_VALUE, p.set_continuous_dose, -1)
    rejected(p, Reason.INVALID_VALUE, p.set_schedule, [(0, -5), (60, 3 * NG_PER_MG)])
    rejected(p, Reason.INVALID_VALUE, p.start_clinician_bolus, -1, 10 * MS_PER_MIN)
    p.set_schedule([(0, 0), (60, 3 * NG_PER_MG)])  # a zero step is allowed


# --- GIP 4.1.x: every user event and fault logged, timestamped ---------------------------------


def test_every_command_and_fault_is_logged_with_time() -> None:
    p = morphine_pump()
    p.advance_to(p.now + 1000)
    seq = p.inject(MotorStall())
    ev = p.events(seq, 1)[0]
    assert ev.kind is EventKind.FAULT and ev.time_ms == p.clock_ms
    kinds = [e.kind for e in p.events()]
    assert kinds[:4] == [
        EventKind.POWER_ON,
        EventKind.DRUG_CHANGED,
        EventKind.REFILL,
        EventKind.PROGRAM_CHANGED,
    ]
    seqs = [e.seq for e in p.events()]
    assert seqs == list(range(1, len(seqs) + 1))


# --- security.md 3.2: patient bolus lockout and cap -------------------------------------------


def enable_ptc(p: Pump, *, lockout_ms: int = 2 * MS_PER_HOUR, max_per_24h: int = 3) -> None:
    p.set_patient_bolus(
        enabled=True,
        dose_ng=100_000,
        duration_ms=10 * MS_PER_MIN,
        lockout_ms=lockout_ms,
        max_per_24h=max_per_24h,
    )


def test_lockout_can_never_be_zero() -> None:
    p = morphine_pump()
    rejected(
        p,
        Reason.INVALID_VALUE,
        p.set_patient_bolus,
        enabled=True,
        dose_ng=100_000,
        duration_ms=10 * MS_PER_MIN,
        lockout_ms=0,
        max_per_24h=3,
    )
    enable_ptc(p)


def test_request_inside_lockout_refused_logged_never_queued() -> None:
    p = morphine_pump()
    enable_ptc(p)
    g = p.request_patient_bolus()
    p.advance_to(p.now + MS_PER_HOUR)
    e = rejected(p, Reason.BOLUS_LOCKOUT, p.request_patient_bolus)
    assert "lockout" in e.detail
    assert p.events()[-1].b == MS_PER_HOUR  # the wait, logged
    p.advance_to(p.now + MS_PER_HOUR)  # lockout over: nothing was queued meanwhile
    starts = [e for e in p.events() if e.kind is EventKind.BOLUS_STARTED]
    assert len(starts) == 1
    g2 = p.request_patient_bolus()
    assert g2.lockout_ends_at_ms == g.lockout_ends_at_ms + 2 * MS_PER_HOUR


def test_request_over_the_24h_cap_refused() -> None:
    p = morphine_pump()
    enable_ptc(p, lockout_ms=MS_PER_HOUR, max_per_24h=3)
    first = p.now
    for _ in range(3):
        p.request_patient_bolus()
        p.advance_to(p.now + MS_PER_HOUR)
    rejected(p, Reason.BOLUS_CAP_REACHED, p.request_patient_bolus)
    p.advance_to(first + DAY_MS)  # the first leaves the sliding window
    assert p.request_patient_bolus().boluses_left == 0


def test_patient_bolus_disabled_and_drug_not_allowed() -> None:
    p = baclofen_pump()
    rejected(p, Reason.BOLUS_DISABLED, p.request_patient_bolus)
    rejected(
        p,
        Reason.DRUG_NOT_ALLOWED,
        p.set_patient_bolus,
        enabled=True,
        dose_ng=50 * NG_PER_MCG,
        duration_ms=10 * MS_PER_MIN,
        lockout_ms=MS_PER_HOUR,
        max_per_24h=3,
    )


def test_patient_settings_worst_case_checked_against_limits() -> None:
    p = morphine_pump(dose_mg_x10=140)  # 14 mg/day, soft limit 15 mg/day
    rejected(
        p,
        Reason.SOFT_LIMIT_UNCONFIRMED,
        p.set_patient_bolus,
        enabled=True,
        dose_ng=1 * NG_PER_MG,
        duration_ms=10 * MS_PER_MIN,
        lockout_ms=MS_PER_HOUR,
        max_per_24h=2,
    )
    p.set_patient_bolus(
        enabled=True,
        dose_ng=1 * NG_PER_MG,
        duration_ms=10 * MS_PER_MIN,
        lockout_ms=MS_PER_HOUR,
        max_per_24h=2,
        confirm_soft_limit=True,
    )


# --- security.md 3.2: a concentration change forces re-confirmation ---------------------------


def test_concentration_change_at_refill_requires_a_new_program() -> None:
    p = morphine_pump()
    enable_ptc(p)
    p.record_refill(
        withdrawn_nl=p.status().true_reservoir_nl,
        added_nl=20 * NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=10 * NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    st = p.status()
    assert st.mode is Mode.STOPPED and st.awaiting_program
    assert not p.patient_bolus.enabled
    rejected(p, Reason.INVALID_STATE, p.start_clinician_bolus, 100_000, 10 * MS_PER_MIN)
    p.set_continuous_dose(3 * NG_PER_MG)
    assert p.status().basal_rate_nl_per_day == 300_000 and not p.status().awaiting_program


def test_same_concentration_refill_keeps_the_program_running() -> None:
    p = morphine_pump()
    p.record_refill(
        withdrawn_nl=p.status().true_reservoir_nl,
        added_nl=20 * NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=25 * NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    assert p.status().mode is Mode.CONTINUOUS and p.status().delivering


# --- security.md 3.2: a failed command never pauses delivery ------------------------------------


def test_rejected_command_never_pauses_delivery() -> None:
    p = morphine_pump()
    p.inject(DeliveryInaccuracy(0))
    rejected(p, Reason.HARD_LIMIT, p.set_continuous_dose, 100 * NG_PER_MG)
    p.advance_to(p.now + DAY_MS)
    assert p.status().delivering and p.status().patient_total_nl == 120_000


def test_program_version_compare_and_set() -> None:
    p = morphine_pump()
    v = p.program_version
    rejected(
        p,
        Reason.PROGRAM_VERSION_MISMATCH,
        p.set_continuous_dose,
        4 * NG_PER_MG,
        expected_version=v - 1,
    )
    assert p.set_continuous_dose(4 * NG_PER_MG, expected_version=v).program_version == v + 1


def test_insufficient_volume_for_a_bolus() -> None:
    p = morphine_pump()
    p.advance_to(p.now + 160 * DAY_MS)  # 0.8 mL left
    rejected(
        p,
        Reason.INSUFFICIENT_VOLUME,
        p.start_clinician_bolus,
        25 * NG_PER_MG,
        60 * MS_PER_MIN,
        confirm_soft_limit=True,
    )
    p.start_clinician_bolus(10 * NG_PER_MG, 60 * MS_PER_MIN, confirm_soft_limit=True)
