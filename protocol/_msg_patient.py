"""Catalogue, patient part (ids 0x0400-0x0401): the one command a patient session may send,
REQUEST_PATIENT_BOLUS, and its answer PATIENT_BOLUS_ACCEPTED. Part of the catalogue assembled in
`_messages.py`.
"""

from __future__ import annotations

from ._msg_records import H2P, P2H
from ._schema import (
    Access,
    CommandKind,
    Message,
    blob,
    command_id_field,
    duplicate_field,
    message,
    program_version_field,
    timestamp,
    u8,
    u32,
)


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
