"""The priming Finish screen: fill the catheter and the pump's tubing (START_PRIMING_BOLUS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import protocol as p

from . import calc
from ._change import Change, command
from ._show import ml

if TYPE_CHECKING:
    from ._pump import Pump


async def prepare_priming(
    pump: Pump,
    catheter_length_cm: int,
    pump_tubing_nl: int,
    *,
    nl_per_cm: int = calc.CATHETER_NL_PER_CM,
) -> Change:
    """A priming bolus that fills the catheter (length x volume per cm, 2.6 uL/cm by
    default) and the pump's tubing, at the maximum rate."""
    st = await pump.status()
    catheter = calc.catheter_volume_nl(catheter_length_cm, nl_per_cm)
    volume = calc.priming_volume_nl(catheter, pump_tubing_nl)
    diff = [("priming bolus", "-", f"{ml(volume)} at the maximum rate")]
    msg = command(pump, st, p.StartPrimingBolus, volume_nl=volume)
    return Change("priming bolus", msg, diff, [], pump.send_command)
