"""The clinic's clock on the host side (protocol 1.1): which zone this host is in, a zone's UTC
offset at an instant (the standard library's zoneinfo), and the pump's local clock as read back
with a staleness check.

The pump holds one UTC offset, set with its clock, and never follows daylight saving time by
itself (docs/firmware_model.md section 19): the host owns the tz database. zoneinfo reads the
system's database (Debian's `tzdata` package, /usr/share/zoneinfo) and falls back to the
`tzdata` PyPI package, a dependency of this project, so a slim container without the system
database still knows every zone.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import zoneinfo
from typing import TYPE_CHECKING

import protocol as p

from ._errors import BadInput, Refused

if TYPE_CHECKING:
    from ._pump import Pump

_MS = datetime.timedelta(milliseconds=1)


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        msg = f"{name!r} is not a time zone: give an IANA name such as Europe/Paris"
        raise BadInput(msg) from None


def host_zone() -> str:
    """This host's IANA zone: $TZ if it names one, else the target of /etc/localtime, else UTC."""
    tz = os.environ.get("TZ", "").removeprefix(":")
    if tz:
        try:
            _zone(tz)
            return tz
        except BadInput:
            pass
    try:
        target = os.path.realpath("/etc/localtime")
    except OSError:
        return "UTC"
    _, sep, name = target.partition("zoneinfo/")
    if sep and name:
        try:
            _zone(name)
            return name
        except BadInput:
            pass
    return "UTC"


def zone_offset_ms(zone: str, at_ms: int) -> int:
    """The zone's UTC offset (ms, local minus UTC) at the instant at_ms (ms since 1970 UTC)."""
    at = datetime.datetime.fromtimestamp(at_ms / 1000, datetime.UTC)
    off = at.astimezone(_zone(zone)).utcoffset()
    return 0 if off is None else off // _MS


def offset_text(ms: int) -> str:
    """'UTC+01:00', 'UTC-09:30'."""
    return f"UTC{p.offset_hhmm(ms)}"


@dataclasses.dataclass(frozen=True)
class LocalClock:
    """The pump's clock with the offset and zone of its last sync (GET_CLOCK_LOCAL)."""

    pump_time_ms: int
    utc_offset_ms: int
    zone: str
    zone_offset_ms: int | None  # the zone's offset now by this host's database; None: unknown

    @property
    def local_ms(self) -> int:
        """The pump's local clock: schedules run on its time of day."""
        return self.pump_time_ms + self.utc_offset_ms

    @property
    def stale(self) -> bool:
        """The pump's offset differs from its zone's current one (a DST change since the sync)."""
        return self.zone_offset_ms is not None and self.zone_offset_ms != self.utc_offset_ms

    def warning(self) -> str | None:
        if not self.stale:
            return None
        assert self.zone_offset_ms is not None
        return (
            f"the pump keeps {offset_text(self.utc_offset_ms)} but {self.zone} is now "
            f"{offset_text(self.zone_offset_ms)}: its schedule runs "
            f"{abs(self.zone_offset_ms - self.utc_offset_ms) / 3_600_000:g} h off the clinic's "
            "clock; sync it (clock --sync)"
        )


async def read_local_clock(pump: Pump) -> LocalClock | None:
    """The pump's local clock, or None from a 1.0 pump (it answers UNKNOWN_MESSAGE: it runs its
    schedules on UTC)."""
    try:
        c: p.ClockLocal = await pump.request(p.GetClockLocal())
    except Refused as exc:
        if exc.code is p.ErrorCode.UNKNOWN_MESSAGE:
            return None
        raise
    try:
        now = zone_offset_ms(c.zone, c.pump_time_ms)
    except BadInput:  # a zone this host's database does not know: shown, not judged
        now = None
    return LocalClock(c.pump_time_ms, c.utc_offset_ms, c.zone, now)


def record_details(records: list[p.EventRecord]) -> dict[int, str]:
    """What a person reads for the records whose values need their neighbours, by seq: a clock
    sync's ZONE_SET with the zone names of the ZONE_NAME records after it ("clock set: -05:00
    America/New_York (was +00:00 UTC)"), and each of those names' records."""
    changes = p.zone_changes((r.seq, r.kind, r.value_a, r.value_b) for r in records)
    out: dict[int, str] = {}
    for change in changes.values():
        out[change.seq] = change.text()
        for seq in change.name_seqs:
            out[seq] = f"zone name of record {change.seq}"
    for r in records:
        if r.kind == p.EventKind.ZONE_NAME and r.seq not in out:  # its ZONE_SET was not read
            out[r.seq] = p.zone_name_part_text(r.value_a, r.value_b)
    return out
