"""The programmer's exceptions: each carries what a clinician or a developer can act on.

ProgrammerError
+-- BadInput            a value or connection string the library refuses before sending
+-- ConfirmationNeeded  a prepared change has warnings nobody confirmed
+-- Unreachable         no answer from the pump (link down, timeouts, wrong port)
|   +-- OutcomeUnknown  a command was sent, retried, and its fate is still unknown
|   +-- WrongPump       a pump answered, but not the one asked for (never switched to)
|   +-- LineHeld        the serial line (one wand) is held by another programmer
+-- KeyMismatch         the pump did not prove the role key (wrong key, wrong pump)
+-- Refused             the pump answered ERROR: `code` is the protocol's ErrorCode
    +-- PumpTimePaused  BUSY in a self test that cannot end: the pump's time is paused
"""

from __future__ import annotations

import protocol as p


class ProgrammerError(Exception):
    """Base of every error the programmer library raises."""

    exit_code = 1


class BadInput(ProgrammerError, ValueError):
    """Refused before anything was sent: fix the value or the connection string."""

    exit_code = 2


class ConfirmationNeeded(ProgrammerError):
    """The prepared change has warnings (soft limits) that need explicit confirmation."""

    exit_code = 3

    def __init__(self, warnings: list[str]) -> None:
        super().__init__("confirm these warnings first: " + "; ".join(warnings))
        self.warnings = warnings


class Unreachable(ProgrammerError):
    """The pump did not answer: check the port or broker, the pump serial and the link."""

    exit_code = 4


class OutcomeUnknown(Unreachable):
    """A command was sent but neither its answer nor its status came back. Its id is in the
    journal: the next connection resolves it by GET_COMMAND_STATUS, never by re-sending."""

    def __init__(self, command_id: bytes, detail: str) -> None:
        super().__init__(f"outcome of command {command_id.hex()} unknown: {detail}")
        self.command_id = command_id


class WrongPump(Unreachable):
    """The connection names pump `asked`; the pump on the link says it is `answered`. Its
    answer is plain (no session yet), so it is a claim, not a proof: the programmer reports it
    and never switches to that pump by itself."""

    def __init__(self, asked: int, answered: int, where: str) -> None:
        super().__init__(
            f"wrong pump: a pump answering as {answered} is on {where}, not pump {asked}. "
            f"Nothing was sent to it. Check the serial on the patient's pump card; to program "
            f"pump {answered} name it in the connection (its answer is not authenticated, so "
            "the programmer does not switch by itself)"
        )
        self.asked = asked
        self.answered = answered


class LineHeld(Unreachable):
    """The serial port is open in another programmer: one wand, one programmer at a time."""

    def __init__(self, where: str) -> None:
        super().__init__(
            f"the line {where} is held by another programmer (one wand, one programmer at a "
            "time): finish or close the other session, then connect again"
        )


class KeyMismatch(ProgrammerError):
    """The pump could not prove it holds the role key: wrong key file, wrong pump, impostor."""

    exit_code = 5


class Refused(ProgrammerError):
    """The pump refused the request; nothing was changed. `code` says why, `detail` what to do."""

    exit_code = 6

    def __init__(self, error: p.Error, request: str) -> None:
        info = p.ERROR_INFO.get(error.code)
        action = f" ({info.action})" if info else ""
        super().__init__(f"{request} refused: {error.code.name}: {error.detail}{action}")
        self.code = error.code
        self.detail = error.detail
        self.request = request
        self.command_id = error.command_id


class PumpTimePaused(Refused):
    """Answered BUSY by a pump in its power-on self test whose time does not move (an emulator
    paused at speed 0, or too slow to finish it soon): the self test would never end, so the
    programmer stops asking and says how to move pump time on."""

    def __init__(self, error: p.Error, request: str, serial: int, why: str) -> None:
        super().__init__(error, request)
        self.args = (
            f"{request} not applied: pump {serial} is in its power-on self test ({error.detail})"
            f" and {why}, so it answers BUSY until its time moves. Resume pump time "
            f"(`pump-emulator ctl --serial {serial} resume`, or POST /v1/pumps/{serial}/resume "
            "on the control plane) or move it on (`pump-emulator ctl --serial "
            f"{serial} advance --hours 1`), then send the command again",
        )
