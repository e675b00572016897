"""The dose Finish screen: simple continuous mode at a daily dose (SET_CONTINUOUS_DOSE)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import protocol as p

from . import calc
from ._change import Change, alarm_rows, command, dates, limits, need_drug, read_context
from ._errors import BadInput
from ._show import daily, ml

if TYPE_CHECKING:
    from ._pump import Pump


async def prepare_dose(pump: Pump, dose_ng_per_day: int) -> Change:
    """Simple continuous mode at a daily dose; the rate is derived from the concentration."""
    st, drug = await read_context(pump)
    need_drug(drug)
    if dose_ng_per_day <= 0:
        raise BadInput("the dose must be > 0 (use suspend to stop delivery)")
    unit = drug.concentration_unit
    rate = calc.rate_nl_per_day(dose_ng_per_day, drug.concentration_ng_per_ml)
    low, empty = dates(st, rate)
    diff = [
        ("mode", st.mode.name.lower(), "continuous"),
        ("daily dose", daily(st.daily_dose_ng, unit), daily(dose_ng_per_day, unit)),
        ("rate", f"{ml(st.current_rate_nl_per_day)}/day", f"{ml(rate)}/day"),
        *alarm_rows(st, low, empty),
    ]
    msg = command(pump, st, p.SetContinuousDose, dose_ng_per_day=dose_ng_per_day)
    return Change("dose", msg, diff, limits(drug, dose_ng_per_day, "dose"), pump.send_command)
