"""The cheaper STATUS path gives exactly what the plain one gives: `frozen_maker` builds the same
`Status` the dataclass call builds, the remembered ERI forecast is returned only when it is the
answer again (a pump restored from its snapshot, which remembers nothing, answers the same after
any sequence of operations, and so does the forecast with any wrong hint), and the emulator's
STATUS answer equals the message built field by field with keywords."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import firmware_model as fm
import protocol as p
from emulator._device_reads import alarm_set, at, u32
from emulator._device_reads import status as status_answer
from firmware_model._fast import frozen_maker
from firmware_model._pump import _make_status

from .model_helpers import baclofen_pump, morphine_pump, new_pump

# --- frozen_maker ---------------------------------------------------------------------------


def _status_values() -> st.SearchStrategy[dict[str, Any]]:
    anything = st.one_of(st.integers(), st.none(), st.booleans(), st.text(max_size=3))
    names = [f.name for f in dataclasses.fields(fm.Status)]
    return st.fixed_dictionaries(
        dict.fromkeys(names[:-2], anything),
        optional={"utc_offset_ms": st.integers(), "zone": st.text(max_size=5)},
    )


@given(_status_values())
def test_the_maker_builds_what_the_dataclass_builds(kw: dict[str, Any]) -> None:
    got, want = _make_status(**kw), fm.Status(**kw)
    assert type(got) is fm.Status
    assert got == want and hash(got) == hash(want) and repr(got) == repr(want)
    assert dataclasses.astuple(got) == dataclasses.astuple(want)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.now = 1  # type: ignore[misc]


def test_the_maker_takes_the_same_arguments() -> None:
    names = [f.name for f in dataclasses.fields(fm.Status)]
    kw: dict[str, Any] = {n: i for i, n in enumerate(names[:-2])}
    assert _make_status(**kw) == fm.Status(**kw)  # the defaults
    assert _make_status(*kw.values()) == fm.Status(*kw.values())  # positional
    with pytest.raises(TypeError):
        _make_status(**{**kw, "bogus": 1})
    with pytest.raises(TypeError):
        _make_status(**{k: v for k, v in kw.items() if k != "now"})


def test_the_maker_refuses_what_it_cannot_copy() -> None:
    @dataclasses.dataclass(slots=True)
    class Mutable:
        a: int

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    for cls in (Mutable, NoSlots, Checked, Factory):
        with pytest.raises(TypeError):
            frozen_maker(cls)


# --- the remembered ERI forecast ------------------------------------------------------------

MIN = 60_000
DAY = 1_440 * MIN

ops = st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 40 * DAY)),
    st.tuples(st.just("tick"), st.integers(1, 5_000)),
    st.tuples(st.just("dose"), st.integers(0, 20_000_000)),
    st.tuples(st.just("schedule"), st.integers(1, 5_000_000), st.integers(1, 1_439)),
    st.tuples(st.just("bolus"), st.integers(1, 2_000_000), st.integers(MIN, 6 * 60 * MIN)),
    st.tuples(st.just("suspend"), st.booleans()),
    st.tuples(st.just("telemetry"), st.integers(1, 100_000)),
    st.tuples(st.just("refill"), st.integers(0, 20_000_000)),
)


def _apply(pump: fm.Pump, op: tuple[Any, ...]) -> None:
    kind, *args = op
    try:
        if kind in {"advance", "tick"}:
            pump.advance_to(pump.now + args[0])
        elif kind == "dose":
            pump.set_continuous_dose(args[0], confirm_soft_limit=True)
        elif kind == "schedule":
            dose, minute = args
            pump.set_schedule([(0, dose), (minute, dose // 2 + 1)], confirm_soft_limit=True)
        elif kind == "bolus":
            pump.start_clinician_bolus(args[0], args[1], confirm_soft_limit=True)
        elif kind == "suspend":
            pump.suspend() if args[0] else pump.resume()
        elif kind == "telemetry":
            pump.note_telemetry(args[0])
        elif kind == "refill":
            st_ = pump.status()
            pump.record_refill(
                withdrawn_nl=st_.reservoir_nl,
                added_nl=args[0],
                drug=st_.drug if st_.drug is not fm.Drug.NONE else fm.Drug.MORPHINE,
                conc_ng_per_ml=st_.conc_ng_per_ml or 25 * fm.NG_PER_MG,
                unit=fm.ConcentrationUnit.MG_PER_ML,
            )
    except fm.Rejected:
        pass


STARTS: dict[str, Callable[[], fm.Pump]] = {
    "new": new_pump,
    "morphine": morphine_pump,
    "baclofen": baclofen_pump,
}


def _fresh(pump: fm.Pump) -> fm.Pump:
    """The same pump with nothing remembered (a restore builds a new one from its state)."""
    copy = fm.restore(fm.snapshot(pump))
    assert copy._eri_hint == -1
    return copy


@settings(max_examples=60, deadline=None)
@given(start=st.sampled_from(["new", "morphine", "baclofen"]), steps=st.lists(ops, max_size=25))
def test_a_pump_that_remembers_answers_like_one_that_does_not(
    start: str, steps: list[tuple[Any, ...]]
) -> None:
    pump = STARTS[start]()
    for op in steps:
        _apply(pump, op)
        assert pump.status() == _fresh(pump).status()
        assert pump.status() == _fresh(pump).status()  # the second with the hint just kept


@settings(max_examples=200, deadline=None)
@given(
    dose=st.integers(1, 20_000_000),
    gap=st.integers(0, 400 * DAY),
    hint_shift=st.integers(-3, 3) | st.integers(-(10**12), 10**12),
)
def test_a_wrong_hint_never_changes_the_forecast(dose: int, gap: int, hint_shift: int) -> None:
    pump = morphine_pump()
    _apply(pump, ("dose", dose))  # or the pump's own 3 mg/day, if refused
    pump.advance_to(pump.now + gap)
    bat = pump.profile.battery
    assert bat is not None
    s = pump._s
    need, end = bat.eri_used_bu - s.battery_used_bu, pump._service_end()
    want = pump._forecast_reach(need, end)
    base = want if want is not None else pump.now
    for hint in (base + hint_shift, base, base - 1, base + 1, -1, pump.now, end, end + 1):
        assert pump._forecast_reach(need, end, hint) == want


def test_the_hint_is_used_and_stays_right_as_the_clock_moves() -> None:
    pump = morphine_pump()
    first = pump.status().eri_at_ms
    assert pump._eri_hint > pump.now  # remembered
    for _ in range(50):
        pump.advance_to(pump.now + 997)
        assert pump.status().eri_at_ms == _fresh(pump).status().eri_at_ms
    assert first is not None


# --- the emulator's STATUS answer -------------------------------------------------------------


def _by_keywords(pump: fm.Pump) -> p.Status:
    """The STATUS answer as it was built before `_of`: keyword by keyword."""
    st_ = pump.status()
    return p.Status(
        pump_time_ms=at(st_.clock_ms),
        program_version=st_.program_version,
        event_seq=st_.event_seq,
        mode=st_.mode,  # type: ignore[arg-type]
        bolus=st_.bolus,  # type: ignore[arg-type]
        suspended=st_.suspended,
        current_rate_nl_per_day=min(st_.current_rate_nl_per_day, 4_000_000_000),
        daily_dose_ng=u32(st_.daily_dose_ng),
        drug=st_.drug,  # type: ignore[arg-type]
        concentration_ng_per_ml=st_.conc_ng_per_ml,
        concentration_unit=st_.conc_unit,  # type: ignore[arg-type]
        reservoir_volume_nl=st_.reservoir_nl,
        low_reservoir_threshold_nl=st_.low_threshold_nl,
        active_alarms=alarm_set(st_.active_alarms),
        battery=st_.battery,  # type: ignore[arg-type]
        battery_remaining_permille=st_.battery_remaining_permille,
        low_reservoir_at_ms=at(st_.low_reservoir_at_ms),
        empty_at_ms=at(st_.empty_at_ms),
        last_refill_at_ms=at(st_.last_refill_at_ms),
        replacement_due_at_ms=at(st_.eri_at_ms),
    )


class _Dev:
    def __init__(self, pump: fm.Pump) -> None:
        self.pump = pump


@settings(max_examples=60, deadline=None)
@given(start=st.sampled_from(["new", "morphine", "baclofen"]), steps=st.lists(ops, max_size=15))
def test_the_status_answer_is_the_keyword_built_message(
    start: str, steps: list[tuple[Any, ...]]
) -> None:
    pump = STARTS[start]()
    for op in steps:
        _apply(pump, op)
        got = status_answer(_Dev(pump), p.GetStatus())  # type: ignore[arg-type]
        want = _by_keywords(pump)
        assert got == want
        assert [type(getattr(got, f.name)) for f in p.Status.FIELDS] == [
            type(getattr(want, f.name)) for f in p.Status.FIELDS
        ]
        assert got._encode() == want._encode()
