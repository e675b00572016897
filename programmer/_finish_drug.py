"""The drug Finish screen: correct the drug record (SET_DRUG)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import protocol as p

from ._change import Change, command, read_context
from ._show import conc

if TYPE_CHECKING:
    from ._pump import Pump


async def prepare_drug(
    pump: Pump,
    drug: p.Drug,
    conc_ng_per_ml: int,
    unit: p.ConcentrationUnit = p.ConcentrationUnit.MG_PER_ML,
) -> Change:
    """Correct the drug record. A concentration change stops the program until a dose,
    schedule or bridge is programmed again."""
    st, old = await read_context(pump)
    diff = [
        ("drug", old.drug.name, drug.name),
        (
            "concentration",
            conc(old.concentration_ng_per_ml, old.concentration_unit),
            conc(conc_ng_per_ml, unit),
        ),
    ]
    warnings = []
    if (drug, conc_ng_per_ml) != (old.drug, old.concentration_ng_per_ml):
        warnings.append("the pump stops delivery until the program is confirmed again")
    fields = {"concentration_ng_per_ml": conc_ng_per_ml, "concentration_unit": unit}
    msg = command(pump, st, p.SetDrug, drug=drug, **fields)
    return Change("drug", msg, diff, warnings, pump.send_command)
