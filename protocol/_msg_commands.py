"""Catalogue, other clinician commands (ids 0x0300-0x0303): state changes that are not
therapy (acknowledging and silencing alarms, the alarm-tone test, setting the clock). They carry
a command_id but no expected_program_version, and are answered by COMMAND_ACK or ERROR. Part of
the catalogue assembled in `_messages.py`.
"""

from __future__ import annotations

from ._enums import Alarm, Tone
from ._errors import FieldValueError
from ._msg_records import DAY_MS, H2P
from ._schema import (
    Access,
    CommandKind,
    Message,
    command_id_field,
    enum8,
    flags32,
    message,
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
