"""The priming Finish screen: fill the catheter and the pump's tubing (START_PRIMING_BOLUS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import protocol as p

from . import calc
from ._change import Change, command, fluid_path
from ._show import ml

if TYPE_CHECKING:
    from ._pump import Pump


async def prepare_priming(
    pump: Pump,
    catheter_length_cm: int | None = None,
    pump_tubing_nl: int | None = None,
    *,
    nl_per_cm: int = calc.CATHETER_NL_PER_CM,
) -> Change:
    """A priming bolus that fills the catheter and the pump's tubing at the maximum rate. By
    default both volumes come from the pump (CATHETER_INFO); with `catheter_length_cm`, the
    catheter is length x volume per cm (2.6 uL/cm by default) plus `pump_tubing_nl`."""
    st = await pump.status()
    catheter, tubing, source = await fluid_path(pump, catheter_length_cm, pump_tubing_nl, nl_per_cm)
    volume = calc.priming_volume_nl(catheter, tubing)
    diff = [
        ("priming bolus", "-", f"{ml(volume)} at the maximum rate"),
        ("fluid path", "-", f"catheter {ml(catheter)} + pump tubing {ml(tubing)}, {source}"),
    ]
    msg = command(pump, st, p.StartPrimingBolus, volume_nl=volume)
    return Change("priming bolus", msg, diff, [], pump.send_command)
