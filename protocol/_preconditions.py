"""The pump's state rules, as data: a fresh pump's starting state, and for every command the
states in which the pump refuses it, with the error code. Rendered into docs/protocol.md
section 16 by `protocol.gen`; tests/test_spec_preconditions.py drives every command into every
state listed here against the pump and checks the code, so the table is the behaviour.

Only refusals that depend on the pump's *state* are listed. A value outside the documented
range (`INVALID_VALUE`), a dose over the drug library's limits (`HARD_LIMIT`,
`SOFT_LIMIT_UNCONFIRMED`) or a rate outside the pump's range (`RATE_OUT_OF_RANGE`) can be refused
in any state; so can the exactly-once and version checks of section 17.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import ErrorCode


@dataclass(frozen=True, slots=True)
class PumpState:
    code: ErrorCode  # the refusal in this state
    text: str  # the state, as a reader sees it


# The states, by key; each command lists its keys in the order the pump checks them.
STATES: dict[str, PumpState] = {
    "self_test": PumpState(
        ErrorCode.BUSY,
        "the power-on self test is running (the detail says for how long)",
    ),
    "end_of_service": PumpState(ErrorCode.PUMP_STOPPED, "the battery is at end of service"),
    "capability": PumpState(
        ErrorCode.MODE_NOT_SUPPORTED,
        "the pump model lacks a capability it needs:",
    ),
    "no_drug": PumpState(
        ErrorCode.INVALID_STATE, "no drug is recorded (a fresh pump: record a refill first)"
    ),
    "drug_no_patient_bolus": PumpState(
        ErrorCode.DRUG_NOT_ALLOWED,
        "enabling, and the drug library does not allow the drug as a patient bolus",
    ),
    "patient_bolus_disabled": PumpState(
        ErrorCode.BOLUS_DISABLED, "the patient bolus is not enabled"
    ),
    "lockout": PumpState(
        ErrorCode.BOLUS_LOCKOUT, "inside the lockout after the last patient bolus"
    ),
    "cap_reached": PumpState(
        ErrorCode.BOLUS_CAP_REACHED, "the patient boluses allowed per 24 h have been given"
    ),
    "critical_alarm": PumpState(ErrorCode.ALARM_ACTIVE, "a critical alarm is raised"),
    "awaiting_program": PumpState(
        ErrorCode.INVALID_STATE,
        "awaiting a program: no SET_CONTINUOUS_DOSE, SET_SCHEDULE or START_BRIDGE since the "
        "first refill or the last change of drug or concentration",
    ),
    "suspended": PumpState(ErrorCode.INVALID_STATE, "the pump is suspended"),
    "bolus_running": PumpState(ErrorCode.INVALID_STATE, "a bolus is running"),
    "bolus_running_drug_change": PumpState(
        ErrorCode.INVALID_STATE, "a bolus is running and the drug or concentration would change"
    ),
    "reservoir_short": PumpState(
        ErrorCode.INSUFFICIENT_VOLUME,
        "the reservoir (calculated volume above the empty threshold) holds less than the bolus",
    ),
    "already_stopped": PumpState(
        ErrorCode.INVALID_STATE, "the pump is already suspended or has no program (stopped mode)"
    ),
    "not_suspended": PumpState(ErrorCode.INVALID_STATE, "the pump is not suspended"),
    "no_bolus": PumpState(ErrorCode.INVALID_STATE, "no bolus is running"),
    "no_such_alarm": PumpState(
        ErrorCode.INVALID_STATE, "none of the named alarms is raised (for SILENCE: unacknowledged)"
    ),
}

# Per command message: (state key, capability name for "capability" rows or "").
_CAP = "capability"
PRECONDITIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "SET_DRUG": (("self_test", ""), ("end_of_service", ""), ("bolus_running_drug_change", "")),
    "SET_CONTINUOUS_DOSE": (
        ("self_test", ""), ("end_of_service", ""), (_CAP, "CONTINUOUS, VARIABLE_RATE"),
        ("no_drug", ""),
    ),
    "SET_SCHEDULE": (
        ("self_test", ""), ("end_of_service", ""), (_CAP, "SCHEDULE"), ("no_drug", ""),
    ),
    "START_CLINICIAN_BOLUS": (
        ("self_test", ""), ("end_of_service", ""), (_CAP, "CLINICIAN_BOLUS"), ("no_drug", ""),
        ("critical_alarm", ""), ("awaiting_program", ""), ("suspended", ""),
        ("bolus_running", ""), ("reservoir_short", ""),
    ),
    "CANCEL_BOLUS": (("self_test", ""), ("no_bolus", "")),
    "START_PRIMING_BOLUS": (
        ("self_test", ""), ("end_of_service", ""), (_CAP, "PRIMING_BOLUS"), ("no_drug", ""),
        ("critical_alarm", ""), ("awaiting_program", ""), ("suspended", ""),
        ("bolus_running", ""), ("reservoir_short", ""),
    ),
    "START_BRIDGE": (
        ("self_test", ""), ("end_of_service", ""), (_CAP, "BRIDGE"), ("no_drug", ""),
    ),
    "SET_PATIENT_BOLUS": (
        ("self_test", ""), ("end_of_service", ""), (_CAP, "PATIENT_BOLUS"), ("no_drug", ""),
        ("drug_no_patient_bolus", ""),
    ),
    "RECORD_REFILL": (("self_test", ""), ("end_of_service", ""), ("bolus_running", "")),
    "SET_ALARM_SETTINGS": (("self_test", ""),),
    "SUSPEND": (
        ("self_test", ""), ("end_of_service", ""), (_CAP, "VARIABLE_RATE"),
        ("already_stopped", ""),
    ),
    "RESUME": (("self_test", ""), ("end_of_service", ""), ("not_suspended", "")),
    "ACKNOWLEDGE_ALARMS": (("no_such_alarm", ""),),
    "SILENCE_ALARMS": (("no_such_alarm", ""),),
    "ALARM_TEST": (("self_test", ""),),
    "SET_CLOCK": (("self_test", ""),),
    "SET_CLOCK_LOCAL": (("self_test", ""),),
    "REQUEST_PATIENT_BOLUS": (
        ("self_test", ""), ("end_of_service", ""), ("patient_bolus_disabled", ""),
        ("lockout", ""), ("cap_reached", ""), ("critical_alarm", ""), ("awaiting_program", ""),
        ("suspended", ""), ("bolus_running", ""), ("reservoir_short", ""),
    ),
}  # fmt: skip

# A fresh pump, as it leaves provisioning (what STATUS, PROGRAM and DEVICE_INFO then say).
STARTING_STATE: tuple[tuple[str, str], ...] = (
    ("self test", "running for the first 2 s after power-on (none on a constant-flow pump): "
     "commands answered `BUSY` (except alarm acknowledge and silence), reads answered"),
    ("drug", "`NONE`, concentration 0: a refill (`RECORD_REFILL`) records the first drug"),
    ("program", "mode `STOPPED` (a constant-flow pump: `CONTINUOUS` at its fixed rate), not "
     "suspended, no schedule, no bolus, dose 0"),
    ("program version", "1"),
    ("reservoir", "calculated volume 0 nL (empty); low-reservoir threshold the model's default "
     "(2 mL on a SynchroMed II)"),
    ("catheter", "the catheter and pump tubing hold drug-free fluid (uncharged): drug reaches "
     "the patient only after that dead volume is pushed through (priming bolus, or the basal "
     "rate)"),
    ("patient bolus", "disabled, dose 0, duration 10 min, lockout 60 min, 0 per 24 h"),
    ("alarms", "none raised; critical repeat 10 min, non-critical repeat 60 min"),
    ("battery", "`OK` (`NOT_APPLICABLE` on pumps without a battery)"),
    ("clock", "the pump clock as provisioned, UTC offset 0, zone `UTC`"),
    ("event log", "one record: `POWER_ON` (seq 1)"),
)  # fmt: skip
