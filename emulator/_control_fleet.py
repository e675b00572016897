"""The control plane's `fleet` resource: the pumps this emulator runs at a glance, the fixed
catalogue a client shows, and the fleet's live stream."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import firmware_model as fm

from ._clock import MAX_SPEED_MILLI
from ._control_api import (
    BOOL,
    INT,
    MAX_ADVANCE_MS,
    NAMES,
    NUMBER,
    OBJECT,
    STRING,
    Call,
    Route,
    answer,
    by_name,
    jsonable,
    nullable,
)
from ._control_faults import FAULT_PARAMS, FAULTS, IRREVERSIBLE_FAULTS
from ._control_state import PUMP, STREAM_TOKEN
from ._control_time import UNTIL

if TYPE_CHECKING:
    from ._runtime import Runtime

SUMMARY = answer(
    **PUMP,
    active_alarms=NAMES,
    clock_ms=INT,
    mode=STRING,
    drug=STRING,
    reservoir_nl=INT,
    low_reservoir_at_ms=nullable(INT),
    days_to_refill=nullable(NUMBER),
    top_alarm=nullable(answer(alarm=STRING, critical=BOOL, priority=STRING, state=STRING)),
    battery=STRING,
    faults=NAMES,
)
ALARM = answer(
    critical=BOOL,
    priority=STRING,
    tone=STRING,
    stops_delivery=BOOL,
    latching=BOOL,
    cleared_by=STRING,
    description=STRING,
)
CATALOGUE = answer(
    faults=by_name(answer(description=STRING, params=by_name(OBJECT), irreversible=BOOL)),
    alarms=by_name(ALARM),
    until=NAMES,
    max_speed_factor=INT,
    max_advance_ms=INT,
    scenarios={"type": "array", "items": answer(name=STRING, title=STRING)},
    event_categories=by_name(STRING),
)


def summary(rt: Runtime) -> dict[str, Any]:
    """A pump at a glance (GET /v1/pumps and the fleet stream)."""
    dev = rt.device
    dev.advance()
    pump = dev.pump
    st = pump.status()
    alarms = pump.alarms()
    top = alarms[0] if alarms else None
    due = st.low_reservoir_at_ms
    return {
        "serial": pump.serial,
        "profile": pump.profile.name,
        "speed_factor": dev.clock.speed_milli / 1000,
        "active_alarms": jsonable(pump.active_alarms),
        "paused": dev.clock.speed_milli == 0,
        "clock_ms": st.clock_ms,
        "mode": st.mode.name,
        "drug": st.drug.name,
        "reservoir_nl": st.reservoir_nl,
        "capacity_nl": pump.profile.reservoir_nl,
        "low_reservoir_at_ms": due,
        "days_to_refill": None if due is None else round((due - st.clock_ms) / fm.DAY_MS, 1),
        "top_alarm": None
        if top is None
        else {
            "alarm": top.alarm.name,
            "critical": top.critical,
            "priority": top.priority.name,
            "state": top.state.name,
        },
        "battery": st.battery.name,
        "faults": jsonable(st.faults),
        "sessions": len(dev.security.sessions),
    }


def catalogue() -> dict[str, Any]:
    """GET /v1/catalogue: what a client needs to offer the actions and explain the state."""
    from ._console import EVENT_CATEGORIES
    from ._scenario import builtin_scenarios, load_scenario

    faults = {}
    for kind, cls in sorted(FAULTS.items()):
        params = {}
        for f in dataclasses.fields(cls):
            default = None if f.default is dataclasses.MISSING else f.default
            params[f.name] = {**FAULT_PARAMS[f.name], "default": default}
        faults[kind] = {
            "description": " ".join((cls.__doc__ or "").replace("`", "").split()),
            "params": params,
            "irreversible": kind in IRREVERSIBLE_FAULTS,
        }
    alarms = {
        spec.alarm.name: {
            "critical": spec.critical,
            "priority": spec.priority.name,
            "tone": spec.tone.name,
            "stops_delivery": spec.stops_delivery,
            "latching": spec.latching,
            "cleared_by": spec.cleared_by.value,
            "description": spec.description,
        }
        for spec in fm.CATALOGUE.values()
    }
    return {
        "faults": faults,
        "alarms": alarms,
        "until": list(UNTIL),
        "max_speed_factor": MAX_SPEED_MILLI // 1000,
        "max_advance_ms": MAX_ADVANCE_MS,
        "scenarios": [{"name": n, "title": load_scenario(n).name} for n in builtin_scenarios()],
        "event_categories": EVENT_CATEGORIES,
    }


async def _pumps(call: Call) -> Any:
    return [summary(rt) for rt in call.plane.runtimes.values()]


async def _catalogue(call: Call) -> Any:
    return catalogue()


async def _fleet_stream(call: Call) -> Any:
    return call.plane.hub.fleet_stream()


ROUTES = [
    Route(
        "GET",
        "/v1/pumps",
        "The pumps this emulator runs.",
        _pumps,
        answer={"type": "array", "items": SUMMARY},
    ),
    Route(
        "GET",
        "/v1/catalogue",
        "Fixed facts a client shows: fault kinds with their parameters, the alarm catalogue "
        "(priority, tone, what clears it), event-log kinds, training scenarios, limits.",
        _catalogue,
        answer=CATALOGUE,
    ),
    Route(
        "GET",
        "/v1/stream",
        "Server-Sent Events: every pump's summary (`pumps`), then the summaries that changed. "
        "The token may also be given as ?access_token= (EventSource cannot send headers).",
        _fleet_stream,
        kind="stream",
        query=STREAM_TOKEN,
    ),
]
