"""The battery forecast's search (`_first_reaching`) with a guessed bracket finds exactly what
a plain bisection finds, whether the guess is right, wrong or absurd."""

from __future__ import annotations

import random
from collections.abc import Callable

from firmware_model._battery import _first_reaching


def _bisect(used: Callable[[int], int], need: int, lo: int, hi: int) -> int:
    while lo < hi:
        mid = (lo + hi) // 2
        if used(mid) >= need:
            hi = mid
        else:
            lo = mid + 1
    return lo


def test_guessed_bracket_never_changes_the_answer() -> None:
    rng = random.Random(18)
    for _ in range(3000):
        lo = rng.randrange(0, 10**6)
        hi = lo + rng.randrange(1, 10**7)
        idle, per_nl, rate, carry = (
            rng.randrange(0, 3),
            rng.randrange(1, 40),
            rng.randrange(1, 10**6),
            0,
        )

        def used(
            x: int,
            lo: int = lo,
            idle: int = idle,
            per_nl: int = per_nl,
            rate: int = rate,
            carry: int = carry,
        ) -> int:
            return idle * (x - lo) + per_nl * ((carry + rate * (x - lo)) // 86_400_000)

        need = rng.randrange(1, used(hi) + 2)
        if used(hi) < need:
            continue
        want = _bisect(used, need, lo, hi)
        a = want + rng.randrange(-50, 51)
        b = a + rng.randrange(-5, 100)
        for near in ((a, b), (want, want), (want + 1, want - 1), (lo - 9, hi + 9), (hi, lo)):
            assert _first_reaching(used, need, lo, hi, near) == want
        assert _first_reaching(used, need, lo, hi) == want
