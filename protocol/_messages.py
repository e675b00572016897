"""The protocol v1 message catalogue: every message, declared once.

docs/protocol.md and tests/vectors/*.json are generated from these declarations
(`python -m protocol.gen --write`); a test fails when either is stale.

The declarations live in one module per part of the catalogue, in id order: `_msg_records.py`
(shared limits and the array-item records), `_msg_session.py` (handshake, end of session, ERROR),
`_msg_read.py` (GET_* requests and their responses, the telemetry beacon), `_msg_therapy.py`
(clinician therapy commands), `_msg_commands.py` (alarm and clock commands), `_msg_patient.py`
(the patient bolus) and `_msg_responses.py` (COMMAND_ACK, REFILL_RESULT). This module imports
them in that order, which is the order `@message` registers them in `MESSAGES`, and gathers
every name in one place: import messages from here (or from `protocol`), not from the parts.
"""

from __future__ import annotations

# These imports run the declarations in catalogue order, the order in which `@message` fills
# MESSAGES: keep it (the sorter is switched off for them).
# isort: off
from ._msg_records import (
    DAY_MS,
    H2P,
    MAX_ALARMS,
    MAX_DETAIL_BYTES,
    MAX_DOSE_NG,
    MAX_EVENTS_PER_PAGE,
    MAX_RATE_NL_PER_DAY,
    MAX_SCHEDULE_STEPS,
    MAX_VOLUME_NL,
    P2H,
    AlarmEntry,
    EventRecord,
    ScheduleStep,
)
from ._msg_session import (
    Challenge,
    Confirm,
    EndSession,
    Error,
    Hello,
    SessionEnded,
    SessionReady,
)
from ._msg_read import (
    AlarmList,
    AlarmSettings,
    CatheterInfo,
    Clock,
    ClockLocal,
    CommandStatus,
    DeviceInfo,
    DrugInfo,
    EventPage,
    GetAlarmSettings,
    GetAlarms,
    GetCatheterInfo,
    GetClock,
    GetClockLocal,
    GetCommandStatus,
    GetDeviceInfo,
    GetDrug,
    GetEvents,
    GetPatientBolus,
    GetProgram,
    GetStatus,
    PatientBolusSettings,
    Program,
    Status,
    TelemetryBeacon,
)
from ._msg_therapy import (
    CancelBolus,
    RecordRefill,
    Resume,
    SetAlarmSettings,
    SetContinuousDose,
    SetDrug,
    SetPatientBolus,
    SetSchedule,
    StartBridge,
    StartClinicianBolus,
    StartPrimingBolus,
    Suspend,
)
from ._msg_commands import (
    AcknowledgeAlarms,
    AlarmTest,
    SetClock,
    SetClockLocal,
    SilenceAlarms,
)
from ._msg_patient import (
    PatientBolusAccepted,
    RequestPatientBolus,
)
from ._msg_responses import (
    CommandAck,
    RefillResult,
)
# isort: on

__all__ = [
    "DAY_MS",
    "H2P",
    "MAX_ALARMS",
    "MAX_DETAIL_BYTES",
    "MAX_DOSE_NG",
    "MAX_EVENTS_PER_PAGE",
    "MAX_RATE_NL_PER_DAY",
    "MAX_SCHEDULE_STEPS",
    "MAX_VOLUME_NL",
    "P2H",
    "AcknowledgeAlarms",
    "AlarmEntry",
    "AlarmList",
    "AlarmSettings",
    "AlarmTest",
    "CancelBolus",
    "CatheterInfo",
    "Challenge",
    "Clock",
    "ClockLocal",
    "CommandAck",
    "CommandStatus",
    "Confirm",
    "DeviceInfo",
    "DrugInfo",
    "EndSession",
    "Error",
    "EventPage",
    "EventRecord",
    "GetAlarmSettings",
    "GetAlarms",
    "GetCatheterInfo",
    "GetClock",
    "GetClockLocal",
    "GetCommandStatus",
    "GetDeviceInfo",
    "GetDrug",
    "GetEvents",
    "GetPatientBolus",
    "GetProgram",
    "GetStatus",
    "Hello",
    "PatientBolusAccepted",
    "PatientBolusSettings",
    "Program",
    "RecordRefill",
    "RefillResult",
    "RequestPatientBolus",
    "Resume",
    "ScheduleStep",
    "SessionEnded",
    "SessionReady",
    "SetAlarmSettings",
    "SetClock",
    "SetClockLocal",
    "SetContinuousDose",
    "SetDrug",
    "SetPatientBolus",
    "SetSchedule",
    "SilenceAlarms",
    "StartBridge",
    "StartClinicianBolus",
    "StartPrimingBolus",
    "Status",
    "Suspend",
    "TelemetryBeacon",
]
