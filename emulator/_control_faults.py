"""The control plane's `faults` resource: injecting and ending firmware-model faults with their
real consequence, and setting what is truly in the reservoir."""

from __future__ import annotations

import dataclasses
from typing import Any

import firmware_model as fm

from ._control_api import (
    INT,
    MAX_ADVANCE_MS,
    STRING,
    Call,
    ControlError,
    Route,
    answer,
    integer,
    obj,
)
from ._control_state import STATE, done

FAULTS: dict[str, type] = {
    "MOTOR_STALL": fm.MotorStall,
    "CATHETER_OCCLUSION": fm.CatheterOcclusion,
    "CATHETER_LEAK": fm.CatheterLeak,
    "CATHETER_KINK": fm.CatheterKink,
    "CATHETER_GRANULOMA": fm.CatheterGranuloma,
    "POCKET_FILL": fm.PocketFill,
    "CRITICAL_MEMORY_ERROR": fm.CriticalMemoryError,
    "NONCRITICAL_MEMORY_ERROR": fm.NoncriticalMemoryError,
    "MRI_EXPOSURE": fm.MriExposure,
    "DELIVERY_INACCURACY": fm.DeliveryInaccuracy,
    "PREMATURE_ERI": fm.PrematureEri,
    "PREMATURE_EOS": fm.PrematureEos,
    "LOW_BATTERY_RESET": fm.LowBatteryReset,
    "AIR_IN_LINE": fm.AirInLine,
    "EXTERNAL_BATTERY_LOW": fm.ExternalBatteryLow,
}
FAULT_PARAMS: dict[str, dict[str, Any]] = {
    "recover_after_ms": integer(0, MAX_ADVANCE_MS, "MOTOR_STALL: recovers by itself after this"),
    "share_ppm": integer(
        0, 1_000_000, "CATHETER_LEAK: share of the flow lost, ppm (1000000: disconnected)"
    ),
    "restriction_ppm": integer(0, 1_000_000, "CATHETER_KINK: share of the flow held back, ppm"),
    "start_ppm": integer(0, 1_000_000, "CATHETER_GRANULOMA: share held back at first, ppm"),
    "end_ppm": integer(0, 1_000_000, "CATHETER_GRANULOMA: share held back at the end, ppm"),
    "days": integer(0, 3650, "CATHETER_GRANULOMA: days it grows, one step a day"),
    "volume_nl": integer(0, 100_000_000, "POCKET_FILL: volume of the next refill that misses"),
    "duration_ms": integer(0, fm.DAY_MS, "MRI_EXPOSURE: scan duration"),
    "recovery_delay_ms": integer(0, MAX_ADVANCE_MS, "MRI_EXPOSURE: delay before recovery"),
    "error_ppm": integer(-500_000, 145_000, "DELIVERY_INACCURACY: + over, - under-delivery, ppm"),
}
# Battery faults end only with a new pump (clear_fault refuses them): the console confirms them.
IRREVERSIBLE_FAULTS = ("PREMATURE_ERI", "PREMATURE_EOS", "LOW_BATTERY_RESET")


async def _inject(call: Call) -> Any:
    body = call.body
    cls = FAULTS[body["kind"]]
    names = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(body) - names - {"kind"})
    if extra:
        raise ControlError(400, f"{body['kind']} takes no {', '.join(extra)}")
    missing = sorted(
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in body and f.default is dataclasses.MISSING
    )
    if missing:
        raise ControlError(400, f"{body['kind']} needs {', '.join(missing)}")
    dev = call.rt.device
    dev.advance(writing=True)
    try:
        dev.pump.inject(cls(**{k: v for k, v in body.items() if k != "kind"}))
    except fm.Rejected as exc:
        raise ControlError(409, exc.detail) from None
    except ValueError as exc:
        raise ControlError(400, str(exc)) from None
    return done(call)


async def _clear(call: Call) -> Any:
    try:
        kind = fm.FaultKind[call.params["kind"].upper()]
    except KeyError:
        raise ControlError(404, f"no fault kind {call.params['kind']}") from None
    dev = call.rt.device
    dev.advance(writing=True)
    try:
        dev.pump.clear_fault(kind)
    except fm.Rejected as exc:
        raise ControlError(409, exc.detail) from None
    return done(call)


async def _reservoir(call: Call) -> Any:
    dev = call.rt.device
    dev.advance(writing=True)
    volume = call.body["true_volume_nl"]
    capacity = dev.pump.profile.reservoir_nl
    if volume > capacity:  # the document's maximum is the largest profile's; this is this pump's
        raise ControlError(
            400,
            f"body.true_volume_nl must be 0 .. {capacity} nL: this pump ({dev.pump.profile.name})"
            f" holds {capacity / fm.NL_PER_ML:g} mL; {volume} nL is {volume / fm.NL_PER_ML:g} mL",
        )
    try:
        dev.pump.set_true_reservoir(volume)
    except ValueError as exc:
        raise ControlError(400, str(exc)) from None
    return done(call)


# every profile's capacity fits the document's range; the route refuses above this pump's own
MAX_CAPACITY_NL = max(profile.reservoir_nl for profile in fm.PROFILES.values())
MIN_CAPACITY_NL = min(profile.reservoir_nl for profile in fm.PROFILES.values())


async def _aspirate(call: Call) -> Any:
    dev = call.rt.device
    dev.advance(writing=True)
    try:
        r = dev.pump.aspirate_cap()
    except ValueError as exc:
        raise ControlError(409, str(exc)) from None
    return {
        **done(call),
        "aspiration": {
            "finding": r.finding.name,
            "text": r.text,
            "aspirated_nl": r.aspirated_nl,
            "drug_ng": r.drug_ng,
        },
    }


ASPIRATION = answer(
    **STATE["properties"],
    aspiration=answer(finding=STRING, text=STRING, aspirated_nl=INT, drug_ng=INT),
)

ROUTES = [
    Route(
        "POST",
        "/v1/pumps/{serial}/faults",
        "Inject a fault with its real consequence (firmware_model faults).",
        _inject,
        obj(["kind"], kind={"type": "string", "enum": sorted(FAULTS)}, **FAULT_PARAMS),
        STATE,
    ),
    Route(
        "DELETE",
        "/v1/pumps/{serial}/faults/{kind}",
        "End a fault (motor recovers, occlusion repaired, ...). Battery faults cannot end.",
        _clear,
        answer=STATE,
    ),
    Route(
        "POST",
        "/v1/pumps/{serial}/catheter/aspirate",
        "Aspirate through the catheter access port (the CSF / dye check): the finding follows "
        "the true catheter; where CSF comes back the catheter's drug is drawn off.",
        _aspirate,
        answer=ASPIRATION,
    ),
    Route(
        "PUT",
        "/v1/pumps/{serial}/reservoir",
        "Set what is truly in the reservoir; the pump's calculated volume is left alone.",
        _reservoir,
        obj(
            ["true_volume_nl"],
            true_volume_nl=integer(
                0,
                MAX_CAPACITY_NL,
                "nL; at most this pump's reservoir capacity, which is per profile (`capacity_nl` "
                f"in the pump's state, {MIN_CAPACITY_NL // fm.NL_PER_ML} to "
                f"{MAX_CAPACITY_NL // fm.NL_PER_ML} mL): more is refused with 400",
            ),
        ),
        STATE,
    ),
]
