"""Piecewise-constant daily rate functions, integrated and inverted analytically.

A basal program is a periodic function of the pump clock's time of day. Integrals are kept in
nL*ms/day (rate in nL/day times milliseconds), so they are exact integers; a volume is that
integral floor-divided by DAY_MS, with the remainder carried (see Pump: no nanolitre is ever
created or lost by splitting an interval).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from ._types import DAY_MS, MS_PER_MIN


@dataclass(frozen=True, slots=True)
class RateProfile:
    starts_ms: tuple[int, ...]  # step starts, ms of day, first is 0
    rates: tuple[int, ...]  # nL/day per step
    prefix: tuple[int, ...]  # integral from midnight to each step start (len n+1), nL*ms/day
    ends: tuple[int, ...]  # prefix[1:], for bisection

    @staticmethod
    def constant(rate_nl_per_day: int) -> RateProfile:
        return RateProfile.steps([(0, rate_nl_per_day)])

    @staticmethod
    def steps(steps: Sequence[tuple[int, int]]) -> RateProfile:
        """From (start_minute, rate_nl_per_day) pairs, sorted, the first at minute 0."""
        starts = tuple(m * MS_PER_MIN for m, _ in steps)
        rates = tuple(r for _, r in steps)
        bounds = (*starts[1:], DAY_MS)
        prefix = [0]
        for start, end, rate in zip(starts, bounds, rates, strict=True):
            prefix.append(prefix[-1] + rate * (end - start))
        return RateProfile(starts, rates, tuple(prefix), tuple(prefix[1:]))

    @property
    def day_total(self) -> int:
        """Integral over one day, nL*ms/day; divided by DAY_MS it is the volume per day."""
        return self.prefix[-1]

    @property
    def is_constant(self) -> bool:
        return len(self.rates) == 1

    def rate_at(self, clock_ms: int) -> int:
        if len(self.rates) == 1:
            return self.rates[0]
        return self.rates[bisect.bisect_right(self.starts_ms, clock_ms % DAY_MS) - 1]

    def cumulative(self, clock_ms: int) -> int:
        """Integral from an arbitrary origin (a midnight) to clock_ms. Only differences matter."""
        if len(self.rates) == 1:
            return self.rates[0] * clock_ms
        days, m = divmod(clock_ms, DAY_MS)
        i = bisect.bisect_right(self.starts_ms, m) - 1
        return days * self.prefix[-1] + self.prefix[i] + self.rates[i] * (m - self.starts_ms[i])

    def integral(self, c0: int, c1: int) -> int:
        rates = self.rates
        if len(rates) == 1:
            return rates[0] * (c1 - c0)
        # cumulative(c1) - cumulative(c0) with one bisection when both lie in one step of one
        # day (the common case: a short interval); the same exact integers either way
        days0, m0 = divmod(c0, DAY_MS)
        starts = self.starts_ms
        i = bisect.bisect_right(starts, m0) - 1
        m1 = m0 + (c1 - c0)
        if 0 <= m1 < (starts[i + 1] if i + 1 < len(starts) else DAY_MS):
            return rates[i] * (c1 - c0)
        prefix = self.prefix
        days1, m1 = divmod(c1, DAY_MS)  # self.cumulative(c1) - self.cumulative(c0), inlined
        j = bisect.bisect_right(starts, m1) - 1
        return (days1 - days0) * prefix[-1] + (
            prefix[j] + rates[j] * (m1 - starts[j]) - prefix[i] - rates[i] * (m0 - starts[i])
        )

    def reach(self, c0: int, amount: int) -> int | None:
        """Smallest clock c >= c0 with integral(c0, c) >= amount; None if never."""
        if amount <= 0:
            return c0
        total = self.prefix[-1]
        if total == 0:
            return None
        if len(self.rates) == 1:
            rate = self.rates[0]
            return c0 + -(-amount // rate)
        target = self.cumulative(c0) + amount
        days, rem = divmod(target, total)
        if rem == 0:
            days, rem = days - 1, total
        i = bisect.bisect_left(self.ends, rem)  # prefix[i] < rem <= prefix[i+1]: rates[i] > 0
        m = self.starts_ms[i] + -(-(rem - self.prefix[i]) // self.rates[i])
        return max(c0, days * DAY_MS + m)

    def next_change(self, clock_ms: int) -> int | None:
        """The next step boundary strictly after clock_ms; None for a constant rate."""
        if len(self.rates) == 1:
            return None
        day0 = clock_ms - clock_ms % DAY_MS
        m = clock_ms - day0
        i = bisect.bisect_right(self.starts_ms, m)
        return day0 + (self.starts_ms[i] if i < len(self.starts_ms) else DAY_MS)
