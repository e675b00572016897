"""Firmware model behaviour: exactness, time, profiles, snapshots and delivery limits (alarms,
battery and faults: tests/test_model_alarms.py, test_model_battery.py, test_model_faults.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_model import (
    DAY_MS,
    MS_PER_HOUR,
    MS_PER_MIN,
    NG_PER_MG,
    NL_PER_ML,
    PROFILES,
    Alarm,
    ConcentrationUnit,
    Drug,
    EventKind,
    Mode,
    MotorStall,
    ProfileId,
    Pump,
    RateProfile,
    Reason,
    Rejected,
    SnapshotError,
    TimeWentBackwards,
    Tone,
    restore,
    snapshot,
)

from .model_helpers import T0, baclofen_pump, morphine_pump, new_pump

# --- exactness ----------------------------------------------------------------------------------

steps_strategy = st.lists(
    st.tuples(st.integers(1, 1439), st.integers(0, 24_000_000)), min_size=0, max_size=23
).map(lambda xs: [(0, 250_000), *sorted(dict(xs).items())])


@settings(max_examples=200, deadline=None)
@given(steps=steps_strategy, cuts=st.lists(st.integers(0, 30 * DAY_MS), max_size=30))
def test_rate_profile_splitting_never_creates_or_loses_volume(
    steps: list[tuple[int, int]], cuts: list[int]
) -> None:
    prof = RateProfile.steps(steps)
    end = 30 * DAY_MS
    points = sorted({0, end, *cuts})
    carry = total = 0
    for a, b in itertools.pairwise(points):
        got, carry = divmod(carry + prof.integral(a, b), DAY_MS)
        total += got
    exact = sum(
        r * (steps[i + 1][0] * MS_PER_MIN if i + 1 < len(steps) else DAY_MS) - r * m * MS_PER_MIN
        for i, (m, r) in enumerate(steps)
    )  # one day's integral, computed independently
    assert total == exact * 30 // DAY_MS


@settings(max_examples=200, deadline=None)
@given(steps=steps_strategy, start=st.integers(0, 3 * DAY_MS), amount=st.integers(1, 10**15))
def test_rate_profile_reach_is_the_exact_inverse(
    steps: list[tuple[int, int]], start: int, amount: int
) -> None:
    prof = RateProfile.steps(steps)
    x = prof.reach(start, amount)
    assert x is not None
    assert prof.integral(start, x) >= amount
    assert x == start or prof.integral(start, x - 1) < amount


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(1, 20 * DAY_MS), max_size=40))
def test_pump_delivery_independent_of_how_time_is_advanced(cuts: list[int]) -> None:
    a, b = morphine_pump(), morphine_pump()
    a.set_schedule([(0, 2 * NG_PER_MG), (420, 4 * NG_PER_MG), (1320, 2 * NG_PER_MG)])
    b.set_schedule([(0, 2 * NG_PER_MG), (420, 4 * NG_PER_MG), (1320, 2 * NG_PER_MG)])
    t0 = a.now
    for c in sorted(cuts):
        a.advance_to(t0 + c)
    a.advance_to(t0 + 20 * DAY_MS)
    b.advance_to(t0 + 20 * DAY_MS)
    sa, sb = a.status(), b.status()
    assert sa.program_total_nl == sb.program_total_nl
    assert sa.true_reservoir_nl == sb.true_reservoir_nl
    assert sa.patient_dose_ng == sb.patient_dose_ng
    assert a.log_digest() == b.log_digest()


def test_cost_grows_with_events_not_time() -> None:
    p = morphine_pump(ml=40)
    p.set_schedule([(m * 60, (2 + m % 3) * NG_PER_MG) for m in range(24)])
    t0 = p.now
    n = p.advance_to(t0 + 200 * DAY_MS)  # 4800 step boundaries crossed
    assert n < 5  # only real events (none here): schedule steps are integrated, not ticked
    assert p.status().program_total_nl > 0


def test_next_event_time_reports_step_boundaries_and_thresholds() -> None:
    p = baclofen_pump()
    p.set_schedule([(0, 400_000), (7 * 60, 600_000), (22 * 60, 400_000)])
    midnight = p.now - p.clock_ms % DAY_MS
    assert p.next_event_time() == midnight + 7 * MS_PER_HOUR
    p.set_continuous_dose(500_000)
    low = p.status().low_reservoir_at_ms
    assert low is not None and p.next_event_time() == low - p.clock_ms + p.now


def test_time_never_goes_backwards() -> None:
    p = morphine_pump()
    with pytest.raises(TimeWentBackwards):
        p.advance_to(p.now - 1)


def test_same_inputs_same_log_bytes() -> None:
    def run() -> str:
        p = morphine_pump()
        p.set_patient_bolus(
            enabled=True,
            dose_ng=100_000,
            duration_ms=600_000,
            lockout_ms=MS_PER_HOUR,
            max_per_24h=6,
        )
        for day in range(30):
            p.advance_to(T0 + day * DAY_MS + 9 * MS_PER_HOUR)
            with contextlib.suppress(Rejected):  # refusals are logged, deterministically too
                p.request_patient_bolus()
            if day == 10:
                p.inject(MotorStall(recover_after_ms=6 * MS_PER_HOUR))
        p.advance_to(T0 + 200 * DAY_MS)
        return p.log_digest()

    assert run() == run()


# --- profiles ---------------------------------------------------------------------------------


def test_profiles() -> None:
    assert {p.reservoir_nl for p in PROFILES.values()} >= {20 * NL_PER_ML, 40 * NL_PER_ML}
    for pid in (ProfileId.SYNCHROMED_II_20, ProfileId.PROMETRA_II_40):
        assert PROFILES[pid].max_schedule_steps >= 24
    cf = PROFILES[ProfileId.CONSTANT_FLOW]
    assert cf.battery is None and cf.fixed_rate_nl_per_day
    p = new_pump(ProfileId.CONSTANT_FLOW)
    p.record_refill(
        withdrawn_nl=0,
        added_nl=NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    calls: list[Callable[[], object]] = [
        lambda: p.set_continuous_dose(NG_PER_MG),
        lambda: p.set_schedule([(0, 1)]),
        p.suspend,
    ]
    for call in calls:
        with pytest.raises(Rejected) as e:
            call()
        assert e.value.reason is Reason.MODE_NOT_SUPPORTED


def test_schedule_step_count_per_profile() -> None:
    p = morphine_pump()
    steps = [(m * 30, 3 * NG_PER_MG) for m in range(25)]
    with pytest.raises(Rejected):
        p.set_schedule(steps)
    p.set_schedule(steps[:24])


def test_event_log_is_bounded_and_seq_keeps_counting() -> None:
    p = new_pump(ProfileId.SYNCHROMED_II_20)
    cap = p.profile.event_log_capacity
    for _ in range(cap + 600):
        p.alarm_test(Tone.SINGLE_TONE)
    assert len(p.events()) <= cap + cap // 8
    assert p.events()[-1].seq == cap + 601
    assert p.oldest_seq == p.events()[0].seq


# --- snapshots --------------------------------------------------------------------------------


def test_snapshot_restores_an_identical_model_with_the_same_future() -> None:
    p = morphine_pump()
    p.set_patient_bolus(
        enabled=True, dose_ng=100_000, duration_ms=600_000, lockout_ms=MS_PER_HOUR, max_per_24h=6
    )
    p.request_patient_bolus()
    p.inject(MotorStall(recover_after_ms=MS_PER_HOUR))
    p.advance_to(p.now + 123_457)
    data = json.loads(json.dumps(snapshot(p)))
    q = restore(data)
    assert snapshot(q) == snapshot(p)
    for x in (p, q):
        x.advance_to(x.now + 90 * DAY_MS)
        x.set_continuous_dose(2 * NG_PER_MG)
        x.advance_to(x.now + 90 * DAY_MS)
    assert p.log_digest() == q.log_digest()
    assert snapshot(p) == snapshot(q)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(version=99),
        lambda d: d.update(format="other"),
        lambda d: d["state"].pop("calc_nl"),
        lambda d: d["state"].update(calc_nl="12"),
        lambda d: d["state"].update(mode=77),
        lambda d: d["state"].update(extra=1),
        lambda d: d["state"]["faults"].update(stalled=1),
        lambda d: d.pop("library"),
    ],
)
def test_bad_snapshots_are_refused(mutate: Callable[[dict[str, Any]], object]) -> None:
    data = snapshot(morphine_pump())
    mutate(data)
    with pytest.raises(SnapshotError):
        restore(data)


def test_mode_after_single_bolus_persists_through_snapshot() -> None:
    p = morphine_pump()
    p.start_clinician_bolus(100_000, 10 * MS_PER_MIN, then_stop=True)
    q = restore(snapshot(p))
    q.advance_to(q.now + 10 * MS_PER_MIN)
    assert q.status().mode is Mode.STOPPED


def test_create_validates_its_arguments() -> None:
    with pytest.raises(ValueError):
        Pump.create(serial=0, now_ms=T0)
    with pytest.raises(ValueError):
        Pump.create(serial=1, now_ms=T0, accuracy_error_ppm=200_000)
    with pytest.raises(ValueError):
        Pump.create(serial=1, now_ms=T0, implanted_at_ms=T0 + 1)


def test_nothing_is_delivered_below_the_empty_threshold() -> None:
    prof = PROFILES[ProfileId.SYNCHROMED_II_20].with_(empty_threshold_nl=NL_PER_ML)
    p = Pump.create(prof, serial=9, now_ms=T0, accuracy_error_ppm=50_000)
    p.advance_to(T0 + 2_000)
    p.record_refill(
        withdrawn_nl=0,
        added_nl=3 * NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=25 * NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    p.set_continuous_dose(25 * NG_PER_MG, confirm_soft_limit=True)  # 1 mL/day, +5 % true
    p.advance_to(p.now + 3 * DAY_MS)
    st = p.status()
    assert st.true_reservoir_nl == NL_PER_ML  # ran dry at the threshold, not below
    assert st.pumped_total_nl == 2 * NL_PER_ML
    assert st.reservoir_nl == NL_PER_ML and Alarm.EMPTY_RESERVOIR in st.active_alarms
    assert not st.delivering


def test_drug_library_maximum_rate() -> None:
    from firmware_model import DEFAULT_LIBRARY

    lib = dict(DEFAULT_LIBRARY)
    lib[Drug.MORPHINE] = dataclasses.replace(lib[Drug.MORPHINE], max_rate_nl_per_day=500_000)
    p = Pump.create(ProfileId.SYNCHROMED_II_20, serial=9, now_ms=T0, library=lib)
    p.advance_to(T0 + 2_000)
    p.record_refill(
        withdrawn_nl=0,
        added_nl=20 * NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=10 * NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    with pytest.raises(Rejected) as e:
        p.set_continuous_dose(6 * NG_PER_MG)  # 0.6 mL/day
    assert e.value.reason is Reason.RATE_OUT_OF_RANGE and "500000" in e.value.detail
    p.set_continuous_dose(5 * NG_PER_MG)


def test_bridge_is_measured_in_volume_so_a_suspension_extends_it() -> None:
    p = morphine_pump(conc_mg=10, dose_mg_x10=20)
    p.record_refill(
        withdrawn_nl=p.status().true_reservoir_nl,
        added_nl=20 * NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=20 * NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    start = p.now
    p.start_bridge(200_000, 10 * NG_PER_MG, 2 * NG_PER_MG)  # exactly one day at 0.2 mL/day
    p.advance_to(start + DAY_MS // 2)
    p.suspend()
    p.advance_to(p.now + DAY_MS)
    p.resume()
    assert p.bridge_ends_at_ms == p.clock_ms + DAY_MS // 2
    p.advance_to(p.now + DAY_MS // 2)
    assert p.status().mode is Mode.CONTINUOUS


def test_true_reservoir_set_by_a_trainer_shows_at_refill() -> None:
    from firmware_model import Source

    p = morphine_pump()
    p.advance_to(p.now + 10 * DAY_MS)
    calc = p.status().reservoir_nl
    seq = p.set_true_reservoir(calc - 2 * NL_PER_ML)  # a hidden leak, say
    rec = p.events(seq)[0]
    assert (rec.kind, rec.source, rec.a) == (EventKind.CONTROL, Source.CONTROL, 10)
    assert p.status().reservoir_nl == calc  # the pump does not know
    assert p.status().true_reservoir_nl == calc - 2 * NL_PER_ML
    r = p.record_refill(
        withdrawn_nl=p.status().true_reservoir_nl,
        added_nl=20 * NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=25 * NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    assert r.discrepancy_nl == -2 * NL_PER_ML and r.beyond_limits
    p.set_true_reservoir(0)
    p.advance_to(p.now + DAY_MS)
    assert not p.status().delivering  # dry: nothing can flow
    with pytest.raises(ValueError):
        p.set_true_reservoir(21 * NL_PER_ML)
