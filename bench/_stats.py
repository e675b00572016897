"""Statistics and verdicts shared by the bench scripts.

`pct` is the nearest-rank percentile every script reports (bench/roundtrip.py's p99 of a
series, bench/fleet.py's delivery and skew-corrected latencies); `verdict` prints a target as
PASS or MISS (targets are reported, never enforced).
"""

from __future__ import annotations

from collections.abc import Sequence


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (q in 0..100)."""
    if not values:
        return float("nan")
    rank = max(1, -(-int(q * len(values)) // 100))
    return values[min(rank, len(values)) - 1]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"
