"""programmer: the host library (async first) and the `pump-programmer` CLI.

    async with programmer.connect("serial:///dev/pts/5", key=Path("clinician.key")) as pump:
        snapshot = await pump.interrogate()
        change = await pump.prepare_dose(3_000_000)   # the Finish screen: change.diff
        await change.commit()

It imports `protocol` only and works against anything that speaks docs/protocol.md. See
docs/programmer.md.
"""

from . import calc
from ._change import Change
from ._connect import SyncChange, SyncPump, connect, connect_sync, load_key
from ._errors import (
    BadInput,
    ConfirmationNeeded,
    KeyMismatch,
    LineHeld,
    OutcomeUnknown,
    ProgrammerError,
    PumpTimePaused,
    Refused,
    Unreachable,
    WrongPump,
)
from ._interrogation import Interrogation
from ._journal import Journal
from ._links import Address, parse_address
from ._pump import Pump

__all__ = [
    "Address",
    "BadInput",
    "Change",
    "ConfirmationNeeded",
    "Interrogation",
    "Journal",
    "KeyMismatch",
    "LineHeld",
    "OutcomeUnknown",
    "ProgrammerError",
    "Pump",
    "PumpTimePaused",
    "Refused",
    "SyncChange",
    "SyncPump",
    "Unreachable",
    "WrongPump",
    "calc",
    "connect",
    "connect_sync",
    "load_key",
    "parse_address",
]
