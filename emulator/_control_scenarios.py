"""The control plane's `scenarios` resource: replacing a pump by a new one in a training
scenario's starting state."""

from __future__ import annotations

from typing import Any

from ._control_api import Call, ControlError, Route, obj
from ._control_state import STATE, done
from ._device import ControlCode


async def _reset(call: Call) -> Any:
    from ._scenario import ScenarioError, builtin_scenarios, load_scenario, starting_pump

    name = call.body["scenario"]
    if name not in builtin_scenarios():
        raise ControlError(404, f"no scenario {name!r}: one of {', '.join(builtin_scenarios())}")
    dev = call.rt.device
    dev.advance()
    try:
        pump = starting_pump(load_scenario(name), now_ms=dev.pump.now, serial=dev.pump.serial)
    except ScenarioError as exc:
        raise ControlError(409, str(exc)) from None
    dev.clock.jump_to(pump.now)
    failure = dev.replace_pump(pump)
    if failure is not None:
        raise ControlError(409, failure)
    return done(call, ControlCode.RESET, 0)


ROUTES = [
    Route(
        "POST",
        "/v1/pumps/{serial}/reset",
        "Replace the pump by a new one in a scenario's starting state (its time-0 steps): "
        "same serial and keys, a fresh memory; open sessions end.",
        _reset,
        obj(["scenario"], scenario={"type": "string", "description": "built-in name"}),
        STATE,
    ),
]
