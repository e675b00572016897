"""The model's exceptions: a rejected command carries a typed reason and changed nothing."""

from __future__ import annotations

from ._types import Command, Reason


class ModelError(Exception):
    """Base class of every error the firmware model raises."""


class Rejected(ModelError):
    """A command was refused. Nothing changed except one event-log record saying so."""

    def __init__(self, reason: Reason, detail: str, command: Command | None = None) -> None:
        super().__init__(f"{reason.name}: {detail}")
        self.reason = reason
        self.detail = detail
        self.command = command


class TimeWentBackwards(ModelError, ValueError):
    """advance_to() was given a time before the model's current time."""


class SnapshotError(ModelError, ValueError):
    """A snapshot is malformed, of an unknown version, or does not restore consistently."""
