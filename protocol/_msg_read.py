"""Catalogue, read-only part (ids 0x0100-0x01F0): the GET_* requests, each paired with the
response that answers it (device info, status, program, drug, patient bolus, alarms, event log,
clock, command status, alarm settings), and the unauthenticated telemetry beacon. None of these
changes pump state. Part of the catalogue assembled in `_messages.py`.
"""

from __future__ import annotations

from ._enums import (
    Alarm,
    BatteryState,
    BolusKind,
    Capability,
    CommandState,
    ConcentrationUnit,
    Drug,
    ProgramMode,
    PumpModel,
)
from ._msg_records import (
    DAY_MS,
    H2P,
    MAX_ALARMS,
    MAX_DOSE_NG,
    MAX_EVENTS_PER_PAGE,
    MAX_RATE_NL_PER_DAY,
    MAX_SCHEDULE_STEPS,
    MAX_UTC_OFFSET_MS,
    MAX_VOLUME_NL,
    P2H,
    ZONE_NAME_MAX,
    AlarmEntry,
    EventRecord,
    ScheduleStep,
)
from ._schema import (
    Access,
    CommandKind,
    Message,
    array,
    blob,
    boolean,
    enum8,
    flags32,
    i32,
    message,
    text,
    timestamp,
    u8,
    u16,
    u32,
)


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


@message(
    0x0114,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.READ,
    responses=("CATHETER_INFO",),
)
class GetCatheterInfo(Message):
    """Reads the fluid path's volumes the pump holds (protocol 1.1; a 1.0 pump answers
    UNKNOWN_MESSAGE)."""


@message(0x0115, direction=P2H, access=Access.SESSION, kind=CommandKind.RESPONSE)
class CatheterInfo(Message):
    """The fluid path between the reservoir and the catheter tip: what a priming bolus must
    push and what a bridge must flush after a concentration change (their sum)."""

    catheter_volume_nl: int = u32(
        "Implanted catheter's internal volume (implanted length x volume per cm), recorded at "
        "implant.",
        unit="nL",
        max=MAX_VOLUME_NL,
    )
    pump_tubing_nl: int = u32(
        "The pump's internal fluid path, reservoir to catheter port.", unit="nL", max=MAX_VOLUME_NL
    )


@message(
    0x0116, direction=H2P, access=Access.PATIENT, kind=CommandKind.READ, responses=("CLOCK_LOCAL",)
)
class GetClockLocal(Message):
    """Reads the pump clock with the clinic's local time (protocol 1.1; a 1.0 pump answers
    UNKNOWN_MESSAGE: a host then reads CLOCK and assumes UTC)."""


@message(0x0117, direction=P2H, access=Access.SESSION, kind=CommandKind.RESPONSE)
class ClockLocal(Message):
    """The pump clock and the local-time offset and zone set at the last sync."""

    pump_time_ms: int = timestamp("The pump's clock.")
    speed_factor_milli: int = u32("Time acceleration x1000 (see DEVICE_INFO).", unit="1/1000")
    utc_offset_ms: int = i32(
        "The offset the pump holds: its local time (schedules run on it) is pump_time_ms + "
        "this (whole minutes). Unchanged by daylight saving time until a host syncs the clock.",
        unit="ms",
        min=-MAX_UTC_OFFSET_MS,
        max=MAX_UTC_OFFSET_MS,
    )
    zone: str = text(ZONE_NAME_MAX, "IANA name of the zone the offset was set for (display only).")


@message(0x01F0, direction=P2H, access=Access.OPEN, kind=CommandKind.RESPONSE)
class TelemetryBeacon(Message):
    """Pushed periodically by the pump (MQTT telemetry topic). No patient data, unauthenticated."""

    beacon_counter: int = u32("Increments with every beacon since power-on.")
    pump_time_ms: int = timestamp("The pump's clock.")
    speed_factor_milli: int = u32("Time acceleration x1000.", unit="1/1000")
    delivering: bool = boolean("1 while drug is flowing.")
    active_alarms: Alarm = flags32(Alarm, "Alarm conditions currently raised.")
    battery: BatteryState = enum8(BatteryState, "Battery state.")
