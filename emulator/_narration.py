"""Instructor narration: timed notes for the trainer ("patient reports 60 % pain relief at 4 h")
kept beside a pump, never in its event log and never on the wire (docs/emulator.md section 14).

A scenario's `narrate` steps are scheduled at model times when a pump starts from it (serve
`--scenario`, a reset); an instructor adds one now through the control plane. The console's
pump stream pushes each note once pump time reaches it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

MAX_TEXT = 300  # characters (the scenario format's limit too)


@dataclasses.dataclass(frozen=True)
class Note:
    at_ms: int  # model time: monotonic, unlike the pump clock a programmer may set
    text: str
    source: str  # "scenario" or "instructor"
    order: int  # ties at one instant keep the order they were written in


class Narration:
    """The notes of one pump. `generation` changes when a new scenario replaces them."""

    def __init__(self) -> None:
        self._notes: list[Note] = []
        self.generation = 0

    def schedule(self, notes: list[tuple[int, str]], start_ms: int) -> None:
        """A new pump from a scenario: its notes, `at` ms after `start_ms`, replace the old."""
        self._notes = [
            Note(start_ms + at, text, "scenario", i) for i, (at, text) in enumerate(notes)
        ]
        self._notes.sort(key=lambda n: (n.at_ms, n.order))
        self.generation += 1

    def add(self, now_ms: int, text: str) -> Note:
        """An instructor's note, now. Refuses empty or over-long text (ValueError)."""
        text = text.strip()
        if not text or len(text) > MAX_TEXT:
            raise ValueError(f"narration text must be 1 .. {MAX_TEXT} characters")
        note = Note(now_ms, text, "instructor", len(self._notes))
        self._notes.append(note)
        self._notes.sort(key=lambda n: (n.at_ms, n.order))
        return note

    def due(self, now_ms: int) -> list[Note]:
        """The notes pump time has reached, oldest first. Later calls only append to it: a
        note is written at the current time or scheduled after it, and time never goes back."""
        return [n for n in self._notes if n.at_ms <= now_ms]


def as_json(notes: list[Note], clock_offset_ms: int) -> list[dict[str, Any]]:
    """Notes as the control plane and the stream send them: pump clock time, text, source."""
    return [
        {"time_ms": n.at_ms + clock_offset_ms, "text": n.text, "source": n.source} for n in notes
    ]
