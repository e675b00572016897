"""The emulated pump's time: model time runs at real time times the speed factor.

Model time is anchored to the monotonic clock (immune to wall-clock steps) and re-anchored on
every speed change, so changing speed never makes time jump or run backwards. Speed 0 pauses.
"""

from __future__ import annotations

import datetime
import time
import zoneinfo
from collections.abc import Callable

MAX_SPEED_MILLI = 1_000_000_000  # x1,000,000
NS_PER_MS = 1_000_000


class VirtualClock:
    """Maps the monotonic clock to model time (ms) at `speed_milli / 1000` times real time."""

    def __init__(
        self,
        model_ms: int,
        speed_milli: int = 1000,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        *,
        anchor_ns: int | None = None,
    ) -> None:
        """Model time is `model_ms` at the monotonic time `anchor_ns` (default: now)."""
        check_speed(speed_milli)
        self._mono = monotonic_ns
        self._speed = speed_milli
        self._anchor_ns = monotonic_ns() if anchor_ns is None else anchor_ns
        self._anchor_model = model_ms

    @property
    def speed_milli(self) -> int:
        return self._speed

    def now(self) -> int:
        """Model time now (ms)."""
        elapsed = self._mono() - self._anchor_ns
        return self._anchor_model + elapsed * self._speed // (1000 * NS_PER_MS)

    def set_speed(self, speed_milli: int) -> None:
        check_speed(speed_milli)
        self._anchor_model = self.now()
        self._anchor_ns = self._mono()
        self._speed = speed_milli

    def jump_to(self, model_ms: int) -> None:
        """Move model time forward to `model_ms` (the control plane's "advance"); a time
        already passed leaves it where it is: model time never goes back."""
        mono = self._mono()
        now = self._anchor_model + (mono - self._anchor_ns) * self._speed // (1000 * NS_PER_MS)
        self._anchor_model = max(model_ms, now)
        self._anchor_ns = mono

    def seconds_until(self, model_ms: int) -> float | None:
        """Real seconds until model time reaches `model_ms` (0 if past; None when paused)."""
        ahead = model_ms - self.now()
        if ahead <= 0:
            return 0.0
        if self._speed == 0:
            return None
        # Round up to the next whole model millisecond so a wake-up is never early.
        return (ahead * 1000 * NS_PER_MS + self._speed - 1) // self._speed / 1e9


def check_speed(speed_milli: int) -> None:
    if not 0 <= speed_milli <= MAX_SPEED_MILLI:
        raise ValueError(f"speed factor must be 0 .. {MAX_SPEED_MILLI // 1000} (x1000 units)")


def wall_ms() -> int:
    """Milliseconds since the epoch (to date a stored state and apply the time spent down)."""
    return time.time_ns() // NS_PER_MS


def mono_ms() -> int:
    """Monotonic milliseconds: session timeouts and the handshake lockout run on real time."""
    return time.monotonic_ns() // NS_PER_MS


def zone_offset_ms(zone: str, clock_ms: int) -> int:
    """The IANA zone's UTC offset (ms, local minus UTC) at the instant clock_ms (ms since 1970
    UTC), by the tz database: what a programmer's `clock --sync --zone` sends. ValueError for a
    name that is not a zone."""
    try:
        tz = zoneinfo.ZoneInfo(zone)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise ValueError(f"{zone!r} is not an IANA time zone (such as Europe/Paris)") from None
    at = datetime.datetime.fromtimestamp(clock_ms / 1000, datetime.UTC)
    off = at.astimezone(tz).utcoffset() or datetime.timedelta()
    return off // datetime.timedelta(milliseconds=1)
