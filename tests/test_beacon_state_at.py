"""Pump.beacon_state_at(t): what a beacon at model time t carries, without integrating when
nothing happens by then. It must equal advance_to(t) then beacon_state(), and skipping the
integration must not change anything the model does later."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import firmware_model as fm

from .model_helpers import baclofen_pump, morphine_pump, new_pump

MIN_MS = 60_000
DAY_MS = 86_400_000


def _twins(kind: str) -> tuple[fm.Pump, fm.Pump]:
    builders: dict[str, Callable[[], fm.Pump]] = {
        "idle": new_pump,
        "baclofen": baclofen_pump,
        "morphine": morphine_pump,
    }
    pump = builders[kind]()
    if kind == "morphine":  # a bolus running, so an event (its end) comes soon
        pump.start_clinician_bolus(200_000, 30 * MIN_MS, confirm_soft_limit=True)
    return pump, fm.restore(fm.snapshot(pump))


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["idle", "baclofen", "morphine"]),
    st.lists(
        st.one_of(st.integers(0, 2_000), st.integers(0, 2 * DAY_MS), st.just(400 * DAY_MS)),
        min_size=1,
        max_size=12,
    ),
)
def test_beacon_state_at_is_advance_then_beacon_state(kind: str, steps: list[int]) -> None:
    lazy, eager = _twins(kind)
    t = lazy.now
    for dt in steps:
        t += dt
        lazy.next_event_time()  # as the runtime's clock task asks between beacons
        got = lazy.beacon_state_at(t)
        eager.advance_to(t)
        assert got == eager.beacon_state()
        assert got == (eager.status().clock_ms, *eager.beacon_state()[1:])
    # the pump that skipped integrating ends up in the very same state
    lazy.advance_to(t + 1)
    eager.advance_to(t + 1)
    assert fm.snapshot(lazy) == fm.snapshot(eager)


def test_an_event_due_is_applied_first() -> None:
    pump, _ = _twins("morphine")
    end = pump.next_event_time()
    assert end is not None
    before = pump.beacon_state_at(end - 1)
    assert before[1]  # delivering
    assert pump.now < end - 1  # nothing happened: the model was not moved
    pump.beacon_state_at(end)
    assert pump.now == end  # the bolus end was applied


def test_time_never_goes_back() -> None:
    pump = new_pump()
    with pytest.raises(fm.TimeWentBackwards):
        pump.beacon_state_at(pump.now - 1)
