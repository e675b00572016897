"""The programmer's clinical calculations (reference/domain.md section 2), as pure functions.

Integers in the protocol's units in and out: volumes in nL, masses in ng, concentrations in
ng/mL, rates in nL/day, durations in ms, ratios in parts per million. Each function states its
rounding; each docstring carries the worked example from domain.md, and the tests check them.
"""

from __future__ import annotations

import dataclasses

NL_PER_ML = 1_000_000
NG_PER_MG = 1_000_000
NG_PER_MCG = 1_000
DAY_MS = 86_400_000
YEAR_MS = 365 * DAY_MS
MINUTES_PER_DAY = 1_440
PPM = 1_000_000
HAZARD_PPM = 145_000  # a delivery ratio more than 14.5 % from 1 is an over/under-infusion hazard
CATHETER_NL_PER_CM = 2_600  # Prometra catheter: 0.0026 mL/cm (domain.md #27)


def _positive(**values: int) -> None:
    for name, v in values.items():
        if v <= 0:
            raise ValueError(f"{name} must be > 0 (got {v})")


def _not_negative(**values: int) -> None:
    for name, v in values.items():
        if v < 0:
            raise ValueError(f"{name} must be >= 0 (got {v})")


def rate_nl_per_day(dose_ng_per_day: int, conc_ng_per_ml: int) -> int:
    """Flow that delivers a daily dose: dose / concentration, floored to whole nL/day (as the
    pump computes it).

    Morphine 25 mg/mL at 3 mg/day: 0.12 mL/day (`rate_nl_per_day(3_000_000, 25_000_000)` is
    120_000). Baclofen 2000 mcg/mL at 500 mcg/day: 0.25 mL/day."""
    _not_negative(dose_ng_per_day=dose_ng_per_day)
    _positive(conc_ng_per_ml=conc_ng_per_ml)
    return dose_ng_per_day * NL_PER_ML // conc_ng_per_ml


def dose_ng_per_day(rate_nl_per_day: int, conc_ng_per_ml: int) -> int:
    """Daily dose a flow delivers: rate x concentration, floored to whole ng/day."""
    _not_negative(rate_nl_per_day=rate_nl_per_day, conc_ng_per_ml=conc_ng_per_ml)
    return rate_nl_per_day * conc_ng_per_ml // NL_PER_ML


def schedule_daily_dose_ng(steps: list[tuple[int, int]]) -> int:
    """Daily dose of a multi-step schedule of (start minute, dose ng/day) steps, the first at
    minute 0, each running until the next (the last until midnight); floored to whole ng.

    00:00-07:00 and 22:00-24:00 at 400 mcg/day, 07:00-22:00 at 600 mcg/day:
    400 x 9/24 + 600 x 15/24 = 525 mcg/day."""
    if not steps or steps[0][0] != 0:
        raise ValueError("a schedule starts with a step at minute 0")
    starts = [m for m, _ in steps]
    if starts != sorted(set(starts)) or starts[-1] >= MINUTES_PER_DAY:
        raise ValueError("step start minutes must increase and stay below 1440")
    total = 0
    for i, (start, dose) in enumerate(steps):
        _not_negative(dose_ng_per_day=dose)
        end = steps[i + 1][0] if i + 1 < len(steps) else MINUTES_PER_DAY
        total += dose * (end - start)
    return total // MINUTES_PER_DAY


def time_to_volume_ms(reservoir_nl: int, threshold_nl: int, rate_nl_per_day: int) -> int | None:
    """How long until the reservoir holds `threshold_nl` at a steady flow, rounded up to the
    millisecond (an alarm is never predicted early). 0 if already there; None if it never
    comes (no flow).

    20 mL, low-reservoir alarm at 2 mL, 0.25 mL/day: 72 days; empty (threshold 0): 80 days.
    40 mL, 2 mL, 0.12 mL/day: 316.7 days."""
    _not_negative(reservoir_nl=reservoir_nl, threshold_nl=threshold_nl)
    _not_negative(rate_nl_per_day=rate_nl_per_day)
    if reservoir_nl <= threshold_nl:
        return 0
    if rate_nl_per_day == 0:
        return None
    return -(-(reservoir_nl - threshold_nl) * DAY_MS // rate_nl_per_day)


def expected_residual_nl(
    filled_nl: int, rate_nl_per_day: int, elapsed_ms: int, bolus_volumes_nl: tuple[int, ...] = ()
) -> int:
    """Volume the pump should still hold: volume after the last refill minus the basal flow
    over `elapsed_ms` minus the boluses, never below 0; the basal part floored.

    20 mL filled, 0.25 mL/day for 60 days: 20 - 15 = 5.0 mL."""
    _not_negative(filled_nl=filled_nl, rate_nl_per_day=rate_nl_per_day, elapsed_ms=elapsed_ms)
    used = rate_nl_per_day * elapsed_ms // DAY_MS + sum(bolus_volumes_nl)
    return max(0, filled_nl - used)


def delivery_ratio_ppm(
    filled_nl: int, withdrawn_nl: int, expected_residual_nl: int, min_basis_nl: int = 1
) -> int | None:
    """What was delivered over what should have been, x 10^6 (rounded to nearest):
    (filled - withdrawn) / (filled - expected). > 10^6 means over-infusion. None when less than
    `min_basis_nl` was expected to be delivered (pumps use their discrepancy limit: a ratio over
    a few nanolitres is noise).

    Filled 20 mL, expected residual 5.0 mL: withdrawn 3.6 mL gives 1_093_333 (+9.3 %, inside
    the +-14.5 % bound); withdrawn 7.5 mL gives 833_333 (under-delivery: suspect a stall or an
    occlusion, read the event log)."""
    _not_negative(filled_nl=filled_nl, withdrawn_nl=withdrawn_nl)
    _not_negative(expected_residual_nl=expected_residual_nl)
    expected = filled_nl - expected_residual_nl
    if expected < max(1, min_basis_nl):
        return None
    delivered = filled_nl - withdrawn_nl
    return (2 * delivered * PPM + expected) // (2 * expected)


def discrepancy_limit_nl(reservoir_capacity_nl: int) -> int:
    """Refill discrepancy regarded as consequential: 1 mL for a 20 mL pump, 2 mL above."""
    _positive(reservoir_capacity_nl=reservoir_capacity_nl)
    return (1 if reservoir_capacity_nl <= 20 * NL_PER_ML else 2) * NL_PER_ML


def refill_beyond_limits(
    withdrawn_nl: int, expected_residual_nl: int, ratio_ppm: int | None, reservoir_capacity_nl: int
) -> bool:
    """Whether a refill needs investigating (pocket fill, stall, occlusion): the discrepancy
    exceeds the pump's limit or the delivery ratio is more than 14.5 % from 1.

    20 mL pump, expected 5.0 mL: withdrawn 3.6 mL (1.4 mL short) is beyond the 1 mL limit
    even though its ratio (1.093) is inside +-14.5 %."""
    discrepancy = abs(withdrawn_nl - expected_residual_nl)
    if discrepancy > discrepancy_limit_nl(reservoir_capacity_nl):
        return True
    return ratio_ppm is not None and abs(ratio_ppm - PPM) > HAZARD_PPM


def catheter_volume_nl(length_cm: int, nl_per_cm: int = CATHETER_NL_PER_CM) -> int:
    """Volume of an implanted catheter: length x volume per cm.

    A Prometra catheter trimmed to 85 cm: 85 x 0.0026 mL = 0.221 mL (221_000 nL)."""
    _not_negative(length_cm=length_cm)
    _positive(nl_per_cm=nl_per_cm)
    return length_cm * nl_per_cm


@dataclasses.dataclass(frozen=True, slots=True)
class Bridge:
    """A concentration change's bridge: run the old concentration's rate until the dead volume
    is flushed, then the new rate (domain.md 2.3)."""

    old_rate_nl_per_day: int
    new_rate_nl_per_day: int
    duration_ms: int  # rounded up
    underdose_without_ppm: int  # dose delivered meanwhile without a bridge, x 10^6 of the dose


def bridge(
    dead_volume_nl: int, old_conc_ng_per_ml: int, new_conc_ng_per_ml: int, dose_ng_per_day: int
) -> Bridge:
    """The bridge after changing from `old_conc` to `new_conc` at a kept daily dose.

    85 cm catheter (0.221 mL), morphine 10 -> 20 mg/mL at 2 mg/day: the old rate 0.20 mL/day
    runs for 0.221 / 0.20 = 1.105 days, then 0.10 mL/day. Without the bridge the patient would
    get 1 mg/day (50 %) for 2.21 days."""
    _positive(dead_volume_nl=dead_volume_nl, dose_ng_per_day=dose_ng_per_day)
    old = rate_nl_per_day(dose_ng_per_day, old_conc_ng_per_ml)
    new = rate_nl_per_day(dose_ng_per_day, new_conc_ng_per_ml)
    if old == 0:
        raise ValueError("the dose is too small for a measurable flow at the old concentration")
    duration = -(-dead_volume_nl * DAY_MS // old)
    return Bridge(old, new, duration, old_conc_ng_per_ml * PPM // new_conc_ng_per_ml)


def priming_volume_nl(catheter_nl: int, pump_tubing_nl: int) -> int:
    """What a priming bolus must push: the catheter plus the pump's internal tubing.

    85 cm catheter (0.221 mL) plus the pump path volume."""
    _not_negative(catheter_nl=catheter_nl, pump_tubing_nl=pump_tubing_nl)
    return catheter_nl + pump_tubing_nl


def worst_case_daily_dose_ng(basal_ng_per_day: int, bolus_dose_ng: int, max_per_24h: int) -> int:
    """Basal plus every allotted patient bolus: the dose the refill date must assume.

    3 mg/day basal + up to 6 x 0.1 mg = 3.6 mg/day; at 25 mg/mL that is 0.144 mL/day, so a
    20 mL pump reaches its 3 mL refill point in (20 - 3) / 0.144 = 118 days."""
    _not_negative(basal=basal_ng_per_day, bolus=bolus_dose_ng, max_per_24h=max_per_24h)
    return basal_ng_per_day + bolus_dose_ng * max_per_24h


def end_of_service_ms(eri_at_ms: int, implanted_at_ms: int) -> int:
    """When a pump stops after its elective-replacement indicator: 90 days after ERI, and never
    later than 7 years after implant.

    ERI on 2026-03-01: the pump stops about 2026-05-30."""
    return min(eri_at_ms + 90 * DAY_MS, implanted_at_ms + 7 * YEAR_MS)


@dataclasses.dataclass(frozen=True, slots=True)
class FillRecipe:
    """A constant-flow pump's refill: drug and saline that give the dose at the fixed flow."""

    days: int  # whole days the reservoir lasts (floored)
    drug_ng: int  # drug mass in the reservoir
    drug_nl: int  # stock drug volume (rounded up to the nL)
    saline_nl: int
    concentration_ng_per_ml: int  # of the mixture (floored)
    extra_nl: int  # more mixture to prepare for the refill set, same ratio


def constant_flow_fill(
    reservoir_nl: int,
    flow_nl_per_day: int,
    dose_ng_per_day: int,
    stock_conc_ng_per_ml: int,
    extra_nl: int = 3 * NL_PER_ML,
) -> FillRecipe:
    """Refill recipe of a constant-flow pump (Codman / Archimedes): the flow is fixed, so the
    dose is set by the concentration.

    20 mL reservoir at 0.5 mL/day lasts 40 days; 2 mg/day needs 80 mg: at 10 mg/mL stock that
    is 8 mL of drug and 12 mL of saline (4 mg/mL), plus 3 mL more mixture for the refill set."""
    _positive(reservoir_nl=reservoir_nl, flow_nl_per_day=flow_nl_per_day)
    _positive(stock_conc_ng_per_ml=stock_conc_ng_per_ml)
    _not_negative(dose_ng_per_day=dose_ng_per_day, extra_nl=extra_nl)
    mixture_conc = dose_ng_per_day * NL_PER_ML // flow_nl_per_day
    if mixture_conc > stock_conc_ng_per_ml:
        raise ValueError("the stock is too dilute for this dose at this flow")
    drug_ng = mixture_conc * reservoir_nl // NL_PER_ML
    drug_nl = -(-drug_ng * NL_PER_ML // stock_conc_ng_per_ml)
    return FillRecipe(
        days=reservoir_nl // flow_nl_per_day,
        drug_ng=drug_ng,
        drug_nl=drug_nl,
        saline_nl=reservoir_nl - drug_nl,
        concentration_ng_per_ml=mixture_conc,
        extra_nl=extra_nl,
    )
