"""The control plane's `scenarios` resource: replacing a pump by a new one in a training
scenario's starting state (its narration scheduled), and the instructor's narration notes."""

from __future__ import annotations

from typing import Any

from ._control_api import Call, ControlError, Route, answer, nullable, obj
from ._control_state import STATE, done
from ._device import ControlCode
from ._exercise import grade, start_of
from ._exercise_plot import Trace
from ._narration import MAX_TEXT, as_json


async def _reset(call: Call) -> Any:
    from ._scenario import (
        ScenarioError,
        builtin_scenarios,
        load_scenario,
        narration,
        starting_pump,
    )

    name = call.body["scenario"]
    if name not in builtin_scenarios():
        raise ControlError(404, f"no scenario {name!r}: one of {', '.join(builtin_scenarios())}")
    dev = call.rt.device
    dev.advance()
    try:
        scenario = load_scenario(name)
        pump = starting_pump(scenario, now_ms=dev.pump.now, serial=dev.pump.serial)
    except ScenarioError as exc:
        raise ControlError(409, str(exc)) from None
    dev.clock.jump_to(pump.now)
    failure = dev.replace_pump(pump)
    if failure is not None:
        raise ControlError(409, failure)
    call.plane.hub.narration_of(call.rt.serial).schedule(narration(scenario), pump.now)
    call.rt.exercise = (scenario.exercise, start_of(pump)) if scenario.exercise else None
    call.rt.exercise_trace = Trace(pump) if scenario.exercise else None
    return done(call, ControlCode.RESET, 0)


async def _get_exercise(call: Call) -> Any:
    """The running exercise graded now: what the trainee got right and wrong so far (with the
    programmer's activity in a POST: the warnings the trainee overrode too)."""
    if call.rt.exercise is None:
        raise ControlError(404, "no exercise: start or reset the pump with an exercise scenario")
    call.rt.device.advance()
    exercise, start = call.rt.exercise
    activity = call.body.get("activity") if isinstance(call.body, dict) else None
    return grade(
        exercise, call.rt.device.pump, start, activity=activity, trace=call.rt.exercise_trace
    )


async def _exercises(call: Call) -> Any:
    """Every pump running an exercise, scored now: the instructor's list of trainees."""
    out = []
    for serial, rt in sorted(call.plane.runtimes.items()):
        if rt.exercise is None:
            continue
        rt.device.advance()
        exercise, start = rt.exercise
        g = grade(exercise, rt.device.pump, start)
        wrong = [c["check"] for c in g["checks"] if not c["ok"]]
        out.append(
            {
                "serial": serial,
                **{k: g[k] for k in ("task", "passed", "score", "right", "total")},
                "minutes_taken": g["minutes_taken"],
                "not_yet": wrong,
            }
        )
    return out


def _notes(call: Call) -> dict[str, Any]:
    dev = call.rt.device
    pump = dev.pump
    notes = call.plane.hub.narration_of(call.rt.serial).due(pump.now)
    return {"notes": as_json(notes, pump.clock_ms - pump.now)}


async def _get_narration(call: Call) -> Any:
    call.rt.device.advance()
    return _notes(call)


async def _narrate(call: Call) -> Any:
    """A note for the instructor, now: kept beside the pump, never in its log or on the wire."""
    dev = call.rt.device
    dev.advance()
    try:
        call.plane.hub.narration_of(call.rt.serial).add(dev.pump.now, call.body["text"])
    except ValueError as exc:
        raise ControlError(400, str(exc)) from None
    call.plane.hub.changed(call.rt)
    return _notes(call)


NOTES = answer(
    notes={
        "type": "array",
        "items": answer(
            time_ms={"type": "integer", "description": "pump clock, ms"},
            text={"type": "string"},
            source={"type": "string", "enum": ["scenario", "instructor"]},
        ),
    },
)


GRADE = answer(
    task={"type": "string"},
    passed={"type": "boolean"},
    score={"type": "string", "description": "right/total"},
    right={"type": "integer"},
    total={"type": "integer"},
    checks={
        "type": "array",
        "items": answer(check={"type": "string"}, ok={"type": "boolean"}, found={"type": "string"}),
    },
    minutes_taken={"type": "number", "description": "pump clock, start to the last change"},
    warnings_overridden=nullable({"type": "array", "items": {"type": "string"}}),
    pump={"type": "object"},
    plot=nullable(
        answer(
            points={"type": "integer"},
            clock_ms={"type": "array", "items": {"type": "integer"}},
            reservoir_ml={"type": "array", "items": {"type": "number"}},
            true_reservoir_ml={"type": "array", "items": {"type": "number"}},
            daily_dose_mcg={"type": "array", "items": {"type": "number"}},
        )
    ),
)

PROGRESS = answer(
    serial={"type": "integer"},
    task={"type": "string"},
    passed={"type": "boolean"},
    score={"type": "string", "description": "right/total"},
    right={"type": "integer"},
    total={"type": "integer"},
    minutes_taken={"type": "number", "description": "pump clock, start to the last change"},
    not_yet={"type": "array", "items": {"type": "string"}, "description": "checks not right"},
)

ROUTES = [
    Route(
        "GET",
        "/v1/exercises",
        "Every pump running a graded exercise, scored now (the trainees' progress; the "
        "warnings overridden are known only to POST .../exercise).",
        _exercises,
        answer={"type": "array", "items": PROGRESS},
    ),
    Route(
        "GET",
        "/v1/pumps/{serial}/exercise",
        "The scenario's graded exercise, scored now against the pump's state and log "
        "(404 when the pump was not started with an exercise scenario).",
        _get_exercise,
        answer=GRADE,
    ),
    Route(
        "POST",
        "/v1/pumps/{serial}/exercise",
        "The exercise scored now with the web programmer's activity (its --activity file's "
        "lines): the warnings the trainee confirmed are counted too.",
        _get_exercise,
        obj(
            ["activity"],
            activity={
                "type": "array",
                "maxItems": 10_000,
                "items": {
                    "type": "object",
                    "properties": {
                        "what": {"type": "string"},
                        "warnings_confirmed": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        ),
        GRADE,
    ),
    Route(
        "POST",
        "/v1/pumps/{serial}/reset",
        "Replace the pump by a new one in a scenario's starting state (its time-0 steps): "
        "same serial and keys, a fresh memory; open sessions end.",
        _reset,
        obj(["scenario"], scenario={"type": "string", "description": "built-in name"}),
        STATE,
    ),
    Route(
        "GET",
        "/v1/pumps/{serial}/narration",
        "The instructor's narration notes pump time has reached (a scenario's and added ones); "
        "never part of the pump's log.",
        _get_narration,
        answer=NOTES,
    ),
    Route(
        "POST",
        "/v1/pumps/{serial}/narration",
        "Add a narration note for the instructor now (shown on the console, not to the "
        "programmer).",
        _narrate,
        obj(
            ["text"],
            text={"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
        ),
        NOTES,
    ),
]
