"""Device profiles and the drug library: the fixed facts a pump is built or configured with.

Values tagged [U] in docs/firmware_model.md are plausible design values that public sources do
not confirm (domain.md section 5); each is a profile field, so a user can override it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ._types import (
    DAY_MS,
    NG_PER_MCG,
    NG_PER_MG,
    NL_PER_ML,
    NL_PER_UL,
    YEAR_MS,
    Alarm,
    Capability,
    ConcentrationUnit,
    Drug,
    MriBehaviour,
    ProfileId,
)

_ALL_ALARMS = (
    Alarm.LOW_RESERVOIR
    | Alarm.EMPTY_RESERVOIR
    | Alarm.ELECTIVE_REPLACEMENT
    | Alarm.END_OF_SERVICE
    | Alarm.LOW_BATTERY_RESET
    | Alarm.MOTOR_STALL
    | Alarm.PUMP_STOPPED
    | Alarm.CRITICAL_MEMORY_ERROR
    | Alarm.NONCRITICAL_MEMORY_ERROR
)
_PROGRAMMABLE = (
    Capability.CONTINUOUS
    | Capability.SCHEDULE
    | Capability.CLINICIAN_BOLUS
    | Capability.PATIENT_BOLUS
    | Capability.PRIMING_BOLUS
    | Capability.BRIDGE
    | Capability.VARIABLE_RATE
)


@dataclass(frozen=True, slots=True)
class Battery:
    """Energy model, in abstract battery units (bu). Drain = age + motor volume + telemetry.

    Calibrated so that idle drain alone reaches the elective replacement indicator (ERI) at
    `eri_used_bu`, and a typical 0.5 mL/day program a few months earlier."""

    idle_bu_per_ms: int = 1
    bu_per_nl: int = 26  # 0.5 mL/day adds ~15 % to the idle drain
    bu_per_telemetry_frame: int = 10_000  # 10 s of idle drain per frame (polling costs life)
    eri_used_bu: int = 7 * YEAR_MS - 180 * DAY_MS  # ~6.5 years idle
    capacity_bu: int = 7 * YEAR_MS + 30 * DAY_MS
    eri_to_eos_ms: int = 90 * DAY_MS  # pump keeps running 90 days after ERI (domain #9)
    service_life_ms: int = 7 * YEAR_MS  # hard stop, whatever the battery says (domain #8)


@dataclass(frozen=True, slots=True)
class Profile:
    id: ProfileId
    name: str
    reservoir_nl: int
    capabilities: Capability
    min_rate_nl_per_day: int  # lowest non-zero programmable rate
    max_rate_nl_per_day: int  # also the priming rate
    fixed_rate_nl_per_day: int  # constant-flow pumps only; 0 otherwise
    max_schedule_steps: int
    alarms: Alarm  # the alarm set this device can raise
    battery: Battery | None  # None: propellant-driven, no battery
    accuracy_error_ppm: int  # default per-device delivery error (+ = over-infusion)
    mri: MriBehaviour
    mri_valve_leak_nl: int  # VALVE_CLOSES: what passes before the valve shuts
    default_low_threshold_nl: int
    empty_threshold_nl: int  # below this nothing can be pumped out of the reservoir
    discrepancy_limit_nl: int  # refill discrepancy regarded as consequential (domain #23)
    pump_tubing_nl: int  # internal fluid path from reservoir to catheter port
    safe_rate_nl_per_day: int  # rate forced by a low-battery reset
    post_ms: int  # power-on self test: commands answered BUSY meanwhile
    event_log_capacity: int

    def with_(self, **changes: object) -> Profile:
        """A copy with some fields changed (a custom device variant)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def supports(self, capability: Capability) -> bool:
        # on the plain ints: Flag.__and__ builds a new member and .value is a property (both
        # cost more than the test itself, once per command)
        return int(self.capabilities) & int(capability) != 0


def _synchromed(pid: ProfileId, name: str, ml: int) -> Profile:
    return Profile(
        id=pid,
        name=name,
        reservoir_nl=ml * NL_PER_ML,
        capabilities=_PROGRAMMABLE,
        min_rate_nl_per_day=48_000,  # [U] domain #42
        max_rate_nl_per_day=24_000_000,  # [U] domain #42
        fixed_rate_nl_per_day=0,
        max_schedule_steps=24,  # flex dosing, [U] domain #43
        alarms=_ALL_ALARMS,
        battery=Battery(),
        accuracy_error_ppm=10_000,  # +1 % clinical mean (domain #14)
        mri=MriBehaviour.MOTOR_STALL,
        mri_valve_leak_nl=0,
        default_low_threshold_nl=2 * NL_PER_ML,  # domain #2
        empty_threshold_nl=0,
        discrepancy_limit_nl=(1 if ml <= 20 else 2) * NL_PER_ML,  # domain #23
        pump_tubing_nl=12 * NL_PER_UL,  # [U]
        safe_rate_nl_per_day=48_000,  # [U] domain #42
        post_ms=2_000,
        event_log_capacity=4_096,
    )


def _prometra(pid: ProfileId, name: str, ml: int) -> Profile:
    return Profile(
        id=pid,
        name=name,
        reservoir_nl=ml * NL_PER_ML,
        capabilities=_PROGRAMMABLE,
        min_rate_nl_per_day=10_000,  # [U]
        max_rate_nl_per_day=28_800_000,  # [U]
        fixed_rate_nl_per_day=0,
        max_schedule_steps=24,  # [U]
        alarms=(_ALL_ALARMS | Alarm.FLOW_VALVE_CLOSED),
        battery=Battery(
            service_life_ms=10 * YEAR_MS,
            eri_used_bu=9 * YEAR_MS + 180 * DAY_MS,
            capacity_bu=10 * YEAR_MS + 30 * DAY_MS,
        ),  # [U]
        accuracy_error_ppm=-32_000,  # 96.8 % delivery accuracy (domain #26)
        mri=MriBehaviour.VALVE_CLOSES,
        mri_valve_leak_nl=10 * NL_PER_UL,  # domain #30
        default_low_threshold_nl=3 * NL_PER_ML,  # PTC refill-date residual (domain #32)
        empty_threshold_nl=0,
        discrepancy_limit_nl=(1 if ml <= 20 else 2) * NL_PER_ML,
        pump_tubing_nl=10 * NL_PER_UL,  # [U]
        safe_rate_nl_per_day=10_000,  # [U]
        post_ms=2_000,
        event_log_capacity=4_096,
    )


PROFILES: dict[ProfileId, Profile] = {
    ProfileId.SYNCHROMED_II_20: _synchromed(ProfileId.SYNCHROMED_II_20, "SynchroMed II 20 mL", 20),
    ProfileId.SYNCHROMED_II_40: _synchromed(ProfileId.SYNCHROMED_II_40, "SynchroMed II 40 mL", 40),
    ProfileId.PROMETRA_II_20: _prometra(ProfileId.PROMETRA_II_20, "Prometra II 20 mL", 20),
    ProfileId.PROMETRA_II_40: _prometra(ProfileId.PROMETRA_II_40, "Prometra II 40 mL", 40),
    ProfileId.CONSTANT_FLOW: Profile(
        id=ProfileId.CONSTANT_FLOW,
        name="Constant-flow (Codman 3000 class) 30 mL",
        reservoir_nl=30 * NL_PER_ML,  # domain #37
        capabilities=Capability.CONTINUOUS,
        min_rate_nl_per_day=500_000,
        max_rate_nl_per_day=500_000,
        fixed_rate_nl_per_day=500_000,  # 0.5 mL/day (domain 2.11)
        max_schedule_steps=0,
        alarms=Alarm.LOW_RESERVOIR | Alarm.EMPTY_RESERVOIR,
        battery=None,
        accuracy_error_ppm=0,
        mri=MriBehaviour.UNAFFECTED,
        mri_valve_leak_nl=0,
        default_low_threshold_nl=2 * NL_PER_ML,
        empty_threshold_nl=0,
        discrepancy_limit_nl=2 * NL_PER_ML,
        pump_tubing_nl=0,
        safe_rate_nl_per_day=500_000,
        post_ms=0,
        event_log_capacity=4_096,
    ),
    ProfileId.EXTERNAL_TRIAL: Profile(
        id=ProfileId.EXTERNAL_TRIAL,
        name="External trial pump (CADD-Legacy 1 class) 100 mL",
        reservoir_nl=100 * NL_PER_ML,  # 50 or 100 mL Medication Cassette reservoir (S)
        # a continuous rate, clinician boluses (the single trial injection) and priming
        capabilities=(
            Capability.CONTINUOUS
            | Capability.CLINICIAN_BOLUS
            | Capability.PRIMING_BOLUS
            | Capability.VARIABLE_RATE
        ),
        min_rate_nl_per_day=1 * NL_PER_ML,  # [U] rate in mL/24 h, from 1 mL/24 h
        max_rate_nl_per_day=3_000 * NL_PER_ML,  # [U] also the priming rate
        fixed_rate_nl_per_day=0,
        max_schedule_steps=0,
        # no battery milestones (replaceable cells: a low-cells warning); pressure and air
        # sensors (S)
        alarms=(
            Alarm.LOW_RESERVOIR
            | Alarm.EMPTY_RESERVOIR
            | Alarm.MOTOR_STALL
            | Alarm.PUMP_STOPPED
            | Alarm.CRITICAL_MEMORY_ERROR
            | Alarm.NONCRITICAL_MEMORY_ERROR
            | Alarm.DOWNSTREAM_OCCLUSION
            | Alarm.AIR_IN_LINE
            | Alarm.EXTERNAL_BATTERY_LOW
        ),
        battery=None,
        accuracy_error_ppm=0,  # bench acceptance +-6 % (S); nominal 0
        mri=MriBehaviour.MOTOR_STALL,  # [U] an external pump is taken off for a scan
        mri_valve_leak_nl=0,
        default_low_threshold_nl=5 * NL_PER_ML,  # [U]
        empty_threshold_nl=0,
        discrepancy_limit_nl=2 * NL_PER_ML,  # [U]
        pump_tubing_nl=300 * NL_PER_UL,  # [U] extension set with anti-siphon valve
        safe_rate_nl_per_day=1 * NL_PER_ML,  # unused: no battery, no low-battery reset
        post_ms=2_000,
        event_log_capacity=4_096,
    ),
}


@dataclass(frozen=True, slots=True)
class DrugLimits:
    """A drug-library entry. 0 means "no limit" for the limits."""

    drug: Drug
    unit: ConcentrationUnit
    soft_limit_ng_per_day: int
    hard_limit_ng_per_day: int
    max_rate_nl_per_day: int
    max_concentration_ng_per_ml: int
    patient_bolus_allowed: bool


def _entry(
    drug: Drug, unit: ConcentrationUnit, soft: int, hard: int, max_conc: int, patient_bolus: bool
) -> DrugLimits:
    return DrugLimits(drug, unit, soft, hard, 0, max_conc, patient_bolus)


MG, MCG = ConcentrationUnit.MG_PER_ML, ConcentrationUnit.MCG_PER_ML

# [U] An example library (daily-dose ceilings in the range of the polyanalgesic consensus);
# a clinic configures its own and hands it to Pump.create().
DEFAULT_LIBRARY: dict[Drug, DrugLimits] = {
    e.drug: e
    for e in (
        _entry(Drug.MORPHINE, MG, 15 * NG_PER_MG, 30 * NG_PER_MG, 25 * NG_PER_MG, True),
        _entry(Drug.HYDROMORPHONE, MG, 10 * NG_PER_MG, 15 * NG_PER_MG, 15 * NG_PER_MG, True),
        # Baclofen is never given as a patient bolus (domain #35).
        _entry(
            Drug.BACLOFEN, MCG, 1_000 * NG_PER_MCG, 2_000 * NG_PER_MCG, 2_000 * NG_PER_MCG, False
        ),
        _entry(Drug.ZICONOTIDE, MCG, 12 * NG_PER_MCG, 19_200, 100 * NG_PER_MCG, False),
        _entry(Drug.BUPIVACAINE, MG, 15 * NG_PER_MG, 30 * NG_PER_MG, 30 * NG_PER_MG, True),
        _entry(
            Drug.CLONIDINE, MCG, 600 * NG_PER_MCG, 1_000 * NG_PER_MCG, 1_000 * NG_PER_MCG, False
        ),
        _entry(
            Drug.FENTANYL, MCG, 1_000 * NG_PER_MCG, 2_000 * NG_PER_MCG, 2_000 * NG_PER_MCG, True
        ),
        _entry(Drug.SUFENTANIL, MCG, 500 * NG_PER_MCG, 1_000 * NG_PER_MCG, 500 * NG_PER_MCG, True),
        _entry(Drug.SALINE, MG, 0, 0, 0, False),
    )
}
