"""Catalogue, therapy part (ids 0x0200-0x020B): the clinician commands that change the
therapy (drug, dose, schedule, boluses, priming, bridge, patient-bolus settings, refill, alarm
settings, suspend and resume). Each carries a command_id (applied at most once) and the
expected_program_version it was computed from (compare-and-set), and is answered by COMMAND_ACK,
REFILL_RESULT or ERROR. Part of the catalogue assembled in `_messages.py`.
"""

from __future__ import annotations

import itertools

from ._enums import ConcentrationUnit, Drug
from ._errors import FieldValueError
from ._msg_records import DAY_MS, H2P, MAX_DOSE_NG, MAX_SCHEDULE_STEPS, MAX_VOLUME_NL, ScheduleStep
from ._rules import increasing, rules
from ._schema import (
    Access,
    CommandKind,
    Message,
    array,
    boolean,
    command_id_field,
    confirm_field,
    enum8,
    message,
    program_version_field,
    u8,
    u32,
)


@message(
    0x0200,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.THERAPY,
    responses=("COMMAND_ACK", "ERROR"),
)
class SetDrug(Message):
    """Changes the drug and concentration record (e.g. to correct an entry). A drug or
    concentration change stops the basal program until it is re-confirmed with
    SET_CONTINUOUS_DOSE, SET_SCHEDULE or START_BRIDGE, and disables the patient bolus. On a
    constant-flow pump the dose follows the concentration at once and is checked against the
    drug's limits."""

    command_id: bytes = command_id_field()
    expected_program_version: int = program_version_field()
    drug: Drug = enum8(Drug, "New drug.")
    concentration_ng_per_ml: int = u32("New concentration.", unit="ng/mL", min=1)
    concentration_unit: ConcentrationUnit = enum8(ConcentrationUnit, "Display unit.")
    confirm_soft_limit: bool = confirm_field()


@message(
    0x0201,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.THERAPY,
    responses=("COMMAND_ACK", "ERROR"),
)
class SetContinuousDose(Message):
    """Simple continuous mode at a daily dose; the pump derives the rate from the concentration."""

    command_id: bytes = command_id_field()
    expected_program_version: int = program_version_field()
    dose_ng_per_day: int = u32("Daily dose.", unit="ng/day", max=MAX_DOSE_NG)
    confirm_soft_limit: bool = confirm_field()


@message(
    0x0202,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.THERAPY,
    responses=("COMMAND_ACK", "ERROR"),
)
class SetSchedule(Message):
    """Multi-step daily schedule. Steps are sorted, the first starts at minute 0."""

    command_id: bytes = command_id_field()
    expected_program_version: int = program_version_field()
    confirm_soft_limit: bool = confirm_field()
    steps: tuple[ScheduleStep, ...] = array(
        ScheduleStep, MAX_SCHEDULE_STEPS, "The steps, by start minute.", min_count=1
    )

    @rules(increasing("steps", "start_minute", first=0))
    def _check(self) -> None:
        """The steps' `start_minute` values begin at 0 and strictly increase."""
        starts = [s.start_minute for s in self.steps]
        if starts[0] != 0 or any(b <= a for a, b in itertools.pairwise(starts)):
            raise FieldValueError(
                "SET_SCHEDULE", "steps", "start minutes must begin at 0 and strictly increase"
            )


@message(
    0x0203,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.THERAPY,
    responses=("COMMAND_ACK", "ERROR"),
)
class StartClinicianBolus(Message):
    """A clinician bolus: on top of the running program (which resumes), or a single bolus
    after which the pump is stopped."""

    command_id: bytes = command_id_field()
    expected_program_version: int = program_version_field()
    dose_ng: int = u32("Bolus dose.", unit="ng", min=1, max=MAX_DOSE_NG)
    duration_ms: int = u32("Bolus duration.", unit="ms", min=60_000, max=DAY_MS)
    then_stop: bool = boolean("1: single bolus, then stopped mode; 0: the program resumes.")
    confirm_soft_limit: bool = confirm_field()


@message(
    0x0204,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.THERAPY,
    responses=("COMMAND_ACK", "ERROR"),
)
class CancelBolus(Message):
    """Cancels the running bolus; the delivered part is logged."""

    command_id: bytes = command_id_field()
    expected_program_version: int = program_version_field()


@message(
    0x0205,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.THERAPY,
    responses=("COMMAND_ACK", "ERROR"),
)
class StartPrimingBolus(Message):
    """Pushes drug through pump tubing and catheter at the maximum rate (after implant or
    catheter revision), then runs the program."""

    command_id: bytes = command_id_field()
    expected_program_version: int = program_version_field()
    volume_nl: int = u32(
        "Fluid-path volume to prime (tubing + catheter).", unit="nL", min=1, max=5_000_000
    )


@message(
    0x0206,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.THERAPY,
    responses=("COMMAND_ACK", "ERROR"),
)
class StartBridge(Message):
    """After a concentration change: run the old concentration's rate until the dead volume is
    flushed, then continuous at the new concentration (domain.md 2.3)."""

    command_id: bytes = command_id_field()
    expected_program_version: int = program_version_field()
    dead_volume_nl: int = u32(
        "Catheter + pump tubing volume holding old drug.", unit="nL", min=1, max=5_000_000
    )
    previous_concentration_ng_per_ml: int = u32(
        "Concentration of the drug in the dead volume.", unit="ng/mL", min=1
    )
    dose_ng_per_day: int = u32(
        "Daily dose, kept through the bridge.", unit="ng/day", max=MAX_DOSE_NG
    )
    confirm_soft_limit: bool = confirm_field()


@message(
    0x0207,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.THERAPY,
    responses=("COMMAND_ACK", "ERROR"),
)
class SetPatientBolus(Message):
    """Patient-activated bolus settings."""

    command_id: bytes = command_id_field()
    expected_program_version: int = program_version_field()
    enabled: bool = boolean("1 to allow patient boluses.")
    dose_ng: int = u32("Dose per bolus.", unit="ng", max=MAX_DOSE_NG)
    duration_ms: int = u32("Duration of one bolus.", unit="ms", min=60_000, max=DAY_MS)
    lockout_ms: int = u32(
        "From the start of one bolus to the next; never 0.", unit="ms", min=60_000, max=DAY_MS
    )
    max_per_24h: int = u8("Most boluses in any sliding 24 h.", min=1, max=48)
    confirm_soft_limit: bool = confirm_field()


@message(
    0x0208,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.THERAPY,
    responses=("REFILL_RESULT", "ERROR"),
)
class RecordRefill(Message):
    """Records a refill: what was withdrawn, what was added, the (new) drug, the threshold."""

    command_id: bytes = command_id_field()
    expected_program_version: int = program_version_field()
    withdrawn_volume_nl: int = u32(
        "Volume aspirated (the true residual).", unit="nL", max=MAX_VOLUME_NL
    )
    added_volume_nl: int = u32("Volume injected.", unit="nL", max=MAX_VOLUME_NL)
    drug: Drug = enum8(Drug, "Drug now in the reservoir.")
    concentration_ng_per_ml: int = u32("Concentration now in the reservoir.", unit="ng/mL", min=1)
    concentration_unit: ConcentrationUnit = enum8(ConcentrationUnit, "Display unit.")
    low_reservoir_threshold_nl: int = u32(
        "Low-reservoir alarm volume.", unit="nL", max=MAX_VOLUME_NL
    )
    confirm_soft_limit: bool = confirm_field()


@message(
    0x0209,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.THERAPY,
    responses=("COMMAND_ACK", "ERROR"),
)
class SetAlarmSettings(Message):
    """Alarm settings."""

    command_id: bytes = command_id_field()
    expected_program_version: int = program_version_field()
    low_reservoir_threshold_nl: int = u32(
        "Low-reservoir alarm volume.", unit="nL", max=MAX_VOLUME_NL
    )
    critical_repeat_ms: int = u32(
        "Repeat interval of critical tones.", unit="ms", min=60_000, max=DAY_MS
    )
    noncritical_repeat_ms: int = u32(
        "Repeat interval of non-critical tones.", unit="ms", min=60_000, max=DAY_MS
    )


@message(
    0x020A,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.THERAPY,
    responses=("COMMAND_ACK", "ERROR"),
)
class Suspend(Message):
    """Stops delivery (stopped-pump mode) until RESUME."""

    command_id: bytes = command_id_field()
    expected_program_version: int = program_version_field()


@message(
    0x020B,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.THERAPY,
    responses=("COMMAND_ACK", "ERROR"),
)
class Resume(Message):
    """Resumes the program after SUSPEND."""

    command_id: bytes = command_id_field()
    expected_program_version: int = program_version_field()
