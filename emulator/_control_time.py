"""The control plane's `time` resource: the speed of pump time, pause and resume, and jumps
of pump time (by a duration or to the next event of a kind)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import firmware_model as fm

from ._clock import MAX_SPEED_MILLI
from ._control_api import MAX_ADVANCE_MS, Call, ControlError, Route, integer, obj
from ._control_state import STATE, done
from ._device import ControlCode

if TYPE_CHECKING:
    from ._runtime import Runtime

MAX_STEPS = 1_000_000  # events stepped through looking for the next alarm
UNTIL = ("next-event", "next-alarm", "low-reservoir", "empty", "replacement-due")


async def _put_speed(call: Call) -> Any:
    milli = round(call.body["factor"] * 1000)
    if not 0 <= milli <= MAX_SPEED_MILLI:
        raise ControlError(400, "factor must be 0 .. 1000000")
    call.rt.set_speed(milli)
    return done(call, ControlCode.SPEED, milli)


async def _pause(call: Call) -> Any:
    rt = call.rt
    speed = rt.device.clock.speed_milli
    if speed == 0:
        raise ControlError(409, "pump time is already paused")
    call.plane.paused_speed[rt.serial] = speed
    rt.set_speed(0)
    return done(call, ControlCode.SPEED, 0)


async def _resume(call: Call) -> Any:
    rt = call.rt
    if rt.device.clock.speed_milli != 0:
        raise ControlError(409, "pump time is not paused")
    speed = call.plane.paused_speed.pop(rt.serial, 1000)
    rt.set_speed(speed)
    return done(call, ControlCode.SPEED, speed)


def _target(rt: Runtime, until: str) -> int:
    """Model time of the next event of a kind (ControlError 409 if none comes)."""
    pump = rt.device.pump
    off = pump.clock_ms - pump.now
    st = pump.status()
    if until == "next-event":
        t = pump.next_event_time()
    elif until == "low-reservoir":
        t = None if st.low_reservoir_at_ms is None else st.low_reservoir_at_ms - off
    elif until == "empty":
        t = None if st.empty_at_ms is None else st.empty_at_ms - off
    elif until == "replacement-due":
        t = None if st.eri_at_ms is None else st.eri_at_ms - off
    else:
        t = None
    if t is None:
        raise ControlError(409, f"no {until} is coming: nothing to advance to")
    return max(t, pump.now)


def _next_alarm(rt: Runtime, start: int) -> int:
    """Step a copy of the model event by event to the next newly raised alarm."""
    probe = fm.restore(fm.snapshot(rt.device.pump))
    before = probe.active_alarms
    for _ in range(MAX_STEPS):
        t = probe.next_event_time()
        if t is None or t - start > MAX_ADVANCE_MS:
            break
        probe.advance_to(max(t, probe.now))
        if probe.active_alarms & ~before:
            return probe.now
        before = probe.active_alarms
        if t <= probe.now:  # an event due now that changed nothing: step past it
            probe.advance_to(probe.now + 1)
    raise ControlError(409, "no alarm is coming within 10 years")


async def _advance(call: Call) -> Any:
    rt, body = call.rt, call.body
    dev = rt.device
    dev.advance()
    start = dev.pump.now
    if "ms" in body:
        target = start + body["ms"]
    elif body["until"] == "next-alarm":
        target = _next_alarm(rt, start)
    else:
        target = _target(rt, body["until"])
    if target - start > MAX_ADVANCE_MS:
        raise ControlError(409, "that is more than 10 years ahead")
    call.plane.hub.fill_history(rt, target)
    dev.clock.jump_to(target)
    dev.advance()
    return done(call, ControlCode.ADVANCE, dev.pump.now - start)


ROUTES = [
    Route(
        "PUT",
        "/v1/pumps/{serial}/speed",
        "Set the speed factor (0 pauses). Pump time never jumps when the speed changes.",
        _put_speed,
        obj(["factor"], factor={"type": "number", "minimum": 0, "maximum": 1_000_000}),
        STATE,
    ),
    Route(
        "POST", "/v1/pumps/{serial}/pause", "Stop pump time (speed factor 0).", _pause, None, STATE
    ),
    Route(
        "POST",
        "/v1/pumps/{serial}/resume",
        "Restart pump time at the speed before the pause.",
        _resume,
        None,
        STATE,
    ),
    Route(
        "POST",
        "/v1/pumps/{serial}/advance",
        "Move pump time forward by `ms`, or `until` the next event of a kind. Delivery, "
        "alarms and battery follow exactly as if the time had passed.",
        _advance,
        {
            "type": "object",
            "properties": {
                "ms": integer(1, MAX_ADVANCE_MS, "how far"),
                "until": {"type": "string", "enum": list(UNTIL)},
            },
            "additionalProperties": False,
            "minProperties": 1,
            "maxProperties": 1,
        },
        STATE,
    ),
]
