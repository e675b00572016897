"""The control plane's `state` resource: one pump's whole state, its event log and its live
stream, and `done`, how every other resource answers once it changed the pump."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import firmware_model as fm

from ._control_api import (
    BOOL,
    INT,
    NAMES,
    NUMBER,
    OBJECT,
    STRING,
    Call,
    ControlError,
    Route,
    answer,
    jsonable,
    nullable,
)

if TYPE_CHECKING:
    from ._runtime import Runtime

EVENT = answer(seq=INT, time_ms=INT, kind=STRING, source=STRING, command_id=STRING, a=INT, b=INT)
LINK = answer(drop=NUMBER, duplicate=NUMBER, corrupt=NUMBER, delay_ms=INT, cut=BOOL)
# What the state and the fleet's summaries both say of a pump.
PUMP: dict[str, dict[str, Any]] = {
    "serial": INT,
    "profile": STRING,
    "speed_factor": NUMBER,
    "paused": BOOL,
    "capacity_nl": INT,
    "sessions": INT,
}
STATE = answer(
    **PUMP,
    empty_threshold_nl=INT,
    status=answer(now=INT, clock_ms=INT, mode=STRING, reservoir_nl=INT, active_alarms=NAMES),
    program=OBJECT,
    catheter=answer(
        restriction_ppm=INT, leak_ppm=INT, occluded=BOOL, cap_finding=STRING, drug_free_nl=INT
    ),
    alarms={"type": "array", "items": OBJECT},
    alarm_settings={"type": "array", "items": INT},
    last_tone=nullable({"type": "array", "description": "[model time, tone]"}),
    tones_sounded=INT,
    next_event_at_ms=nullable(INT),
    link=LINK,
    event_seq=INT,
    events={"type": "array", "items": EVENT},
)


def state(rt: Runtime, *, events: int = 20) -> dict[str, Any]:
    dev = rt.device
    dev.advance()
    pump = dev.pump
    st = pump.status()
    off = pump.clock_ms - pump.now
    used, lockout = pump.bolus_window()
    upcoming = pump.next_event_time()
    return {
        "serial": pump.serial,
        "profile": pump.profile.name,
        "speed_factor": dev.clock.speed_milli / 1000,
        "paused": dev.clock.speed_milli == 0,
        "capacity_nl": pump.profile.reservoir_nl,
        "empty_threshold_nl": pump.profile.empty_threshold_nl,
        "status": jsonable(st),
        "program": {
            "version": pump.program_version,
            "dose_ng_per_day": pump.program_dose_ng_per_day,
            "schedule": [list(s) for s in pump.schedule],
            "bolus": jsonable(pump.bolus),
            "bridge_ends_at_ms": pump.bridge_ends_at_ms,
            "patient_bolus": jsonable(pump.patient_bolus),
            "patient_bolus_window": {
                "used_24h": used,
                "lockout_ends_at_ms": lockout + off if lockout else None,
            },
        },
        "catheter": jsonable(pump.catheter()),
        "alarms": [{**jsonable(a), "tone": fm.CATALOGUE[a.alarm].tone.name} for a in pump.alarms()],
        "alarm_settings": list(pump.alarm_settings),
        "last_tone": jsonable(pump.last_tone),
        "tones_sounded": pump.tones_sounded,
        "next_event_at_ms": None if upcoming is None else upcoming + off,
        "link": dataclasses.asdict(rt.impairment),
        "sessions": len(dev.security.sessions),
        "event_seq": pump.event_seq,
        "events": jsonable(pump.events(max(0, pump.event_seq - events + 1)))[-events:]
        if events
        else [],
    }


def done(call: Call, code: int | None = None, b: int = 0) -> dict[str, Any]:
    """A change is made: log it as a CONTROL record (with `code`), commit it, wake the pump's
    links and the console's streams; the answer is the new state without records."""
    rt = call.rt
    dev = rt.device
    if code is not None:
        dev.log_control(code, b)
    failure = dev.flush()
    if failure is not None:
        raise ControlError(409, failure)
    rt.poke()
    call.plane.hub.changed(rt)
    return state(rt, events=0)


async def _get_state(call: Call) -> Any:
    return state(call.rt)


async def _get_events(call: Call) -> Any:
    try:
        cursor = int(call.query.get("cursor", "0"))
        limit = int(call.query.get("limit", "100"))
    except ValueError:
        raise ControlError(400, "cursor and limit must be integers") from None
    if cursor < 0 or not 1 <= limit <= 4096:
        raise ControlError(400, "cursor must be >= 0 and limit 1 .. 4096")
    call.rt.device.advance()
    return jsonable(call.rt.device.pump.events(cursor, limit))


async def _pump_stream(call: Call) -> Any:
    return call.plane.hub.pump_stream(call.rt, call.headers.get("last-event-id"))


STREAM_TOKEN = (("access_token", "the bearer token, for clients that cannot send headers"),)

ROUTES = [
    Route(
        "GET",
        "/v1/pumps/{serial}",
        "The whole pump: true and calculated reservoir, program, alarms, battery, faults, "
        "clock, speed, link impairment and the newest event-log records.",
        _get_state,
        answer=STATE,
    ),
    Route(
        "GET",
        "/v1/pumps/{serial}/events",
        "Event-log records from ?cursor= (default: oldest kept), at most ?limit= (default 100).",
        _get_events,
        answer={"type": "array", "items": EVENT},
        query=(("cursor", "first seq wanted"), ("limit", "at most this many, 1 .. 4096")),
    ),
    Route(
        "GET",
        "/v1/pumps/{serial}/stream",
        "Server-Sent Events: the pump's state (`state`, as GET /v1/pumps/{serial} without "
        "records), new event-log records (`log`, id = newest seq) and samples of reservoir, "
        "rate and dose (`history`), pushed when they change. Last-Event-ID resumes the log.",
        _pump_stream,
        kind="stream",
        query=STREAM_TOKEN,
    ),
]
