"""The clinic-clock records of the event log read back: a `ZONE_SET` record (old and new UTC
offset) and the `ZONE_NAME` records after it, which carry the new and the old zone name 8 bytes
at a time, since a record holds two integers (docs/protocol.md section 19).

A record's `value_a` says which name and which part: 100 x which (1 the new zone, 2 the old
one) + 10 x the name's number of parts + the part (0-based); `value_b` is the part's bytes of
the name, big-endian, zero-padded. The pump writes `ZONE_SET` and its names in one command, in
consecutive records; a name whose parts were trimmed from the log, or cut off by a page, reads
as None.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ._enums import EventKind

ZONE_NAME_NEW = 1
ZONE_NAME_OLD = 2
ZONE_PART_BYTES = 8


def zone_name_parts(which: int, zone: str) -> list[tuple[int, int]]:
    """The (value_a, value_b) of the ZONE_NAME records that carry `zone` (ASCII, at most 64
    bytes: 8 records) as the new (1) or the old (2) zone."""
    raw = zone.encode("ascii")
    if not 0 < len(raw) <= 8 * ZONE_PART_BYTES or which not in (ZONE_NAME_NEW, ZONE_NAME_OLD):
        raise ValueError("a zone name is 1 .. 64 ASCII bytes, the new (1) or old (2) zone")
    chunks = [raw[i : i + ZONE_PART_BYTES] for i in range(0, len(raw), ZONE_PART_BYTES)]
    n = len(chunks)
    return [
        (100 * which + 10 * n + i, int.from_bytes(c.ljust(ZONE_PART_BYTES, b"\0"), "big"))
        for i, c in enumerate(chunks)
    ]


def _part(a: int, b: int) -> tuple[int, int, int, bytes] | None:
    which, parts, part = a // 100, a // 10 % 10, a % 10
    if which not in (ZONE_NAME_NEW, ZONE_NAME_OLD) or not 0 <= part < parts or a >= 300:
        return None
    if not 0 <= b < 1 << 63:
        return None
    return which, parts, part, b.to_bytes(ZONE_PART_BYTES, "big").rstrip(b"\0")


def zone_name_part_text(a: int, b: int) -> str:
    """One ZONE_NAME record read alone: 'new zone name, part 1 of 2: "America/"'."""
    got = _part(a, b)
    if got is None:
        return f"zone name part, unreadable (value_a {a})"
    which, parts, part, text = got
    side = "new" if which == ZONE_NAME_NEW else "old"
    return f"{side} zone name, part {part + 1} of {parts}: {text.decode('ascii', 'replace')!r}"


def offset_hhmm(ms: int) -> str:
    """'+01:00', '-09:30' (an offset is whole minutes)."""
    sign = "-" if ms < 0 else "+"
    h, m = divmod(abs(ms) // 60_000, 60)
    return f"{sign}{h:02d}:{m:02d}"


@dataclass(frozen=True, slots=True)
class ZoneChange:
    """A change of the clinic's clock, as its records tell it: `seq` is the ZONE_SET record's;
    a zone is None when its name records are not among those read."""

    seq: int
    old_offset_ms: int
    new_offset_ms: int
    old_zone: str | None
    new_zone: str | None
    name_seqs: tuple[int, ...]  # the ZONE_NAME records read as part of it

    def text(self) -> str:
        """'clock set: -05:00 America/New_York (was +00:00 UTC)'."""
        new = self.new_zone if self.new_zone is not None else "(zone name not in the log)"
        old = self.old_zone if self.old_zone is not None else "(zone name not in the log)"
        return (
            f"clock set: {offset_hhmm(self.new_offset_ms)} {new} "
            f"(was {offset_hhmm(self.old_offset_ms)} {old})"
        )


def zone_changes(records: Iterable[tuple[int, int, int, int]]) -> dict[int, ZoneChange]:
    """Every zone change among `records` (seq, kind, value_a, value_b), oldest first, by the
    seq of its ZONE_SET record; its names are the ZONE_NAME records that follow it."""
    out: dict[int, ZoneChange] = {}
    head: tuple[int, int, int] | None = None  # (seq, old, new) of the change being read
    last = 0
    names: dict[int, dict[int, bytes]] = {}
    count: dict[int, int] = {}
    seqs: list[int] = []

    def close() -> None:
        if head is None:
            return
        got = {
            w: b"".join(names[w][i] for i in range(count[w])).decode("ascii", "replace")
            if w in names and len(names[w]) == count[w]
            else None
            for w in (ZONE_NAME_NEW, ZONE_NAME_OLD)
        }
        seq, old, new = head
        out[seq] = ZoneChange(seq, old, new, got[ZONE_NAME_OLD], got[ZONE_NAME_NEW], tuple(seqs))

    for seq, kind, a, b in records:
        if kind == EventKind.ZONE_NAME and head is not None and seq == last + 1:
            got = _part(a, b)
            if got is not None:
                which, parts, part, text = got
                if count.setdefault(which, parts) == parts:
                    names.setdefault(which, {})[part] = text
                    seqs.append(seq)
                    last = seq
                    continue
        close()
        head = None
        if kind == EventKind.ZONE_SET:
            head, last = (seq, a, b), seq
            names, count, seqs = {}, {}, []
    close()
    return out
