"""The event path's memos and shortcuts (issue 18) change nothing: a pump driven through random
commands, faults, clock changes and time ends every step in exactly the state, the event log
and the answers of a reference pump that takes none of them (`Pump._reference`: no remembered
integral or next event, every threshold searched, each next event found exactly rather than
only "after the target?", every settle replanned, every bolus window trimmed, the catheter
walked segment by segment, the patient request's checks made by the general helpers).

Also: the records built through the fast constructors are the records the classes build, the
one-expression integral across steps is the difference of cumulatives, and the enum aliases of
the hot paths are the members themselves.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import firmware_model as fm
import firmware_model._members as members
from firmware_model import (
    DAY_MS,
    MS_PER_HOUR,
    MS_PER_MIN,
    NG_PER_MG,
    NL_PER_ML,
    YEAR_MS,
    ConcentrationUnit,
    Drug,
    EventKind,
    FaultKind,
    ProfileId,
    Pump,
    RateProfile,
    Rejected,
    Source,
    snapshot,
)
from firmware_model._state import Event, PatientBolusGranted, new_event, new_grant

from .model_helpers import POST, T0


class ReferencePump(Pump):
    """Takes no shortcut of the event path: each quantity computed from the state."""

    __slots__ = ()
    _reference = True


STEPS = [(h * 60, (2 + h % 3) * NG_PER_MG) for h in range(24)]


def _build(cls: type[Pump], old: bool) -> Pump:
    # old: implanted 7 years less 200 days ago, so ERI and then end of service fall in a run
    implanted = T0 - (7 * YEAR_MS - 200 * DAY_MS) if old else None
    p = cls.create(ProfileId.SYNCHROMED_II_20, serial=7, now_ms=T0, implanted_at_ms=implanted)
    p.advance_to(T0 + POST)
    p.record_refill(
        withdrawn_nl=0,
        added_nl=20 * NL_PER_ML,
        drug=Drug.MORPHINE,
        conc_ng_per_ml=10 * NG_PER_MG,
        unit=ConcentrationUnit.MG_PER_ML,
    )
    p.set_schedule(STEPS)
    p.set_patient_bolus(
        enabled=True,
        dose_ng=NG_PER_MG,
        duration_ms=10 * MS_PER_MIN,
        lockout_ms=3 * MS_PER_HOUR,
        max_per_24h=4,
    )
    return p


Op = tuple[Any, ...]

_durations = st.one_of(
    st.integers(0, 5),
    st.integers(1, 60).map(lambda m: m * MS_PER_MIN + 7),
    st.integers(1, 30).map(lambda h: h * MS_PER_HOUR // 2 - 1),
    st.integers(1, 30).map(lambda h: h * MS_PER_HOUR // 2 - 1),
    st.integers(1, 12).map(lambda d: d * DAY_MS + 13),
    st.integers(1, 90).map(lambda d: d * DAY_MS - 11),
)
_faults = st.sampled_from(
    [
        fm.MotorStall(),
        fm.MotorStall(recover_after_ms=3 * MS_PER_HOUR),
        fm.CatheterOcclusion(),
        fm.CatheterLeak(share_ppm=250_000),
        fm.CatheterKink(restriction_ppm=400_000),
        fm.CatheterGranuloma(end_ppm=600_000, days=5),
        fm.DeliveryInaccuracy(error_ppm=-90_000),
        fm.NoncriticalMemoryError(),
        fm.CriticalMemoryError(),
        fm.LowBatteryReset(),
        fm.PrematureEri(),
    ]
)
_ops: st.SearchStrategy[Op] = st.one_of(
    st.tuples(st.just("advance"), _durations),
    st.tuples(st.just("advance"), _durations),
    st.tuples(st.just("advance"), _durations),
    st.just(("wake",)),
    st.just(("patient",)),
    st.just(("patient",)),
    st.just(("patient",)),
    st.tuples(
        st.just("clinician"),
        st.integers(1, 4).map(lambda mg: mg * NG_PER_MG // 2),
        st.integers(1, 90),
        st.booleans(),
    ),
    st.tuples(st.just("priming"), st.integers(1, 300).map(lambda ul: ul * 1_000)),
    st.just(("cancel",)),
    st.just(("suspend",)),
    st.just(("resume",)),
    st.tuples(st.just("continuous"), st.integers(1, 12).map(lambda h: h * NG_PER_MG // 2)),
    st.just(("schedule",)),
    st.tuples(st.just("bridge"), st.integers(1, 200).map(lambda ul: ul * 1_000)),
    st.tuples(st.just("refill"), st.integers(1, 20), st.sampled_from([10, 10, 20])),
    st.tuples(
        st.just("patient_settings"),
        st.booleans(),
        st.integers(1, 3).map(lambda mg: mg * NG_PER_MG // 2),
        st.integers(1, 30),
        st.integers(1, 8),
    ),
    st.tuples(st.just("clock"), st.integers(-3, 3), st.integers(-10, 14)),
    st.tuples(st.just("fault"), _faults),
    st.tuples(
        st.just("clear"),
        st.sampled_from(
            [
                FaultKind.MOTOR_STALL,
                FaultKind.CATHETER_OCCLUSION,
                FaultKind.CATHETER_LEAK,
                FaultKind.CATHETER_KINK,
                FaultKind.CATHETER_GRANULOMA,
                FaultKind.CRITICAL_MEMORY_ERROR,
            ]
        ),
    ),
    st.just(("ack",)),
    st.tuples(st.just("silence"), st.integers(1, 20).map(lambda m: m * MS_PER_MIN)),
    st.tuples(st.just("telemetry"), st.integers(1, 10_000)),
)


def _apply(p: Pump, op: Op) -> object:
    """One step on one pump; what it answered, a refusal or an error, comparably."""
    name, *args = op
    calls: dict[str, Callable[[], object]] = {
        "advance": lambda: p.advance_to(p.now + args[0]),
        "wake": lambda: None if (t := p.next_event_time()) is None else p.advance_to(t),
        "patient": p.request_patient_bolus,
        "clinician": lambda: p.start_clinician_bolus(
            args[0], args[1] * MS_PER_MIN, then_stop=args[2], confirm_soft_limit=True
        ),
        "priming": lambda: p.start_priming_bolus(args[0]),
        "cancel": p.cancel_bolus,
        "suspend": p.suspend,
        "resume": p.resume,
        "continuous": lambda: p.set_continuous_dose(args[0], confirm_soft_limit=True),
        "schedule": lambda: p.set_schedule(STEPS, confirm_soft_limit=True),
        "bridge": lambda: p.start_bridge(
            dead_volume_nl=args[0],
            previous_conc_ng_per_ml=5 * NG_PER_MG,
            dose_ng_per_day=3 * NG_PER_MG,
            confirm_soft_limit=True,
        ),
        "refill": lambda: p.record_refill(
            withdrawn_nl=p.status().true_reservoir_nl,
            added_nl=args[0] * NL_PER_ML,
            drug=Drug.MORPHINE,
            conc_ng_per_ml=args[1] * NG_PER_MG,
            unit=ConcentrationUnit.MG_PER_ML,
            confirm_soft_limit=True,
        ),
        "patient_settings": lambda: p.set_patient_bolus(
            enabled=args[0],
            dose_ng=args[1],
            duration_ms=args[2] * MS_PER_MIN,
            lockout_ms=args[3] * MS_PER_HOUR,
            max_per_24h=4,
            confirm_soft_limit=True,
        ),
        # a sync: the pump clock moves by whole minutes, the clinic's offset changes
        "clock": lambda: p.set_clock(
            p.clock_ms + args[0] * 17 * MS_PER_MIN,
            utc_offset_ms=args[1] * 60 * MS_PER_MIN,
            zone="Etc/Test",
        ),
        "fault": lambda: p.inject(args[0]),
        "clear": lambda: p.clear_fault(args[0]),
        "ack": lambda: p.acknowledge_alarms(p.active_alarms),
        "silence": lambda: p.silence_alarms(p.active_alarms, args[0]),
        "telemetry": lambda: p.note_telemetry(args[0]),
    }
    try:
        return calls[name]()
    except Rejected as exc:
        return ("rejected", exc.reason, str(exc))
    except (ValueError, fm.ModelError) as exc:
        return ("error", type(exc).__name__, str(exc))


@settings(max_examples=200, deadline=None)
@given(
    old=st.booleans(),
    steps=st.lists(st.tuples(_ops, _durations, st.booleans()), min_size=10, max_size=50),
)
def test_shortcuts_end_every_step_in_the_reference_state(
    old: bool, steps: list[tuple[Op, int, bool]]
) -> None:
    fast, ref = _build(Pump, old), _build(ReferencePump, old)
    assert type(ref) is ReferencePump and ref._reference and not fast._reference
    for i, (op, dt, peek) in enumerate(steps):
        for step in (op, ("advance", dt)):  # each step: a command, then time passes
            got, want = _apply(fast, step), _apply(ref, step)
            assert got == want, (i, step)
            assert fast._s == ref._s, (i, step)  # the whole state, the event log included
        if peek:  # a runtime asking when to wake (it fills the fast pump's next-event memo)
            assert fast.next_event_time() == ref.next_event_time(), i
        assert fast.status() == ref.status(), i
    assert snapshot(fast) == snapshot(ref)
    assert fast.log_digest() == ref.log_digest()
    assert fast.next_event_time() == ref.next_event_time()


def test_the_reference_takes_no_shortcut_and_the_pump_does() -> None:
    """The comparison above means something: the reference never remembers an integral nor a
    next event, and the pump, driven alike, does."""
    fast, ref = _build(Pump, False), _build(ReferencePump, False)
    for p in (fast, ref):
        for day in range(3):
            for hour in (8, 14, 20):
                p.advance_to(T0 + day * DAY_MS + hour * MS_PER_HOUR)
                p.request_patient_bolus()
            p.next_event_time()
    assert ref._im_prof is None and ref._next is None
    assert fast._im_prof is not None and fast._next is not None
    assert fast._s == ref._s


_kinds = st.sampled_from(list(EventKind))
_sources = st.sampled_from(list(Source))
_i64 = st.integers(-(1 << 63), (1 << 63) - 1)


@given(
    seq=st.integers(1, (1 << 32) - 1),
    time_ms=_i64,
    kind=_kinds,
    source=_sources,
    command_id=st.binary(min_size=16, max_size=16),
    a=_i64,
    b=_i64,
)
def test_a_log_record_built_fast_is_the_record(
    seq: int, time_ms: int, kind: EventKind, source: Source, command_id: bytes, a: int, b: int
) -> None:
    fast = new_event(seq, time_ms, kind, source, command_id, a, b)
    want = Event(seq, time_ms, kind, source, command_id, a, b)
    _same_record(fast, want)
    assert fast.pack() == want.pack()


@given(
    fields=st.tuples(*(st.integers(-(1 << 40), 1 << 40) for _ in range(6))),
    refill=st.none() | st.integers(0, 1 << 53),
)
def test_a_grant_built_fast_is_the_grant(
    fields: tuple[int, int, int, int, int, int], refill: int | None
) -> None:
    _same_record(new_grant(*fields, refill), PatientBolusGranted(*fields, refill))


def _same_record(fast: object, want: object) -> None:
    assert type(fast) is type(want)
    assert fast == want and hash(fast) == hash(want) and repr(fast) == repr(want)
    assert dataclasses.asdict(fast) == dataclasses.asdict(want)  # type: ignore[call-overload]
    assert pickle.loads(pickle.dumps(fast)) == want
    assert copy.deepcopy(fast) == want and copy.copy(fast) == want
    name = dataclasses.fields(want)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(fast, name, 0)
    with pytest.raises(AttributeError):
        fast.__dict__  # noqa: B018 - slots only, as the class's own instances


_schedules = st.lists(
    st.tuples(st.integers(1, 1439), st.integers(0, 5_000_000)), min_size=0, max_size=12
).map(lambda xs: [(0, 1234), *sorted(dict(xs).items())])
_clocks = st.integers(-(10 * YEAR_MS), 80 * YEAR_MS)


@given(
    steps=_schedules,
    c0=_clocks,
    span=st.one_of(st.integers(0, 3 * MS_PER_HOUR), st.integers(0, 40 * DAY_MS)),
)
def test_the_integral_is_the_difference_of_cumulatives(
    steps: list[tuple[int, int]], c0: int, span: int
) -> None:
    prof = RateProfile.steps(steps)
    c1 = c0 + span
    assert prof.integral(c0, c1) == prof.cumulative(c1) - prof.cumulative(c0)


@given(steps=_schedules, c0=st.integers(0, 2 * DAY_MS), minutes=st.integers(0, 3 * 1440))
def test_the_integral_is_the_sum_of_its_minutes(
    steps: list[tuple[int, int]], c0: int, minutes: int
) -> None:
    """Against the rate of each whole minute (c0 on a minute boundary): no shared formula."""
    prof = RateProfile.steps(steps)
    start = c0 - c0 % MS_PER_MIN
    rate = dict(steps)
    total = 0
    current = 0
    for m in range(start // MS_PER_MIN, start // MS_PER_MIN + minutes):
        minute_of_day = m % 1440
        current = max((k for k in rate if k <= minute_of_day), default=0)
        total += rate[current] * MS_PER_MIN
    assert prof.integral(start, start + minutes * MS_PER_MIN) == total


@pytest.mark.parametrize("name", [n for n in dir(members) if n.isupper()])
def test_each_hot_path_alias_is_its_member(name: str) -> None:
    member = getattr(members, name)
    assert isinstance(member, enum.Enum)
    assert getattr(type(member), member.name) is member
