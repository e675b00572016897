"""The refill Finish screen: record a refill (RECORD_REFILL) with the expected residual, the
discrepancy and the delivery ratio, a warning beyond the limits, the new alarm volume and the
new low-reservoir and empty dates."""

from __future__ import annotations

from typing import TYPE_CHECKING

import protocol as p

from . import calc
from ._change import Change, Row, alarm_rows, command, read_context
from ._errors import BadInput
from ._show import conc, date, ml

if TYPE_CHECKING:
    from ._pump import Pump

REFILL_KIND = int(p.EventKind.REFILL)


async def prepare_refill(
    pump: Pump,
    *,
    withdrawn_nl: int,
    added_nl: int,
    drug: p.Drug | None = None,
    conc_ng_per_ml: int | None = None,
    unit: p.ConcentrationUnit | None = None,
    low_threshold_nl: int | None = None,
) -> Change:
    """Record a refill. The Finish screen shows the expected residual, the discrepancy and
    the delivery ratio (with a warning beyond the limits) and the new alarm dates."""
    st, old = await read_context(pump)
    assert pump.device is not None
    new_drug = old.drug if drug is None else drug
    new_conc = old.concentration_ng_per_ml if conc_ng_per_ml is None else conc_ng_per_ml
    new_unit = old.concentration_unit if unit is None else unit
    threshold = st.low_reservoir_threshold_nl if low_threshold_nl is None else low_threshold_nl
    if new_drug is p.Drug.NONE or not new_conc:
        raise BadInput("give the drug and concentration of the refill")
    capacity = pump.device.reservoir_capacity_nl
    if added_nl > capacity:  # the pump refuses it too; say so before any diff or warning
        raise BadInput(
            f"added {ml(added_nl)} is more than the reservoir holds: this pump's capacity is "
            f"{ml(capacity)} (DEVICE_INFO); nothing was sent"
        )
    if threshold > capacity:
        raise BadInput(
            f"low-reservoir alarm at {ml(threshold)} is above the reservoir capacity of "
            f"{ml(capacity)}; nothing was sent"
        )
    expected = st.reservoir_volume_nl
    discrepancy = withdrawn_nl - expected
    filled = await _last_fill_nl(pump, st)
    basis = calc.discrepancy_limit_nl(capacity)
    ratio = calc.delivery_ratio_ppm(filled, withdrawn_nl, expected, basis) if filled else None
    warnings = []
    if calc.refill_beyond_limits(withdrawn_nl, expected, ratio, capacity):
        warnings.append(
            f"discrepancy {discrepancy / calc.NL_PER_ML:+.2f} mL"
            + (f", delivery ratio {ratio / calc.PPM:.3f}" if ratio else "")
            + " is beyond the limits: investigate pocket fill, stall or occlusion"
        )
    changes_conc = (new_drug, new_conc) != (old.drug, old.concentration_ng_per_ml)
    if changes_conc and old.drug is not p.Drug.NONE:
        warnings.append(
            "the drug or concentration changes: the program stops until a dose, schedule "
            "or bridge is programmed (prepare_bridge)"
        )
    diff = [
        ("reservoir", ml(st.reservoir_volume_nl), ml(added_nl)),
        ("expected residual", "-", ml(expected)),
        ("withdrawn", "-", ml(withdrawn_nl)),
        ("discrepancy", "-", f"{discrepancy / calc.NL_PER_ML:+.3f} mL"),
        ("delivery ratio", "-", f"{ratio / calc.PPM:.3f}" if ratio else "n/a"),
        ("drug", old.drug.name, new_drug.name),
        (
            "concentration",
            conc(old.concentration_ng_per_ml, old.concentration_unit),
            conc(new_conc, new_unit),
        ),
        ("low-reservoir alarm at", ml(st.low_reservoir_threshold_nl), ml(threshold)),
        *_new_dates(st, added_nl, threshold, stops=changes_conc and old.drug is not p.Drug.NONE),
    ]
    msg = command(
        pump,
        st,
        p.RecordRefill,
        withdrawn_volume_nl=withdrawn_nl,
        added_volume_nl=added_nl,
        drug=new_drug,
        concentration_ng_per_ml=new_conc,
        concentration_unit=new_unit,
        low_reservoir_threshold_nl=threshold,
    )
    return Change("refill", msg, diff, warnings, pump.send_command)


async def _last_fill_nl(pump: Pump, st: p.Status) -> int:
    """Volume added at the last refill (the REFILL record's `a`), read from the newest log
    pages backwards; 0 when the log no longer holds one."""
    if not st.last_refill_at_ms:
        return 0
    end = st.event_seq + 1
    while end > 1:
        start = max(1, end - 16)
        page: p.EventPage = await pump.request(
            p.GetEvents(cursor=start, max_count=min(16, end - start))
        )
        for record in reversed(page.events):
            if record.kind == REFILL_KIND and record.seq < end:
                return record.value_a
        if start <= page.oldest_seq:
            return 0
        end = start
    return 0


def _new_dates(st: p.Status, added_nl: int, threshold_nl: int, *, stops: bool) -> list[Row]:
    """The low-reservoir and empty dates after the refill at the rate running now (none while
    a new concentration stops the program)."""
    if stops:
        after = "when a new program is set"
        return [("low-reservoir alarm", date(st.low_reservoir_at_ms), after),
                ("empty", date(st.empty_at_ms), after)]  # fmt: skip
    rate = st.current_rate_nl_per_day
    low = calc.time_to_volume_ms(added_nl, threshold_nl, rate)
    empty = calc.time_to_volume_ms(added_nl, 0, rate)
    return alarm_rows(
        st,
        None if low is None else st.pump_time_ms + low,
        None if empty is None else st.pump_time_ms + empty,
    )
