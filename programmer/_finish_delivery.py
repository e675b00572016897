"""The suspend and resume Finish screens (SUSPEND, RESUME): delivery now and after, the
predicted alarm dates, and the warning a suspension carries (no drug reaches the patient:
withdrawal). Suspending a suspended pump, or resuming a running one, is refused before
anything is sent."""

from __future__ import annotations

from typing import TYPE_CHECKING

import protocol as p

from . import calc
from ._change import Change, alarm_rows, command, dates
from ._errors import BadInput
from ._show import daily, ml

if TYPE_CHECKING:
    from ._pump import Pump


def _delivery(st: p.Status, suspended: bool) -> str:
    if suspended:
        return "suspended: no drug delivered"
    return f"{st.mode.name.lower()}, {daily(st.daily_dose_ng, st.concentration_unit)}"


async def prepare_suspend(pump: Pump) -> Change:
    st = await pump.status()
    if st.suspended:
        raise BadInput("delivery is already suspended: resume it instead")
    low, empty = dates(st, 0)
    diff = [
        ("delivery", _delivery(st, False), _delivery(st, True)),
        ("rate", f"{ml(st.current_rate_nl_per_day)}/day", "0 mL/day"),
        *alarm_rows(st, low, empty),
    ]
    warnings = [
        f"no {st.drug.name.lower()} is delivered until delivery is resumed: watch the "
        "patient for withdrawal"
    ]
    return Change("suspend delivery", command(pump, st, p.Suspend), diff, warnings,
                  pump.send_command)  # fmt: skip


async def prepare_resume(pump: Pump) -> Change:
    st = await pump.status()
    if not st.suspended:
        raise BadInput("delivery is not suspended: there is nothing to resume")
    conc = st.concentration_ng_per_ml
    rate = calc.rate_nl_per_day(st.daily_dose_ng, conc) if conc and st.daily_dose_ng else 0
    low, empty = dates(st, rate)
    diff = [
        ("delivery", _delivery(st, True), _delivery(st, False)),
        *alarm_rows(st, low, empty),
    ]
    return Change("resume delivery", command(pump, st, p.Resume), diff, [], pump.send_command)
