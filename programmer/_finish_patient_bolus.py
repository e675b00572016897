"""The patient bolus Finish screen: the patient-activated bolus settings (SET_PATIENT_BOLUS);
the refill date assumes every allotted bolus."""

from __future__ import annotations

from typing import TYPE_CHECKING

import protocol as p

from . import calc
from ._change import Change, command, dates, limits, read_context
from ._show import daily, date, mass, minutes

if TYPE_CHECKING:
    from ._pump import Pump


async def prepare_patient_bolus(
    pump: Pump,
    *,
    enabled: bool,
    dose_ng: int,
    duration_ms: int,
    lockout_ms: int,
    max_per_24h: int,
) -> Change:
    """Patient-activated bolus settings; the refill date assumes every allotted bolus."""
    st, drug = await read_context(pump)
    old = await pump.patient_bolus()
    unit = drug.concentration_unit
    worst = calc.worst_case_daily_dose_ng(st.daily_dose_ng, dose_ng, max_per_24h if enabled else 0)
    rate = calc.rate_nl_per_day(worst, max(drug.concentration_ng_per_ml, 1))
    low, _ = dates(st, rate)
    diff = [
        ("enabled", str(old.enabled), str(enabled)),
        ("dose", mass(old.dose_ng, unit), mass(dose_ng, unit)),
        ("lockout", minutes(old.lockout_ms), minutes(lockout_ms)),
        ("max per 24 h", str(old.max_per_24h), str(max_per_24h)),
        ("worst-case daily dose", daily(st.daily_dose_ng, unit), daily(worst, unit)),
        ("refill due (worst case)", date(st.low_reservoir_at_ms), date(low)),
    ]
    msg = command(
        pump,
        st,
        p.SetPatientBolus,
        enabled=enabled,
        dose_ng=dose_ng,
        duration_ms=duration_ms,
        lockout_ms=lockout_ms,
        max_per_24h=max_per_24h,
    )
    warnings = limits(drug, worst, "worst-case daily dose") if enabled else []
    return Change("patient bolus", msg, diff, warnings, pump.send_command)
