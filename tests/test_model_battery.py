"""Firmware model behaviour: the battery (ERI, EOS, service life, drain, battery faults)."""

from __future__ import annotations

import pytest

from firmware_model import (
    DAY_MS,
    NG_PER_MG,
    YEAR_MS,
    Alarm,
    BatteryState,
    EventKind,
    FaultKind,
    LowBatteryReset,
    PrematureEos,
    PrematureEri,
    Reason,
    Rejected,
)

from .model_helpers import T0, morphine_pump, new_pump

# --- battery ----------------------------------------------------------------------------------


def test_eri_then_eos_90_days_later_then_stopped() -> None:
    p = morphine_pump()
    p.advance_to(p.now + 200 * DAY_MS)  # the reservoir runs dry: idle drain only from here
    eri = p.status().eri_at_ms
    assert eri is not None
    p.advance_to(p.now + (eri - p.clock_ms) - 1)
    assert p.status().battery is BatteryState.OK
    p.advance_to(p.now + 1)
    assert p.status().battery is BatteryState.ELECTIVE_REPLACEMENT
    assert Alarm.ELECTIVE_REPLACEMENT in p.active_alarms
    p.advance_to(p.now + 90 * DAY_MS)
    st = p.status()
    assert st.battery is BatteryState.END_OF_SERVICE and Alarm.END_OF_SERVICE in st.active_alarms
    assert not st.delivering
    with pytest.raises(Rejected) as e:
        p.set_continuous_dose(3 * NG_PER_MG)
    assert e.value.reason is Reason.PUMP_STOPPED


def test_battery_drains_with_delivery_and_telemetry() -> None:
    idle, busy, chatty = new_pump(), morphine_pump(dose_mg_x10=250), new_pump()
    for p in (idle, busy, chatty):
        p.advance_to(T0 + YEAR_MS)
    chatty.note_telemetry(86_400 * 30)  # a month of polling every second
    assert busy.status().battery_remaining_permille < idle.status().battery_remaining_permille
    assert chatty.status().battery_remaining_permille < idle.status().battery_remaining_permille


def test_service_life_hard_stop_at_7_years() -> None:
    p = new_pump()
    p.advance_to(T0 + 7 * YEAR_MS)
    assert p.status().battery is BatteryState.END_OF_SERVICE
    ev = [e for e in p.events() if e.kind is EventKind.BATTERY]
    assert ev[-1].time_ms <= T0 + 7 * YEAR_MS


def test_premature_eri_and_eos_faults() -> None:
    p = morphine_pump()
    p.inject(PrematureEri())
    assert p.status().battery is BatteryState.ELECTIVE_REPLACEMENT
    assert p.status().eos_at_ms == p.clock_ms + 90 * DAY_MS
    p.inject(PrematureEos())
    assert p.status().battery is BatteryState.END_OF_SERVICE and not p.status().delivering


def test_low_battery_reset_forces_safe_rate_until_reprogrammed() -> None:
    p = morphine_pump()
    p.inject(LowBatteryReset())
    st = p.status()
    assert st.basal_rate_nl_per_day == p.profile.safe_rate_nl_per_day and st.safe_mode
    assert Alarm.LOW_BATTERY_RESET in st.active_alarms
    with pytest.raises(Rejected):
        p.clear_fault(FaultKind.LOW_BATTERY_RESET)
    p.set_continuous_dose(3 * NG_PER_MG)
    assert p.status().basal_rate_nl_per_day == 120_000 and not p.active_alarms
