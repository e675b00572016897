"""The programmer's exceptions: each carries what a clinician or a developer can act on.

ProgrammerError
+-- BadInput            a value or connection string the library refuses before sending
+-- ConfirmationNeeded  a prepared change has warnings nobody confirmed
+-- Unreachable         no answer from the pump (link down, timeouts, wrong port)
|   +-- OutcomeUnknown  a command was sent, retried, and its fate is still unknown
+-- KeyMismatch         the pump did not prove the role key (wrong key, wrong pump)
+-- Refused             the pump answered ERROR: `code` is the protocol's ErrorCode
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
