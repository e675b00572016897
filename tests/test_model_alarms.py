"""Firmware model behaviour: alarms (catalogue, priorities and tones, silence and acknowledge,
what clears them)."""

from __future__ import annotations

import pytest

from firmware_model import (
    CATALOGUE,
    DAY_MS,
    MS_PER_HOUR,
    NL_PER_ML,
    Alarm,
    AlarmState,
    ConcentrationUnit,
    Drug,
    EventKind,
    MotorStall,
    Priority,
    Reason,
    Rejected,
    Tone,
)

from .model_helpers import baclofen_pump, morphine_pump

# --- alarms -----------------------------------------------------------------------------------


def test_catalogue_covers_domain_alarms_with_iec_mapping() -> None:
    assert set(CATALOGUE) == set(Alarm)
    for spec in CATALOGUE.values():
        assert spec.tone is (Tone.TWO_TONE if spec.critical else Tone.SINGLE_TONE)
        assert (spec.priority is Priority.HIGH) == spec.critical
    assert CATALOGUE[Alarm.MOTOR_STALL].latching
    assert CATALOGUE[Alarm.EMPTY_RESERVOIR].stops_delivery
    assert not CATALOGUE[Alarm.LOW_RESERVOIR].stops_delivery


def test_only_highest_priority_sounds_and_tones_repeat() -> None:
    p = baclofen_pump()
    p.advance_to(p.now + 72 * DAY_MS)  # LOW_RESERVOIR: single tone hourly
    n = p.tones_sounded
    p.advance_to(p.now + 3 * MS_PER_HOUR)
    last = p.last_tone
    assert p.tones_sounded == n + 3 and last is not None and last == (p.clock_ms, Tone.SINGLE_TONE)
    n = p.tones_sounded
    p.inject(MotorStall())
    views = p.alarms()
    assert [v.alarm for v in views] == [Alarm.MOTOR_STALL, Alarm.LOW_RESERVOIR]
    assert views[0].sounding and not views[1].sounding
    p.advance_to(p.now + MS_PER_HOUR)  # critical every 10 min: 1 + 6 tones, all two-tone
    assert p.tones_sounded == n + 7 and p.last_tone == (p.clock_ms, Tone.TWO_TONE)


def test_silence_is_time_limited_acknowledge_is_not() -> None:
    p = baclofen_pump()
    p.advance_to(p.now + 72 * DAY_MS)
    p.silence_alarms(Alarm.LOW_RESERVOIR, 2 * MS_PER_HOUR)
    n = p.tones_sounded
    p.advance_to(p.now + 2 * MS_PER_HOUR - 1)
    assert p.tones_sounded == n and p.alarms()[0].state is AlarmState.SILENCED
    p.advance_to(p.now + 1)
    assert p.alarms()[0].state is AlarmState.ACTIVE and p.tones_sounded == n + 1
    p.acknowledge_alarms(Alarm.LOW_RESERVOIR)
    p.advance_to(p.now + 5 * MS_PER_HOUR)
    assert p.tones_sounded == n + 1
    assert p.active_alarms == Alarm.LOW_RESERVOIR  # still raised: the cause persists
    with pytest.raises(Rejected) as e:
        p.acknowledge_alarms(Alarm.MOTOR_STALL)
    assert e.value.reason is Reason.INVALID_STATE


def test_refill_clears_reservoir_alarms() -> None:
    p = baclofen_pump()
    p.advance_to(p.now + 81 * DAY_MS)
    assert p.active_alarms == Alarm.LOW_RESERVOIR | Alarm.EMPTY_RESERVOIR
    p.record_refill(
        withdrawn_nl=0,
        added_nl=20 * NL_PER_ML,
        drug=Drug.BACLOFEN,
        conc_ng_per_ml=2_000_000,
        unit=ConcentrationUnit.MCG_PER_ML,
    )
    assert not p.active_alarms and p.status().delivering


def test_lowering_the_threshold_clears_low_reservoir() -> None:
    p = baclofen_pump()
    p.advance_to(p.now + 73 * DAY_MS)
    p.set_alarm_settings(
        low_threshold_nl=NL_PER_ML, critical_repeat_ms=600_000, noncritical_repeat_ms=3_600_000
    )
    assert not p.active_alarms


def test_alarm_test_sounds_without_touching_alarms() -> None:
    p = morphine_pump()
    p.alarm_test(Tone.TWO_TONE)
    assert p.last_tone is not None and p.last_tone[1] is Tone.TWO_TONE
    assert not p.active_alarms and p.events()[-1].kind is EventKind.ALARM_TEST


def test_pump_stopped_over_48h_alarm() -> None:
    p = morphine_pump()
    p.suspend()
    p.advance_to(p.now + 48 * MS_PER_HOUR - 1)
    assert not p.active_alarms
    p.advance_to(p.now + 1)
    assert p.active_alarms == Alarm.PUMP_STOPPED
    p.resume()
    assert not p.active_alarms
