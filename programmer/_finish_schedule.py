"""The schedule Finish screen: a multi-step daily schedule (SET_SCHEDULE)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import protocol as p

from . import calc
from ._change import Change, alarm_rows, command, dates, limits, need_drug, read_context
from ._errors import BadInput
from ._show import daily, mass

if TYPE_CHECKING:
    from ._pump import Pump


async def prepare_schedule(pump: Pump, steps: list[tuple[int, int]]) -> Change:
    """A multi-step daily schedule of (start minute, dose ng/day) steps, the first at 0."""
    st, drug = await read_context(pump)
    try:
        daily_ng = calc.schedule_daily_dose_ng(steps)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    need_drug(drug)
    unit = drug.concentration_unit
    rate = calc.rate_nl_per_day(daily_ng, drug.concentration_ng_per_ml)
    low, empty = dates(st, rate)
    steps_text = ", ".join(f"{m // 60:02d}:{m % 60:02d} {mass(d, unit)}/day" for m, d in steps)
    diff = [
        ("mode", st.mode.name.lower(), "schedule"),
        ("steps", "-", steps_text),
        ("daily dose", daily(st.daily_dose_ng, unit), daily(daily_ng, unit)),
        *alarm_rows(st, low, empty),
    ]
    program = tuple(p.ScheduleStep(start_minute=m, dose_ng_per_day=d) for m, d in steps)
    msg = command(pump, st, p.SetSchedule, steps=program)
    return Change("schedule", msg, diff, limits(drug, daily_ng, "daily dose"), pump.send_command)
