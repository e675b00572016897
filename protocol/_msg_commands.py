"""Catalogue, other clinician commands (ids 0x0300-0x0304): state changes that are not
therapy (acknowledging and silencing alarms, the alarm-tone test, setting the clock). They carry
a command_id but no expected_program_version, and are answered by COMMAND_ACK or ERROR. Part of
the catalogue assembled in `_messages.py`.
"""

from __future__ import annotations

from ._enums import Alarm, Tone
from ._errors import FieldValueError
from ._msg_records import DAY_MS, H2P, MAX_UTC_OFFSET_MS, ZONE_NAME_MAX
from ._rules import nonzero, rules
from ._schema import (
    Access,
    CommandKind,
    Message,
    command_id_field,
    enum8,
    flags32,
    i32,
    message,
    text,
    timestamp,
    u32,
)


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

    @rules(nonzero("alarms"))
    def _check(self) -> None:
        """`alarms` names at least one alarm (is not 0)."""
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

    @rules(nonzero("alarms"))
    def _check(self) -> None:
        """`alarms` names at least one alarm (is not 0)."""
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
    """Sets the pump clock; the pump keeps its UTC offset and zone (see SET_CLOCK_LOCAL)."""

    command_id: bytes = command_id_field()
    pump_time_ms: int = timestamp("New pump clock value.")


@message(
    0x0304,
    direction=H2P,
    access=Access.CLINICIAN,
    kind=CommandKind.COMMAND,
    responses=("COMMAND_ACK", "ERROR"),
)
class SetClockLocal(Message):
    """Sets the pump clock and the clinic's local time (protocol 1.1): schedules run on
    pump_time_ms + utc_offset_ms. The pump keeps this offset until the next sync and never
    follows daylight saving time by itself. A 1.0 pump answers UNKNOWN_MESSAGE."""

    command_id: bytes = command_id_field()
    pump_time_ms: int = timestamp("New pump clock value.")
    utc_offset_ms: int = i32(
        "Local time minus UTC now, in the clinic's zone, whole minutes (e.g. 3600000 for "
        "CET, 7200000 for CEST).",
        unit="ms",
        min=-MAX_UTC_OFFSET_MS,
        max=MAX_UTC_OFFSET_MS,
    )
    zone: str = text(
        ZONE_NAME_MAX,
        "IANA name of the clinic's zone (e.g. Europe/Paris), for display. The pump refuses "
        "(INVALID_VALUE) an empty name or one with other characters than A-Z a-z 0-9 / _ + -.",
    )
