"""The clinician bolus Finish screen: a bolus on top of the program (START_CLINICIAN_BOLUS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import protocol as p

from . import calc
from ._change import Change, command, limits, read_context
from ._show import mass, minutes, ml

if TYPE_CHECKING:
    from ._pump import Pump


async def prepare_bolus(
    pump: Pump, dose_ng: int, duration_ms: int, *, then_stop: bool = False
) -> Change:
    """A clinician bolus on top of the program (or a single bolus, then stopped)."""
    st, drug = await read_context(pump)
    unit = drug.concentration_unit
    volume = dose_ng * calc.NL_PER_ML // max(drug.concentration_ng_per_ml, 1)
    diff = [
        ("bolus", "-", f"{mass(dose_ng, unit)} ({ml(volume)}) over {minutes(duration_ms)}"),
        ("after it", "-", "stopped" if then_stop else st.mode.name.lower()),
        (
            "reservoir",
            ml(st.reservoir_volume_nl),
            ml(max(0, st.reservoir_volume_nl - volume)),
        ),
    ]
    kind = p.StartClinicianBolus
    msg = command(pump, st, kind, dose_ng=dose_ng, duration_ms=duration_ms, then_stop=then_stop)
    warnings = limits(drug, st.daily_dose_ng + dose_ng, "basal + bolus")
    return Change("clinician bolus", msg, diff, warnings, pump.send_command)
