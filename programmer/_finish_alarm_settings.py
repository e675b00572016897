"""The alarm settings Finish screen: low-reservoir volume and tone repeat intervals
(SET_ALARM_SETTINGS); a setting left out keeps its value."""

from __future__ import annotations

from typing import TYPE_CHECKING

import protocol as p

from ._change import Change, command
from ._show import minutes, ml

if TYPE_CHECKING:
    from ._pump import Pump


async def prepare_alarm_settings(
    pump: Pump,
    *,
    low_threshold_nl: int | None = None,
    critical_repeat_ms: int | None = None,
    noncritical_repeat_ms: int | None = None,
) -> Change:
    st = await pump.status()
    old = await pump.alarm_settings()
    new = p.AlarmSettings(
        low_reservoir_threshold_nl=old.low_reservoir_threshold_nl
        if low_threshold_nl is None
        else low_threshold_nl,
        critical_repeat_ms=old.critical_repeat_ms
        if critical_repeat_ms is None
        else critical_repeat_ms,
        noncritical_repeat_ms=old.noncritical_repeat_ms
        if noncritical_repeat_ms is None
        else noncritical_repeat_ms,
    )
    diff = [
        (
            "low-reservoir alarm at",
            ml(old.low_reservoir_threshold_nl),
            ml(new.low_reservoir_threshold_nl),
        ),
        ("critical repeat", minutes(old.critical_repeat_ms), minutes(new.critical_repeat_ms)),
        (
            "non-critical repeat",
            minutes(old.noncritical_repeat_ms),
            minutes(new.noncritical_repeat_ms),
        ),
    ]
    msg = command(
        pump,
        st,
        p.SetAlarmSettings,
        low_reservoir_threshold_nl=new.low_reservoir_threshold_nl,
        critical_repeat_ms=new.critical_repeat_ms,
        noncritical_repeat_ms=new.noncritical_repeat_ms,
    )
    return Change("alarm settings", msg, diff, [], pump.send_command)
