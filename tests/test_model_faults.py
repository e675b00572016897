"""Firmware model behaviour: injected faults (motor stall, MRI per profile, pocket fill, leak,
delivery inaccuracy, memory errors)."""

from __future__ import annotations

import pytest

from firmware_model import (
    DAY_MS,
    MS_PER_HOUR,
    NG_PER_MG,
    NL_PER_ML,
    Alarm,
    CatheterLeak,
    ConcentrationUnit,
    CriticalMemoryError,
    DeliveryInaccuracy,
    Drug,
    EventKind,
    FaultKind,
    LowBatteryReset,
    MotorStall,
    MriExposure,
    NoncriticalMemoryError,
    PocketFill,
    PrematureEri,
    ProfileId,
    Reason,
    Rejected,
)

from .model_helpers import morphine_pump, new_pump

# --- faults -----------------------------------------------------------------------------------


def test_motor_stall_with_recovery_is_logged_and_latched() -> None:
    p = morphine_pump()
    p.inject(MotorStall(recover_after_ms=3 * MS_PER_HOUR))
    assert not p.status().delivering and Alarm.MOTOR_STALL in p.active_alarms
    p.advance_to(p.now + 3 * MS_PER_HOUR)
    assert p.status().delivering
    rec = [e for e in p.events() if e.kind is EventKind.MOTOR_RECOVERED]
    assert len(rec) == 1 and rec[0].a == 3 * MS_PER_HOUR
    assert p.active_alarms == Alarm.MOTOR_STALL and not p.alarms()[0].condition
    p.acknowledge_alarms(Alarm.MOTOR_STALL)
    assert not p.active_alarms


def test_mri_synchromed_stall_with_delayed_recovery() -> None:
    p = morphine_pump()
    p.inject(MriExposure(duration_ms=MS_PER_HOUR, recovery_delay_ms=4 * MS_PER_HOUR))
    p.advance_to(p.now + 5 * MS_PER_HOUR - 1)
    assert FaultKind.MOTOR_STALL in p.active_faults()
    p.advance_to(p.now + 1)
    assert FaultKind.MOTOR_STALL not in p.active_faults()


def test_mri_prometra_valve_closes_until_reset() -> None:
    p = morphine_pump(profile=ProfileId.PROMETRA_II_20)
    true0 = p.status().true_reservoir_nl
    p.inject(MriExposure())
    assert p.status().true_reservoir_nl == true0 - 10_000  # <= 10 uL passes (domain #30)
    assert Alarm.FLOW_VALVE_CLOSED in p.active_alarms
    p.advance_to(p.now + 5 * DAY_MS)
    assert p.status().true_reservoir_nl == true0 - 10_000
    p.clear_fault(FaultKind.FLOW_VALVE_CLOSED)
    assert not p.active_alarms & Alarm.FLOW_VALVE_CLOSED and p.status().delivering


def test_mri_constant_flow_unaffected() -> None:
    p = new_pump(ProfileId.CONSTANT_FLOW)
    p.inject(MriExposure())
    assert not p.active_faults()
    assert p.events()[-1].kind is EventKind.MRI_EXPOSURE


def test_pocket_fill_shows_as_discrepancy_at_the_next_refill() -> None:
    p = morphine_pump()
    p.inject(DeliveryInaccuracy(0))
    p.inject(PocketFill(3 * NL_PER_ML))
    p.advance_to(p.now + 10 * DAY_MS)
    p.record_refill(
        withdrawn_nl=p.status().true_reservoir_nl,
        added_nl=20 * NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=25 * NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    assert p.status().true_reservoir_nl == 17 * NL_PER_ML
    assert p.status().reservoir_nl == 20 * NL_PER_ML
    p.advance_to(p.now + 10 * DAY_MS)
    r = p.record_refill(
        withdrawn_nl=p.status().true_reservoir_nl,
        added_nl=20 * NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=25 * NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    assert r.discrepancy_nl == -3 * NL_PER_ML and r.beyond_limits


def test_leak_reduces_what_reaches_the_patient_only() -> None:
    p = morphine_pump()
    p.inject(DeliveryInaccuracy(0))
    p.advance_to(p.now + 10 * DAY_MS)  # fill the catheter with drug
    p.inject(CatheterLeak(share_ppm=250_000))
    before = p.status()
    p.advance_to(p.now + 10 * DAY_MS)
    after = p.status()
    assert after.pumped_total_nl - before.pumped_total_nl == 1_200_000
    assert after.patient_total_nl - before.patient_total_nl == 900_000


def test_delivery_inaccuracy_bounded_by_the_hazard_limit() -> None:
    p = morphine_pump()
    with pytest.raises(Rejected) as e:
        p.inject(DeliveryInaccuracy(145_001))
    assert e.value.reason is Reason.INVALID_VALUE
    p.inject(DeliveryInaccuracy(145_000))
    p.advance_to(p.now + 10 * DAY_MS)
    st = p.status()
    assert st.pumped_total_nl == 1_200_000 * 1145 // 1000


def test_memory_errors() -> None:
    p = morphine_pump()
    p.inject(NoncriticalMemoryError())
    assert p.status().delivering
    p.acknowledge_alarms(Alarm.NONCRITICAL_MEMORY_ERROR)
    assert not p.active_alarms
    p.inject(CriticalMemoryError())
    assert not p.status().delivering
    p.set_continuous_dose(3 * NG_PER_MG)
    assert p.status().delivering and not p.active_alarms


def test_faults_not_on_this_profile_are_refused() -> None:
    p = new_pump(ProfileId.CONSTANT_FLOW)
    for fault in (MotorStall(), PrematureEri(), LowBatteryReset()):
        with pytest.raises(Rejected) as e:
            p.inject(fault)
        assert e.value.reason is Reason.MODE_NOT_SUPPORTED
