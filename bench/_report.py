"""What the bench scripts share in their reports.

`header` prints a run's first two lines (what runs, on which machine); `pct` is the
nearest-rank percentile they report (bench/roundtrip.py's p99 of a series, bench/fleet.py's
delivery and skew-corrected latencies); `verdict` prints a target as PASS or MISS (targets are
reported, never enforced); `print_notes` prints what the numbers do not say (a skipped row, a
tmpfs state directory, beacons lost); `finish` ends a run: the results as JSON if asked (the
error, if any, last), then FAILED on stderr and exit status 1 if something could not be
measured, else 0.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from typing import Any


def header(title: str) -> None:
    print(title)
    print(f"python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (q in 0..100)."""
    if not values:
        return float("nan")
    rank = max(1, -(-int(q * len(values)) // 100))
    return values[min(rank, len(values)) - 1]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_notes(notes: Sequence[str]) -> None:
    if notes:
        print()
        for note in notes:
            print(f"note: {note}")


def finish(results: dict[str, Any] | None, failed: str | None) -> int:
    """Print `results` (None: not asked for) as JSON with `"error": failed`; the exit status."""
    if results is not None:
        print(json.dumps({**results, "error": failed}, indent=2))
    if failed:
        print(f"\nFAILED: {failed}", file=sys.stderr)
        return 1
    return 0
