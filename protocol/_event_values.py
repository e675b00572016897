"""What `value_a` and `value_b` of an `EventRecord` mean, per `EventKind`: the one source of the
tables in docs/protocol.md section 16, docs/firmware_model.md section 11 (the records the model
writes) and docs/emulator.md section 8 (the records the runtime adds). `python -m protocol.gen
--write` renders all three; a test checks that every kind has its entry.

Enum names in the texts (`Mode`, `Drug`, `ErrorCode`, ...) are the enumerations of section 15:
the value is that enum's number (an `Alarm` value is its bit).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._enums import EventKind


@dataclass(frozen=True, slots=True)
class EventValues:
    a: str  # what value_a means
    b: str  # what value_b means
    runtime: bool = False  # written by the pump's runtime (sessions, security, control)
    source: str = ""  # the record's EventSource, where it is always the same


# fmt: off
EVENT_VALUES: dict[EventKind, EventValues] = {
    EventKind.POWER_ON: EventValues("`PumpModel` (profile id)", "serial number"),
    EventKind.PROGRAM_CHANGED: EventValues("new `ProgramMode`", "daily dose, ng/day (0 when stopped)"),  # noqa: E501
    EventKind.DRUG_CHANGED: EventValues("`Drug`", "concentration, ng/mL"),
    EventKind.REFILL: EventValues("added volume, nL", "discrepancy, nL (withdrawn - expected)"),
    EventKind.BOLUS_STARTED: EventValues("`BolusKind`", "dose, ng"),
    EventKind.BOLUS_COMPLETED: EventValues("`BolusKind`", "dose delivered, ng"),
    EventKind.BOLUS_CANCELLED: EventValues("`BolusKind`", "dose delivered before the cancel, ng"),
    EventKind.BOLUS_DENIED: EventValues("`ErrorCode` of the refusal", "ms until a bolus is possible (lockout, cap), else 0"),  # noqa: E501
    EventKind.PATIENT_BOLUS_SETTINGS: EventValues("1 enabled / 0 disabled", "dose per bolus, ng"),
    EventKind.ALARM_RAISED: EventValues("`Alarm` bit", "`AlarmPriority`"),
    EventKind.ALARM_CLEARED: EventValues("`Alarm` bit", "0"),
    EventKind.ALARM_SILENCED: EventValues("`Alarm` bits", "silenced until, pump clock ms"),
    EventKind.ALARM_ACKNOWLEDGED: EventValues("`Alarm` bits", "0"),
    EventKind.ALARM_TEST: EventValues("`Tone`", "0"),
    EventKind.MOTOR_STALL: EventValues("cause: 0 fault, 1 MRI", "0"),
    EventKind.MOTOR_RECOVERED: EventValues("stall duration, ms", "0"),
    EventKind.SUSPENDED: EventValues("`ProgramMode` that was running", "0"),
    EventKind.RESUMED: EventValues("`ProgramMode` that runs again", "0"),
    EventKind.CLOCK_SET: EventValues("old pump clock, ms", "new pump clock, ms"),
    EventKind.ALARM_SETTINGS: EventValues("low-reservoir threshold, nL", "critical repeat, ms"),
    EventKind.BATTERY: EventValues("`BatteryState`", "battery left, 1/1000"),
    EventKind.MRI_EXPOSURE: EventValues("MRI behaviour of the pump model: 1 MOTOR_STALL, 2 VALVE_CLOSES, 3 UNAFFECTED", "scan duration, ms"),  # noqa: E501
    EventKind.FAULT: EventValues("fault kind: 1 MOTOR_STALL, 2 CATHETER_OCCLUSION, 3 CATHETER_LEAK, 4 POCKET_FILL, 5 CRITICAL_MEMORY_ERROR, 6 NONCRITICAL_MEMORY_ERROR, 7 MRI_EXPOSURE, 8 DELIVERY_INACCURACY, 9 PREMATURE_ERI, 10 PREMATURE_EOS, 11 LOW_BATTERY_RESET, 12 FLOW_VALVE_CLOSED, 13 AIR_IN_LINE, 14 EXTERNAL_BATTERY_LOW, 15 CATHETER_KINK, 16 CATHETER_GRANULOMA (docs/firmware_model.md section 10)", "1 injected / 0 cleared, or its parameter (POCKET_FILL: the volume that missed the reservoir, nL)"),  # noqa: E501
    EventKind.SECURITY: EventValues("`ErrorCode` of the refusal", "number of frames refused with it since the last record of that code", runtime=True, source="programmer"),  # noqa: E501
    EventKind.SESSION_OPENED: EventValues("`Role`", "session id", runtime=True, source="programmer"),  # noqa: E501
    EventKind.SESSION_CLOSED: EventValues("`SessionEndReason`", "session id", runtime=True, source="programmer"),  # noqa: E501
    EventKind.COMMAND_REJECTED: EventValues("`ErrorCode` of the refusal", "the refused command: 1 SET_DRUG, 2 SET_CONTINUOUS_DOSE, 3 SET_SCHEDULE, 4 START_CLINICIAN_BOLUS, 5 CANCEL_BOLUS, 6 START_PRIMING_BOLUS, 7 START_BRIDGE, 8 SET_PATIENT_BOLUS, 9 RECORD_REFILL, 10 SET_ALARM_SETTINGS, 11 SUSPEND, 12 RESUME, 13 ACKNOWLEDGE_ALARMS, 14 SILENCE_ALARMS, 15 ALARM_TEST, 16 SET_CLOCK (also SET_CLOCK_LOCAL), 18 INJECT_FAULT, 19 CLEAR_FAULT (a patient bolus refused is a BOLUS_DENIED record instead)"),  # noqa: E501
    EventKind.CONTROL: EventValues("the control action: 1 started (b: model ms applied for the time the emulator was down), 2 stopped, 3 speed set (b: factor x1000, 0 paused), 4 time advanced (b: ms), 5 link impaired (b: drop share in ppm, -1 cut), 6 reset to a scenario, 10 true reservoir set (b: the old true volume, nL), 11 catheter access port aspirated (b: the `CapFinding`, docs/firmware_model.md section 18)", "see `a`", runtime=True, source="control"),  # noqa: E501
    EventKind.ZONE_SET: EventValues("old UTC offset, ms (whole minutes; the clinic's clock, `SET_CLOCK_LOCAL`): written after the `CLOCK_SET` of a sync only when the offset or the zone changes, and followed by the `ZONE_NAME` records of the new and the old zone", "new UTC offset, ms"),  # noqa: E501
    EventKind.ZONE_NAME: EventValues("which part of which name: 100 x (1 the new zone, 2 the old one) + 10 x the name's number of records + the part (0-based), e.g. 120 and 121 for the new zone `America/New_York`", "8 bytes of the zone name (ASCII), big-endian, zero-padded: `UTC` is 0x5554430000000000"),  # noqa: E501
}
# fmt: on
