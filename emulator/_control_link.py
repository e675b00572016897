"""The control plane's `link` resource: the impairment of a pump's telemetry link (frames
dropped, duplicated, corrupted, answers delayed, or the link cut) for programmer tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from ._control_api import Call, ControlError, Route, integer, obj, share
from ._control_state import LINK, done
from ._device import ControlCode
from ._runtime import Impairment


async def _get_link(call: Call) -> Any:
    return dataclasses.asdict(call.rt.impairment)


async def _put_link(call: Call) -> Any:
    rt = call.rt
    try:
        rt.impairment = Impairment(**call.body)
    except (TypeError, ValueError) as exc:
        raise ControlError(400, str(exc)) from None
    b = int(rt.impairment.drop * 1_000_000)
    done(call, ControlCode.LINK, -1 if rt.impairment.cut else b)
    return dataclasses.asdict(rt.impairment)


ROUTES = [
    Route("GET", "/v1/pumps/{serial}/link", "The link impairment in force.", _get_link, None, LINK),
    Route(
        "PUT",
        "/v1/pumps/{serial}/link",
        "Impair the link for programmer tests: shares of frames dropped, duplicated or "
        "corrupted in each direction, answers delayed, or the link cut.",
        _put_link,
        obj(
            [],
            drop=share("share of frames lost"),
            duplicate=share("share of frames delivered twice"),
            corrupt=share("share of frames with one bit flipped"),
            delay_ms=integer(0, 60_000, "answers held back this long"),
            cut={"type": "boolean", "description": "lose everything"},
        ),
        LINK,
    ),
]
