"""The bridge Finish screen: after a concentration change, the old rate until the dead volume
is flushed, then the new one (START_BRIDGE)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import protocol as p

from . import calc
from ._change import Change, command, fluid_path, limits, read_context
from ._errors import BadInput
from ._show import daily, ml

if TYPE_CHECKING:
    from ._pump import Pump


async def prepare_bridge(
    pump: Pump,
    previous_conc_ng_per_ml: int,
    dose_ng_per_day: int,
    *,
    catheter_length_cm: int | None = None,
    pump_tubing_nl: int | None = None,
    nl_per_cm: int = calc.CATHETER_NL_PER_CM,
) -> Change:
    """After a concentration change: the old concentration's rate until the dead volume (the
    catheter plus the pump tubing) is flushed, then the new rate.

    By default both volumes come from the pump (CATHETER_INFO, protocol 1.1), so the bridge
    flushes exactly what the fluid path holds. With `catheter_length_cm` the catheter is
    length x `nl_per_cm` (2.6 uL/cm by default) plus `pump_tubing_nl` (default 0), as entered
    by the clinician: the only way with a 1.0 pump."""
    st, drug = await read_context(pump)
    catheter_nl, tubing_nl, source = await fluid_path(
        pump, catheter_length_cm, pump_tubing_nl, nl_per_cm
    )
    dead = catheter_nl + tubing_nl
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
        ("dead volume", "-", f"catheter {ml(catheter_nl)} + pump tubing {ml(tubing_nl)}, {source}"),
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
