"""The bridge Finish screen: after a concentration change, the old rate until the dead volume
is flushed, then the new one (START_BRIDGE)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import protocol as p

from . import calc
from ._change import Change, command, limits, read_context
from ._errors import BadInput
from ._show import daily, ml

if TYPE_CHECKING:
    from ._pump import Pump


async def prepare_bridge(
    pump: Pump,
    previous_conc_ng_per_ml: int,
    dose_ng_per_day: int,
    *,
    catheter_length_cm: int,
    pump_tubing_nl: int = 0,
    nl_per_cm: int = calc.CATHETER_NL_PER_CM,
) -> Change:
    """After a concentration change: the old concentration's rate until the dead volume
    (catheter length x volume per cm, 2.6 uL/cm by default, + pump tubing) is flushed,
    then the new rate."""
    st, drug = await read_context(pump)
    dead = calc.catheter_volume_nl(catheter_length_cm, nl_per_cm) + pump_tubing_nl
    try:
        b = calc.bridge(
            dead, previous_conc_ng_per_ml, drug.concentration_ng_per_ml, dose_ng_per_day
        )
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    unit = drug.concentration_unit
    diff = [
        ("mode", st.mode.name.lower(), "bridge, then continuous"),
        ("daily dose", daily(st.daily_dose_ng, unit), daily(dose_ng_per_day, unit)),
        (
            "bridge",
            "-",
            f"{ml(b.old_rate_nl_per_day)}/day for {b.duration_ms / calc.DAY_MS:.2f} days "
            f"({ml(dead)} dead volume)",
        ),
        ("then", "-", f"{ml(b.new_rate_nl_per_day)}/day"),
    ]
    msg = command(
        pump,
        st,
        p.StartBridge,
        dead_volume_nl=dead,
        previous_concentration_ng_per_ml=previous_conc_ng_per_ml,
        dose_ng_per_day=dose_ng_per_day,
    )
    return Change("bridge", msg, diff, limits(drug, dose_ng_per_day, "dose"), pump.send_command)
