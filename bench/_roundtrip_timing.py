"""How bench/roundtrip.py times a series of round trips, and what it keeps of one.

`measure` (blocking) and `ameasure` (coroutines) time `n` round trips after untimed warm-ups,
with this process's garbage collector off and a watchdog bounding the whole series;
`interleaved` and `ainterleaved` time the rows of a link in rounds, each a share of every row
in an order rotated each round, so drift hits floor and emulator alike. `Series` is one row's
result: median, nearest-rank p99, min and max in microseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import FrameType

from _report import pct


@dataclass
class Series:
    row: str
    client: str
    n: int
    median_us: float
    p99_us: float
    min_us: float
    max_us: float

    @classmethod
    def of(cls, row: str, client: str, samples_ns: list[int]) -> Series:
        s = sorted(samples_ns)
        return cls(
            row=row,
            client=client,
            n=len(s),
            median_us=statistics.median(s) / 1000,
            p99_us=pct(s, 99) / 1000,  # nearest rank
            min_us=s[0] / 1000,
            max_us=s[-1] / 1000,
        )


@contextlib.contextmanager
def timing() -> Iterator[None]:
    """No garbage collection in this process while a series is timed."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise TimeoutError("no answer in time (watchdog)")


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Bound a series of blocking reads without a syscall per read: SIGALRM interrupts them."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def series_timeout(n: int) -> float:
    return 30.0 + n * 0.05


def measure(n: int, warmup: int, once: Callable[[], object]) -> list[int]:
    out = []
    clock = time.perf_counter_ns
    with watchdog(series_timeout(n + warmup)):
        for _ in range(warmup):
            once()
        with timing():
            for _ in range(n):
                t0 = clock()
                once()
                out.append(clock() - t0)
    return out


async def ameasure(n: int, warmup: int, once: Callable[[], Awaitable[object]]) -> list[int]:
    out = []
    clock = time.perf_counter_ns
    async with asyncio.timeout(series_timeout(n + warmup)):
        for _ in range(warmup):
            await once()
        with timing():
            for _ in range(n):
                t0 = clock()
                await once()
                out.append(clock() - t0)
    return out


Variant = tuple[Callable[[], object], int, int]  # one round trip, how many to time, warm-up
AsyncVariant = tuple[Callable[[], Awaitable[object]], int, int]


def share(total: int, rounds: int, r: int) -> int:
    """Round trips of a series timed in round r."""
    return total // rounds + (1 if r < total % rounds else 0)


def rotated(names: list[str], r: int) -> list[str]:
    k = r % len(names)
    return names[k:] + names[:k]


def interleaved(variants: dict[str, Variant], rounds: int) -> dict[str, list[int]]:
    """Warm every variant up, then time them in `rounds` rounds, each a share of every series in
    an order rotated each round (as bench/codec.py does): drift hits every row alike."""
    for once, _n, warmup in variants.values():
        measure(0, warmup, once)
    samples: dict[str, list[int]] = {name: [] for name in variants}
    for r in range(rounds):
        for name in rotated(list(variants), r):
            once, n, _warmup = variants[name]
            samples[name] += measure(share(n, rounds, r), 0, once)
    return samples


async def ainterleaved(variants: dict[str, AsyncVariant], rounds: int) -> dict[str, list[int]]:
    """`interleaved` for coroutines."""
    for once, _n, warmup in variants.values():
        await ameasure(0, warmup, once)
    samples: dict[str, list[int]] = {name: [] for name in variants}
    for r in range(rounds):
        for name in rotated(list(variants), r):
            once, n, _warmup = variants[name]
            samples[name] += await ameasure(share(n, rounds, r), 0, once)
    return samples
