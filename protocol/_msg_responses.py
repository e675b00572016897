"""Catalogue, command results (ids 0x0500-0x0501): COMMAND_ACK, the answer to an applied
(and committed) command, and REFILL_RESULT, RECORD_REFILL's answer with its discrepancy report.
A resent original result says duplicate=1. Part of the catalogue assembled in `_messages.py`.
"""

from __future__ import annotations

from ._msg_records import P2H
from ._schema import (
    Access,
    CommandKind,
    Message,
    blob,
    boolean,
    duplicate_field,
    i32,
    message,
    timestamp,
    u32,
)


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
