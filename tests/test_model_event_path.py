"""The event path's shortcuts change nothing: a pump advanced in long jumps (where advance_to
only asks whether an event comes before the target, issue 18) ends in exactly the state of one
woken at every next_event_time() (which computes each event exactly), with boluses running
across step boundaries and into the low and empty reservoir thresholds."""

from __future__ import annotations

import contextlib

import pytest

from firmware_model import (
    DAY_MS,
    MS_PER_HOUR,
    MS_PER_MIN,
    NG_PER_MG,
    Pump,
    Rejected,
    snapshot,
)

from .model_helpers import morphine_pump

STEPS = [(h * 60, (2 + h % 3) * NG_PER_MG) for h in range(24)]


def _pump(ml: int) -> Pump:
    p = morphine_pump(conc_mg=10, ml=ml)
    p.set_schedule(STEPS)
    p.set_patient_bolus(
        enabled=True,
        dose_ng=NG_PER_MG,
        duration_ms=10 * MS_PER_MIN,
        lockout_ms=3 * MS_PER_HOUR,
        max_per_24h=4,
    )
    return p


def _drive(p: Pump, days: int, *, wake_at_every_event: bool) -> None:
    t0 = p.now
    for day in range(days):
        for hour in (8, 14, 20):
            at = t0 + day * DAY_MS + hour * MS_PER_HOUR
            if wake_at_every_event:
                while (t := p.next_event_time()) is not None and t <= at:
                    p.advance_to(t)
            p.advance_to(at)
            with contextlib.suppress(Rejected):
                p.request_patient_bolus()
    p.advance_to(t0 + days * DAY_MS)


@pytest.mark.parametrize(("ml", "days"), [(20, 60), (40, 100)])
def test_long_jumps_and_every_wake_end_in_the_same_state(ml: int, days: int) -> None:
    # about 3 + 3 mg/day at 10 mg/mL: 20 mL runs low, then empty, in 60 days; 40 mL low in 100
    jumps, wakes = _pump(ml), _pump(ml)
    _drive(jumps, days, wake_at_every_event=False)
    _drive(wakes, days, wake_at_every_event=True)
    assert snapshot(jumps) == snapshot(wakes)
    assert jumps.log_digest() == wakes.log_digest()
    assert jumps.status().active_alarms == wakes.status().active_alarms


def test_a_jump_stops_at_the_event_it_would_cross() -> None:
    p = _pump(20)
    p.request_patient_bolus()
    end = p.now + 10 * MS_PER_MIN
    assert p.next_event_time() is not None
    # one event (the bolus end) inside the jump, none after it for a day
    assert p.advance_to(end + DAY_MS // 2) == 1
    assert p.bolus is None
