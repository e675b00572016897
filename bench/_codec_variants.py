"""The timed variants of bench/codec.py and how they are timed.

One runner per row and codec (`run(n)` does n operations: encode+decode pairs, seal+verify
pairs, or n passes over the stream); a `Variant` holds one with its rates. `run_all` calibrates
a batch size per variant, then times them interleaved: in each repeat every variant runs for
at least `min_time`, in an order rotated each repeat, so drift hits every column alike.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from _codec_fixtures import (
    DOSE,
    DOSE_VALUES,
    PUMP_ID,
    STATUS,
    STATUS_SEQ,
    STATUS_VALUES,
    open_session,
)
from _codec_peers import (
    HandAuthReceiver,
    HandAuthSender,
    HandStreamDecoder,
    hw_decode_status,
    hw_encode_status,
    mav_command_long,
    mav_highres_imu,
    mav_pair,
    mav_receiver,
)

import protocol as p

# --- the variants: each returns run(n), doing n operations ----------------------------------------

Runner = Callable[[int], None]


def ours_status_pair() -> Runner:
    dec = p.FrameDecoder()
    feed: Callable[[bytes], list[Any]] = dec.feed
    encode = p.encode_frame
    status = STATUS

    def run(n: int) -> None:
        for _ in range(n):
            feed(encode(status, pump_id=PUMP_ID, seq=STATUS_SEQ, from_pump=True))[0].decode()

    return run


def hand_status_pair() -> Runner:
    values = STATUS_VALUES

    def run(n: int) -> None:
        for _ in range(n):
            hw_decode_status(hw_encode_status(values, PUMP_ID, STATUS_SEQ))

    return run


def mav_status_pair(mav: Any) -> Runner:
    return _mav_pair(mav, False, mav_highres_imu(mav))


def ours_auth_pair() -> Runner:
    s = open_session()
    seal = s.host.seal
    feed: Callable[[bytes], list[Any]] = s.pump_decoder.feed
    receive: Callable[..., object] = s.pump.receive
    cmd = DOSE

    def run(n: int) -> None:
        for k in range(n):
            receive(feed(seal(cmd, seq=k & 0xFFFF))[0], 0)

    return run


def hand_auth_pair() -> Runner:
    key = bytes(range(32))
    seal = HandAuthSender(key, 0x5EED, PUMP_ID).seal
    open_ = HandAuthReceiver(key, 0x5EED, PUMP_ID).open
    values = DOSE_VALUES

    def run(n: int) -> None:
        for k in range(n):
            open_(seal(values, k & 0xFFFF))

    return run


def mav_auth_pair(mav: Any) -> Runner:
    return _mav_pair(mav, True, mav_command_long(mav))


def _mav_pair(mav: Any, signed: bool, msg: Any) -> Runner:
    """pymavlink's pair: `msg.pack` on a sender, `parse_buffer()` on a receiver (signed: both
    hold the key, the sender signs and the receiver verifies)."""
    tx, rx = mav_pair(mav, signed=signed)
    pack = msg.pack
    parse = rx.parse_buffer

    def run(n: int) -> None:
        for _ in range(n):
            parse(pack(tx))

    return run


def ours_stream(chunks: list[bytes]) -> Runner:
    frame_type = p.Frame

    def run(n: int) -> None:
        for _ in range(n):
            feed = p.FrameDecoder().feed
            for c in chunks:
                for item in feed(c):
                    if isinstance(item, frame_type):
                        item.decode()

    return run


def hand_stream(chunks: list[bytes]) -> Runner:
    def run(n: int) -> None:
        for _ in range(n):
            feed = HandStreamDecoder().feed
            for c in chunks:
                feed(c)

    return run


def mav_stream(mav: Any, chunks: list[bytes]) -> Runner:
    def run(n: int) -> None:
        for _ in range(n):
            parse = mav_receiver(mav, False).parse_buffer
            for c in chunks:
                parse(c)

    return run


# --- timing ---------------------------------------------------------------------------------------


@dataclass
class Variant:
    row: str
    who: str  # "ours", "hand", "pymavlink"
    run: Runner
    ops_per_call: int = 1  # frames per run(1): 1 for pairs, the stream length for streams
    batch: int = 1
    rates: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def calibrate(v: Variant, target_s: float) -> None:
    """Pick a batch size that takes about target_s (also warms the variant up)."""
    n = 1
    while True:
        t0 = time.perf_counter()
        v.run(n)
        dt = time.perf_counter() - t0
        if dt >= target_s or n >= 1 << 24:
            v.batch = max(1, int(n * target_s / max(dt, 1e-9)))
            return
        n *= 2 if dt > target_s / 10 else 8


def measure(v: Variant, min_time: float) -> None:
    gc.collect()
    calls = 0
    t0 = time.perf_counter()
    while True:
        v.run(v.batch)
        calls += v.batch
        dt = time.perf_counter() - t0
        if dt >= min_time:
            break
    v.rates.append(calls * v.ops_per_call / dt)


def run_all(variants: list[Variant], repeats: int, min_time: float) -> None:
    for v in variants:
        calibrate(v, min(0.05, min_time / 4))
    for r in range(repeats):
        k = r % len(variants)
        for v in variants[k:] + variants[:k]:  # rotate the order each repeat
            measure(v, min_time)
