"""`Pump.wire_status()` is `Pump.status()` cut to the STATUS frame's fields: after any sequence of
operations (therapy, boluses, refills, a clinic UTC offset that moves a schedule's day, faults that
raise alarms, patient boluses, end of service) each of its values is the one `status()` has under
the name `WIRE_STATUS_FIELDS` gives it, of the same type."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import firmware_model as fm
from firmware_model._pump import WIRE_STATUS_FIELDS

from .test_status_fast_path import DAY, MIN, STARTS, _apply
from .test_status_fast_path import ops as therapy_ops

FAULTS: list[Any] = [
    fm.MotorStall(),
    fm.MotorStall(recover_after_ms=3 * MIN),
    fm.CatheterOcclusion(),
    fm.PrematureEri(),
    fm.PrematureEos(),
    fm.LowBatteryReset(),
]

ops = st.one_of(
    therapy_ops,
    st.tuples(st.just("fault"), st.sampled_from(range(len(FAULTS)))),
    st.tuples(st.just("offset"), st.integers(-14 * 60, 14 * 60)),
    st.tuples(st.just("schedule"), st.integers(2_400_000, 9_000_000), st.integers(1, 1_439)),
    st.tuples(st.just("patient"), st.booleans(), st.integers(1, 500_000)),
    st.tuples(
        st.just("press"),
    ),
)


def _run(pump: fm.Pump, op: tuple[Any, ...]) -> None:
    kind = op[0]
    try:
        if kind == "fault":
            pump.inject(FAULTS[op[1]])
        elif kind == "offset":
            pump.set_clock(pump.clock_ms, utc_offset_ms=op[1] * MIN, zone="Etc/Test")
        elif kind == "patient":
            pump.set_patient_bolus(
                enabled=op[1],
                dose_ng=op[2],
                duration_ms=10 * MIN,
                lockout_ms=60 * MIN,
                max_per_24h=4,
                confirm_soft_limit=True,
            )
        elif kind == "press":
            pump.request_patient_bolus()
        else:
            _apply(pump, op)
    except fm.Rejected:
        pass


def _check(pump: fm.Pump) -> None:
    got = pump.wire_status()
    full = pump.status()
    want = tuple(getattr(full, name) for name in WIRE_STATUS_FIELDS)
    assert got == want
    assert [type(v) for v in got] == [type(v) for v in want]


def test_the_fields_are_status_fields_in_the_frames_order() -> None:
    names = set(fm.Status.__dataclass_fields__)
    assert set(WIRE_STATUS_FIELDS) <= names and len(set(WIRE_STATUS_FIELDS)) == 20
    assert len(STARTS["morphine"]().wire_status()) == len(WIRE_STATUS_FIELDS)


@settings(max_examples=120, deadline=None)
@given(start=st.sampled_from(sorted(STARTS)), steps=st.lists(ops, max_size=25))
def test_the_wire_status_is_the_status_cut_to_its_fields(
    start: str, steps: list[tuple[Any, ...]]
) -> None:
    pump = STARTS[start]()
    _check(pump)
    for op in steps:
        _run(pump, op)
        _check(pump)


def test_each_profile_with_a_running_schedule_and_bolus() -> None:
    for profile in fm.PROFILES:
        pump = fm.Pump.create(serial=7, profile=profile, now_ms=1_800_000_000_000)
        _check(pump)
        for op in (
            ("refill", 15_000_000),
            ("schedule", 4_000_000, 600),
            ("offset", 330),
            ("offset", -600),  # local time moves into the schedule's other step
            ("bolus", 200_000, 30 * MIN),
            ("advance", 2 * DAY),
            ("fault", 0),
            ("advance", 10 * MIN),
        ):
            _run(pump, op)
            _check(pump)
