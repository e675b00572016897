"""The event log: appending a record (seq, pump-clock time, kind, source, command id, a, b),
trimming it to the profile's capacity in batches, reading it by cursor, and its digest. Every
other concept writes through `_log`; runtimes add their own kinds through `log_external`.
"""

from __future__ import annotations

import hashlib

from ._core import PumpCore
from ._state import NO_COMMAND, Event, new_event
from ._types import EventKind, Source


class LogMixin(PumpCore):
    __slots__ = ()

    @property
    def event_seq(self) -> int:
        return self._s.next_seq - 1

    @property
    def change_mark(self) -> tuple[int, int]:
        """(newest record's seq + 1, program version): differs after anything that logged or
        changed the program (one read for a runtime that wakes its clock only then)."""
        s = self._s
        return s.next_seq, s.program_version

    @property
    def oldest_seq(self) -> int:
        ev = self._s.events
        return ev[0].seq if ev else self._s.next_seq

    def events(self, cursor: int = 0, max_count: int | None = None) -> list[Event]:
        """Log records with seq >= cursor (0 = the oldest kept), oldest first."""
        ev = self._s.events
        if not ev:
            return []
        start = max(0, cursor - ev[0].seq)
        end = None if max_count is None else start + max_count
        return ev[start:end]

    def log_digest(self) -> str:
        """SHA-256 over every record kept: equal inputs give equal digests, byte for byte."""
        h = hashlib.sha256()
        for e in self._s.events:
            h.update(e.pack())
        return h.hexdigest()

    def log_external(
        self,
        kind: EventKind,
        source: Source,
        a: int = 0,
        b: int = 0,
        command_id: bytes = NO_COMMAND,
        *,
        time_ms: int | None = None,
    ) -> int:
        """A runtime records what the pump saw outside the model (sessions, security events,
        control actions). Only those kinds are accepted. `time_ms` (pump clock, default now)
        dates a record the runtime wrote late, e.g. a count of refused frames: it may not be
        later than now nor earlier than the newest record, so the log stays in time order."""
        if kind not in (
            EventKind.SECURITY,
            EventKind.SESSION_OPENED,
            EventKind.SESSION_CLOSED,
            EventKind.CONTROL,
        ):
            raise ValueError(f"{kind.name} records are the model's own")
        if time_ms is not None:
            now = self._s.now + self._s.clock_offset_ms
            newest = self._s.events[-1].time_ms if self._s.events else time_ms
            if not newest <= time_ms <= now:
                raise ValueError(
                    f"time_ms must be {newest} .. {now} (the newest record's time .. now)"
                )
        return self._log(kind, source, command_id, a, b, time_ms)

    def _log(
        self,
        kind: EventKind,
        source: Source,
        command_id: bytes,
        a: int,
        b: int,
        time_ms: int | None = None,
    ) -> int:
        s = self._s
        seq = s.next_seq
        events = s.events
        events.append(
            new_event(
                seq,
                s.now + s.clock_offset_ms if time_ms is None else time_ms,
                kind,
                source,
                command_id,
                a,
                b,
            )
        )
        s.next_seq = seq + 1
        cap = self._profile.event_log_capacity
        if len(events) >= cap + (cap >> 3):  # trim in batches (cap // 8): amortised O(1)
            del events[: len(events) - cap]
        return seq
