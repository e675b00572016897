"""The protocol v1 message catalogue: every message, declared once.

docs/protocol.md and tests/vectors/*.json are generated from these declarations
(`python -m protocol.gen --write`); a test fails when either is stale.
"""

from __future__ import annotations

import itertools

from ._enums import (
    Alarm,
    AlarmPriority,
    AlarmState,
    BatteryState,
    BolusKind,
    Capability,
    CommandState,
    ConcentrationUnit,
    Drug,
    EventSource,
    ProgramMode,
    PumpModel,
    Role,
    SessionEndReason,
    Tone,
)
from ._errors import ErrorCode, FieldValueError
from ._schema import (
    Access,
    CommandKind,
    Direction,
    Message,
    Record,
    array,
    blob,
    boolean,
    command_id_field,
    confirm_field,
    duplicate_field,
    enum8,
    enum16,
    flags32,
    i32,
    i64,
    message,
    program_version_field,
    record,
    text,
    timestamp,
    u8,
    u16,
    u32,
)

H2P = Direction.HOST_TO_PUMP
P2H = Direction.PUMP_TO_HOST

MAX_VOLUME_NL = 100_000_000  # 100 mL: above every reservoir, so a typo cannot wrap around
MAX_DOSE_NG = 4_000_000_000
MAX_RATE_NL_PER_DAY = 4_000_000_000
DAY_MS = 86_400_000
MAX_SCHEDULE_STEPS = 48
MAX_EVENTS_PER_PAGE = 16
MAX_ALARMS = 16
MAX_DETAIL_BYTES = 200


# --- records (array items) ---------------------------------------------------------------------


@record
class ScheduleStep(Record):
    start_minute: int = u16(
        "Minute of the day (pump clock) at which this step starts; it runs until the next "
        "step's start (the last one until midnight).",
        unit="min",
        max=1439,
    )
    dose_ng_per_day: int = u32(
        "Dose rate of this step, expressed per 24 h.", unit="ng/day", max=MAX_DOSE_NG
    )


@record
class AlarmEntry(Record):
    alarm: Alarm = flags32(Alarm, "The alarm condition (exactly one bit).")
    critical: bool = boolean("1 for a critical (two-tone) alarm, 0 for non-critical.")
    priority: AlarmPriority = enum8(AlarmPriority, "IEC 60601-1-8 priority.")
    state: AlarmState = enum8(
        AlarmState, "Whether the audible signal is active, paused or acknowledged."
    )
    raised_at_ms: int = timestamp("When the condition was raised.")
    silenced_until_ms: int = timestamp("End of the audio pause; 0 when not silenced.")
    repeat_interval_ms: int = u32("Interval between tone repetitions.", unit="ms")

    def _check(self) -> None:
        if self.alarm == 0 or self.alarm & (self.alarm - 1):
            raise FieldValueError("ALARM_ENTRY", "alarm", "must name exactly one alarm")


@record
class EventRecord(Record):
    seq: int = u32("Event sequence number: contiguous, starting at 1.", min=1)
    time_ms: int = timestamp("When the event happened.")
    kind: int = u16("Event kind (see the EventKind table; unknown kinds are shown raw).")
    source: EventSource = enum8(EventSource, "Who caused the event.")
    command_id: bytes = blob(16, "The command that caused the event; zeros if none.")
    value_a: int = i64("First kind-specific value (docs/firmware_model.md section 11).")
    value_b: int = i64("Second kind-specific value (docs/firmware_model.md section 11).")


# --- session ----------------------------------------------------------------------------------


@message(
    0x0001,
    direction=H2P,
    access=Access.OPEN,
    kind=CommandKind.SESSION,
    responses=("CHALLENGE", "ERROR"),
)
class Hello(Message):
    """Opens a handshake. Sent unauthenticated to the pump's exact serial number."""

    host_id: int = u32("Identifier the host chooses for itself (logged by the pump).")
    role: Role = enum8(Role, "The role whose key the host holds.")
    nonce: bytes = blob(16, "nonce_H: 16 fresh random bytes from the host.")


@message(0x0002, direction=P2H, access=Access.OPEN, kind=CommandKind.SESSION)
class Challenge(Message):
    """The pump's half of the handshake: proves it holds the role key."""

    session_id: int = u32("Session id chosen by the pump (random, non-zero).", min=1)
    nonce: bytes = blob(16, "nonce_P: 16 fresh random bytes from the pump.")
    tag: bytes = blob(16, "tag_P = HMAC-SHA256(K_role, 'P' || transcript)[:16].")


@message(
    0x0003,
    direction=H2P,
    access=Access.OPEN,
    kind=CommandKind.SESSION,
    responses=("SESSION_READY", "ERROR"),
)
class Confirm(Message):
    """The host's proof that it holds the role key; completes the handshake."""

    session_id: int = u32("The session id from CHALLENGE.", min=1)
    tag: bytes = blob(16, "tag_H = HMAC-SHA256(K_role, 'H' || transcript)[:16].")


@message(0x0004, direction=P2H, access=Access.SESSION, kind=CommandKind.SESSION)
class SessionReady(Message):
    """First authenticated frame of a session (pump counter 1): the keys match."""

    role: Role = enum8(Role, "The session's role.")
    idle_timeout_ms: int = u32("The session ends after this long without a valid frame.", unit="ms")
    max_lifetime_ms: int = u32("The session ends this long after the handshake.", unit="ms")


@message(
    0x0005,
    direction=H2P,
    access=Access.SESSION,
    kind=CommandKind.SESSION,
    responses=("SESSION_ENDED",),
)
class EndSession(Message):
    """Ends the session; its keys are forgotten by both ends."""


@message(0x0006, direction=P2H, access=Access.SESSION, kind=CommandKind.SESSION)
class SessionEnded(Message):
    """The session is over (answer to END_SESSION)."""

    reason: SessionEndReason = enum8(SessionEndReason, "Why the session ended.")


@message(0x000F, direction=P2H, access=Access.OPEN, kind=CommandKind.RESPONSE)
class Error(Message):
    """The request was refused; nothing was changed. Authenticated when the request's session
    was valid, otherwise plain."""

    code: ErrorCode = enum16(ErrorCode, "What went wrong (see the error table).")
    request_msg_id: int = u16("Message id of the refused request (0 if unknown).")
    command_id: bytes = blob(16, "The refused command's id; zeros if it had none.")
    detail: str = text(MAX_DETAIL_BYTES, "What to do about it, for a person to read.")


# --- read-only ----------------------------------------------------------------------------------


@message(
    0x0100,
    direction=H2P,
    access=Access.OPEN,
    kind=CommandKind.READ,
    responses=("DEVICE_INFO",),
    broadcast_ok=True,
)
class GetDeviceInfo(Message):
    """Asks the pump who it is. The only message that may use the broadcast pump id."""


@message(0x0101, direction=P2H, access=Access.OPEN, kind=CommandKind.RESPONSE)
class DeviceInfo(Message):
    """Identity and capabilities. Contains no patient data."""

    model: PumpModel = enum8(PumpModel, "Pump model / device profile.")
    serial_number: int = u32("The pump's serial number (its pump id).", min=1, max=0xFFFF_FFFE)
    firmware_major: int = u8("Firmware version, major.")
    firmware_minor: int = u8("Firmware version, minor.")
    firmware_patch: int = u8("Firmware version, patch.")
    protocol_major: int = u8("Protocol major version (the frame's version byte).", min=1)
    protocol_minor: int = u8("Protocol minor version: messages added since x.0.")
    reservoir_capacity_nl: int = u32("Reservoir capacity.", unit="nL", max=MAX_VOLUME_NL)
    min_rate_nl_per_day: int = u32("Lowest programmable non-zero rate.", unit="nL/day")
    max_rate_nl_per_day: int = u32("Highest rate (priming rate).", unit="nL/day")
    supported_modes: Capability = flags32(Capability, "What this model can do.")
    max_schedule_steps: int = u8("Steps a daily schedule may have.", max=MAX_SCHEDULE_STEPS)
    speed_factor_milli: int = u32(
        "Emulated time acceleration x1000 (1000 = real time; 0 = time paused). Hosts scale "
        "their timeouts by it. A real pump reports 1000.",
        unit="1/1000",
    )


@message(0x0102, direction=H2P, access=Access.PATIENT, kind=CommandKind.READ, responses=("STATUS",))
class GetStatus(Message):
    """Asks for the pump's status."""


@message(0x0103, direction=P2H, access=Access.SESSION, kind=CommandKind.RESPONSE)
class Status(Message):
    """The pump's state at pump_time_ms."""

    pump_time_ms: int = timestamp("The pump's clock.")
    program_version: int = u32("Bumped by every accepted program or settings change.")
    event_seq: int = u32("Sequence number of the newest event-log record.")
    mode: ProgramMode = enum8(ProgramMode, "The basal program.")
    bolus: BolusKind = enum8(BolusKind, "The bolus running, if any.")
    suspended: bool = boolean("1 while delivery is suspended by a clinician.")
    current_rate_nl_per_day: int = u32(
        "Instantaneous flow (basal + bolus), as commanded.", unit="nL/day", max=MAX_RATE_NL_PER_DAY
    )
    daily_dose_ng: int = u32("Dose the basal program delivers per 24 h.", unit="ng/day")
    drug: Drug = enum8(Drug, "Drug in the reservoir.")
    concentration_ng_per_ml: int = u32("Drug concentration.", unit="ng/mL")
    concentration_unit: ConcentrationUnit = enum8(
        ConcentrationUnit, "Display unit of the concentration."
    )
    reservoir_volume_nl: int = u32(
        "The pump's calculated reservoir volume.", unit="nL", max=MAX_VOLUME_NL
    )
    low_reservoir_threshold_nl: int = u32(
        "Low-reservoir alarm volume.", unit="nL", max=MAX_VOLUME_NL
    )
    active_alarms: Alarm = flags32(Alarm, "Alarm conditions currently raised.")
    battery: BatteryState = enum8(BatteryState, "Battery state.")
    battery_remaining_permille: int = u16("Estimated battery life left.", unit="1/1000", max=1000)
    low_reservoir_at_ms: int = timestamp("When the low-reservoir alarm is predicted; 0 = never.")
    empty_at_ms: int = timestamp("When the reservoir is predicted empty; 0 = never.")
    last_refill_at_ms: int = timestamp("Time of the last refill; 0 = none recorded.")
    replacement_due_at_ms: int = timestamp("Predicted elective-replacement date; 0 = n/a.")


@message(
    0x0104, direction=H2P, access=Access.CLINICIAN, kind=CommandKind.READ, responses=("PROGRAM",)
)
class GetProgram(Message):
    """Asks for the infusion program in detail."""


@message(0x0105, direction=P2H, access=Access.SESSION, kind=CommandKind.RESPONSE)
class Program(Message):
    """The infusion program."""

    program_version: int = u32("Version of this program.")
    mode: ProgramMode = enum8(ProgramMode, "The basal program.")
    suspended: bool = boolean("1 while delivery is suspended.")
    dose_ng_per_day: int = u32("CONTINUOUS / BRIDGE target: daily dose.", unit="ng/day")
    rate_nl_per_day: int = u32("Basal rate now.", unit="nL/day", max=MAX_RATE_NL_PER_DAY)
    bridge_ends_at_ms: int = timestamp("BRIDGE: when the bridge phase ends; 0 otherwise.")
    bolus: BolusKind = enum8(BolusKind, "The bolus running, if any.")
    bolus_dose_ng: int = u32("Dose of the running bolus.", unit="ng")
    bolus_delivered_ng: int = u32("Dose delivered so far by the running bolus.", unit="ng")
    bolus_ends_at_ms: int = timestamp("When the running bolus ends; 0 if none.")
    steps: tuple[ScheduleStep, ...] = array(
        ScheduleStep, MAX_SCHEDULE_STEPS, "SCHEDULE: the daily steps; empty otherwise."
    )


@message(
    0x0106, direction=H2P, access=Access.CLINICIAN, kind=CommandKind.READ, responses=("DRUG_INFO",)
)
class GetDrug(Message):
    """Asks for the drug, its concentration and its drug-library limits."""


@message(0x0107, direction=P2H, access=Access.SESSION, kind=CommandKind.RESPONSE)
class DrugInfo(Message):
    """Drug, concentration and the drug library's limits for it."""

    drug: Drug = enum8(Drug, "Drug in the reservoir.")
    concentration_ng_per_ml: int = u32("Concentration.", unit="ng/mL")
    concentration_unit: ConcentrationUnit = enum8(ConcentrationUnit, "Display unit.")
    soft_limit_ng_per_day: int = u32(
        "Soft daily-dose limit (needs confirmation); 0 = none.", unit="ng/day"
    )
    hard_limit_ng_per_day: int = u32(
        "Hard daily-dose limit (never passed); 0 = none.", unit="ng/day"
    )
    max_rate_nl_per_day: int = u32("Drug library's maximum rate; 0 = pump maximum.", unit="nL/day")
    patient_bolus_allowed: bool = boolean("Whether this drug may be given as a patient bolus.")


@message(
    0x0108,
    direction=H2P,
    access=Access.PATIENT,
    kind=CommandKind.READ,
    responses=("PATIENT_BOLUS_SETTINGS",),
)
class GetPatientBolus(Message):
    """Asks for the patient-activated bolus settings and the lockout state."""


@message(0x0109, direction=P2H, access=Access.SESSION, kind=CommandKind.RESPONSE)
class PatientBolusSettings(Message):
    """Patient-activated bolus settings and where the patient stands right now."""

    enabled: bool = boolean("1 when the patient may request boluses.")
    dose_ng: int = u32("Dose per bolus.", unit="ng", max=MAX_DOSE_NG)
    duration_ms: int = u32("Duration of one bolus.", unit="ms", max=DAY_MS)
    lockout_ms: int = u32(
        "Minimum time from the start of one bolus to the next.", unit="ms", max=DAY_MS
    )
    max_per_24h: int = u8("Most boluses in any sliding 24 h.", max=48)
    boluses_in_window: int = u8("Boluses started in the last 24 h.", max=255)
    lockout_ends_at_ms: int = timestamp("When the next bolus may start; 0 = now.")


@message(
    0x010A, direction=H2P, access=Access.PATIENT, kind=CommandKind.READ, responses=("ALARM_LIST",)
)
class GetAlarms(Message):
    """Asks for the raised alarms."""


@message(0x010B, direction=P2H, access=Access.SESSION, kind=CommandKind.RESPONSE)
class AlarmList(Message):
    """Every raised alarm, highest priority first."""

    alarms: tuple[AlarmEntry, ...] = array(AlarmEntry, MAX_ALARMS, "The raised alarms.")


@message(
    0x010C, direction=H2P, access=Access.PATIENT, kind=CommandKind.READ, responses=("EVENT_PAGE",)
)
class GetEvents(Message):
    """Reads the event log, oldest first, one page at a time."""

    cursor: int = u32("Sequence number to start from (0 = oldest kept).")
    max_count: int = u8("Most records to return.", min=1, max=MAX_EVENTS_PER_PAGE)


@message(0x010D, direction=P2H, access=Access.SESSION, kind=CommandKind.RESPONSE)
class EventPage(Message):
    """One page of the event log."""

    next_cursor: int = u32("Cursor for the next page (seq after the last record returned).")
    oldest_seq: int = u32("Oldest record the pump still keeps (older ones were overwritten).")
    more: bool = boolean("1 when records at or after next_cursor exist.")
    events: tuple[EventRecord, ...] = array(EventRecord, MAX_EVENTS_PER_PAGE, "The records.")


@message(0x010E, direction=H2P, access=Access.PATIENT, kind=CommandKind.READ, responses=("CLOCK",))
class GetClock(Message):
    """Reads the pump clock."""


@message(0x010F, direction=P2H, access=Access.SESSION, kind=CommandKind.RESPONSE)
class Clock(Message):
    """The pump clock."""

    pump_time_ms: int = timestamp("The pump's clock.")
    speed_factor_milli: int = u32("Time acceleration x1000 (see DEVICE_INFO).", unit="1/1000")


@message(
    0x0110,
    direction=H2P,
    access=Access.PATIENT,
    kind=CommandKind.READ,
    responses=("COMMAND_STATUS",),
)
class GetCommandStatus(Message):
    """Resolves an unknown outcome: did the pump apply this command id?"""

    command_id: bytes = blob(16, "The command id to look up.")


@message(0x0111, direction=P2H, access=Access.SESSION, kind=CommandKind.RESPONSE)
class CommandStatus(Message):
    """The fate of a command id."""

    command_id: bytes = blob(16, "The command id looked up.")
    state: CommandState = enum8(CommandState, "UNKNOWN means never committed: safe to send it.")
    error_code: int = u16("REJECTED: the ErrorCode it got; 0 otherwise.")
    program_version: int = u32("APPLIED: program version after it.")
    event_seq: int = u32("APPLIED: event-log seq of its effect.")


@message(
    0x0112,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.READ,
    responses=("ALARM_SETTINGS",),
)
class GetAlarmSettings(Message):
    """Reads the alarm settings."""


@message(0x0113, direction=P2H, access=Access.SESSION, kind=CommandKind.RESPONSE)
class AlarmSettings(Message):
    """The alarm settings."""

    low_reservoir_threshold_nl: int = u32(
        "Low-reservoir alarm volume.", unit="nL", max=MAX_VOLUME_NL
    )
    critical_repeat_ms: int = u32("Repeat interval of critical tones.", unit="ms")
    noncritical_repeat_ms: int = u32("Repeat interval of non-critical tones.", unit="ms")


@message(0x01F0, direction=P2H, access=Access.OPEN, kind=CommandKind.RESPONSE)
class TelemetryBeacon(Message):
    """Pushed periodically by the pump (MQTT telemetry topic). No patient data, unauthenticated."""

    beacon_counter: int = u32("Increments with every beacon since power-on.")
    pump_time_ms: int = timestamp("The pump's clock.")
    speed_factor_milli: int = u32("Time acceleration x1000.", unit="1/1000")
    delivering: bool = boolean("1 while drug is flowing.")
    active_alarms: Alarm = flags32(Alarm, "Alarm conditions currently raised.")
    battery: BatteryState = enum8(BatteryState, "Battery state.")


# --- therapy (clinician) ---------------------------------------------------------------------


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

    def _check(self) -> None:
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


# --- other state-changing commands (clinician) --------------------------------------------------


@message(
    0x0300,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.COMMAND,
    responses=("COMMAND_ACK", "ERROR"),
)
class AcknowledgeAlarms(Message):
    """Acknowledges alarms (indefinite silence of those conditions; they stay raised)."""

    command_id: bytes = command_id_field()
    alarms: Alarm = flags32(Alarm, "The alarms to acknowledge (at least one).")

    def _check(self) -> None:
        if not self.alarms:
            raise FieldValueError("ACKNOWLEDGE_ALARMS", "alarms", "name at least one alarm")


@message(
    0x0301,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.COMMAND,
    responses=("COMMAND_ACK", "ERROR"),
)
class SilenceAlarms(Message):
    """Pauses the audible signal of alarms for a while; it returns if unresolved."""

    command_id: bytes = command_id_field()
    alarms: Alarm = flags32(Alarm, "The alarms to silence (at least one).")
    duration_ms: int = u32("How long.", unit="ms", min=1_000, max=DAY_MS)

    def _check(self) -> None:
        if not self.alarms:
            raise FieldValueError("SILENCE_ALARMS", "alarms", "name at least one alarm")


@message(
    0x0302,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.COMMAND,
    responses=("COMMAND_ACK", "ERROR"),
)
class AlarmTest(Message):
    """Sounds a tone so the patient learns it. Delivery is not affected."""

    command_id: bytes = command_id_field()
    tone: Tone = enum8(Tone, "Which tone.")


@message(
    0x0303,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.COMMAND,
    responses=("COMMAND_ACK", "ERROR"),
)
class SetClock(Message):
    """Sets the pump clock (time zone and daylight changes are the host's business)."""

    command_id: bytes = command_id_field()
    pump_time_ms: int = timestamp("New pump clock value.")


# --- patient -------------------------------------------------------------------------------------


@message(
    0x0400,
    direction=H2P,
    access=Access.PATIENT,
    kind=CommandKind.THERAPY,
    responses=("PATIENT_BOLUS_ACCEPTED", "ERROR"),
)
class RequestPatientBolus(Message):
    """The patient asks for one bolus with the programmed settings. Refused (never queued)
    inside the lockout, over the 24 h cap, when disabled, or with a critical alarm."""

    command_id: bytes = command_id_field()
    expected_program_version: int = program_version_field()


@message(0x0401, direction=P2H, access=Access.SESSION, kind=CommandKind.RESPONSE)
class PatientBolusAccepted(Message):
    """The patient bolus was started."""

    command_id: bytes = blob(16, "The request's command id.")
    duplicate: bool = duplicate_field()
    dose_ng: int = u32("Dose of this bolus.", unit="ng")
    ends_at_ms: int = timestamp("When the bolus will have been delivered.")
    lockout_ends_at_ms: int = timestamp("When the next bolus may start.")
    boluses_left: int = u8("Boluses still allowed in the sliding 24 h window.")


# --- responses -----------------------------------------------------------------------------------


@message(0x0500, direction=P2H, access=Access.SESSION, kind=CommandKind.RESPONSE)
class CommandAck(Message):
    """The command was applied and committed (acknowledged means durable)."""

    command_id: bytes = blob(16, "The command's id.")
    duplicate: bool = duplicate_field()
    program_version: int = u32("Program version after the command.")
    event_seq: int = u32("Event-log seq of the command's effect.")


@message(0x0501, direction=P2H, access=Access.SESSION, kind=CommandKind.RESPONSE)
class RefillResult(Message):
    """The refill was recorded: discrepancy report and new alarm dates."""

    command_id: bytes = blob(16, "The command's id.")
    duplicate: bool = duplicate_field()
    program_version: int = u32("Program version after the refill.")
    event_seq: int = u32("Event-log seq of the refill record.")
    expected_residual_nl: int = u32("Volume the pump expected to be withdrawn.", unit="nL")
    discrepancy_nl: int = i32(
        "withdrawn - expected: negative = less came back (over-delivery or pocket loss), "
        "positive = more came back (under-delivery: stall, occlusion).",
        unit="nL",
    )
    delivery_ratio_ppm: int = u32(
        "(filled - withdrawn) / (filled - expected) since the previous refill; 1000000 = as "
        "programmed, > 1000000 = over-delivery; 0 when it cannot be computed (less than "
        "the pump's discrepancy limit was expected to be delivered: too little to judge).",
        unit="1/1000000",
    )
    beyond_limits: bool = boolean(
        "1 when the discrepancy exceeds the pump's limit (1 mL for 20 mL, 2 mL for 40 mL) or "
        "the ratio is more than 14.5 % from 1: investigate (pocket fill, stall, occlusion)."
    )
    reservoir_volume_nl: int = u32("Calculated volume after the refill.", unit="nL")
    low_reservoir_at_ms: int = timestamp("Predicted low-reservoir alarm; 0 = never.")
    empty_at_ms: int = timestamp("Predicted empty reservoir; 0 = never.")
