"""What every variant of bench/codec.py encodes, and the state they share.

The STATUS and SET_CONTINUOUS_DOSE values (as `protocol` messages and, in wire order, as the
plain tuples the hand-written codec packs), an open clinician session of `protocol`'s own
security layer (`open_session`, its host-to-pump key derived with the public `session_keys`),
and the long byte streams of the stream row, cut in 4096-byte chunks (`build_streams`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from _codec_peers import mav_highres_imu, mav_pair

import protocol as p

PUMP_ID = 1234
STATUS_SEQ = 1
CHUNK = 4096

# --- the values encoded by every variant --------------------------------------------------------

STATUS_KWARGS: dict[str, Any] = {
    "pump_time_ms": 1_790_000_000_000,
    "program_version": 7,
    "event_seq": 1234,
    "mode": p.ProgramMode.CONTINUOUS,
    "bolus": p.BolusKind.NONE,
    "suspended": False,
    "current_rate_nl_per_day": 250_000,
    "daily_dose_ng": 500_000,
    "drug": p.Drug.BACLOFEN,
    "concentration_ng_per_ml": 2_000_000,
    "concentration_unit": p.ConcentrationUnit.MCG_PER_ML,
    "reservoir_volume_nl": 18_000_000,
    "low_reservoir_threshold_nl": 2_000_000,
    "active_alarms": p.Alarm(0),
    "battery": p.BatteryState.OK,
    "battery_remaining_permille": 990,
    "low_reservoir_at_ms": 1_796_000_000_000,
    "empty_at_ms": 1_797_000_000_000,
    "last_refill_at_ms": 1_789_000_000_000,
    "replacement_due_at_ms": 1_900_000_000_000,
}
STATUS = p.Status(**STATUS_KWARGS)
# The same values as plain ints, in wire order, for the hand-written codec.
STATUS_VALUES: tuple[int, ...] = tuple(int(v) for v in STATUS_KWARGS.values())

DOSE_KWARGS: dict[str, Any] = {
    "command_id": bytes(range(16)),
    "expected_program_version": 0,
    "dose_ng_per_day": 500_000,
    "confirm_soft_limit": False,
}
DOSE = p.SetContinuousDose(**DOSE_KWARGS)
DOSE_VALUES: tuple[Any, ...] = (bytes(range(16)), 0, 500_000, 0)


class SelfCheckError(Exception):
    """A codec did not do what the benchmark assumes: the numbers would be meaningless."""


@dataclass
class Session:
    host: p.HostSecurity
    pump: p.PumpSecurity
    pump_decoder: p.FrameDecoder
    session_id: int
    k_h2p: bytes


def only_frame(items: Sequence[p.Frame | p.DecodeError]) -> p.Frame:
    frames = [x for x in items if isinstance(x, p.Frame)]
    if len(frames) != 1:
        raise SelfCheckError(f"expected exactly one frame, got {items!r}")
    return frames[0]


def open_session() -> Session:
    """Handshake a clinician session; derive k_h2p from the public handshake values."""
    rng = random.Random(1)
    rb = rng.randbytes
    kc, kp = p.SecretKey(rb(32)), p.SecretKey(rb(32))
    pump = p.PumpSecurity(PUMP_ID, {p.Role.CLINICIAN: kc, p.Role.PATIENT: kp}, rb)
    host = p.HostSecurity(PUMP_ID, p.Role.CLINICIAN, kc, rb, host_id=7)
    hd, pd = p.FrameDecoder(), p.FrameDecoder()
    hello_frame = only_frame(pd.feed(host.hello(seq=1)))
    hello = hello_frame.decode()
    r = pump.receive(hello_frame, 0)
    if not isinstance(r, p.Reply) or not isinstance(hello, p.Hello):
        raise SelfCheckError(f"handshake: HELLO gave {r!r}")
    challenge_frame = only_frame(hd.feed(r.data))
    challenge = challenge_frame.decode()
    ev = host.receive(challenge_frame)
    if not isinstance(ev, p.Send) or not isinstance(challenge, p.Challenge):
        raise SelfCheckError(f"handshake: CHALLENGE gave {ev!r}")
    r = pump.receive(only_frame(pd.feed(ev.data)), 0)
    if not isinstance(r, p.Reply):
        raise SelfCheckError(f"handshake: CONFIRM gave {r!r}")
    if not isinstance(host.receive(only_frame(hd.feed(r.data))), p.Established):
        raise SelfCheckError("handshake: SESSION_READY not accepted")
    k_h2p, _ = p.session_keys(kc, hello.nonce, challenge.nonce, challenge.session_id, hello.role)
    return Session(host, pump, pd, challenge.session_id, k_h2p)


def chunked(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def feed_all(feed: Callable[[bytes], Any], chunks: Sequence[bytes]) -> list[Any]:
    out: list[Any] = []
    for c in chunks:
        out.extend(feed(c) or ())
    return out


@dataclass
class Streams:
    frames: int
    ours: list[bytes]  # chunks of the STATUS stream (decoded by ours and hand-written)
    mav: list[bytes]  # chunks of the HIGHRES_IMU stream


def build_streams(frames: int, mav: Any | None) -> Streams:
    ours = b"".join(
        p.encode_frame(STATUS, pump_id=PUMP_ID, seq=k & 0xFFFF, from_pump=True)
        for k in range(frames)
    )
    mav_chunks: list[bytes] = []
    if mav is not None:
        tx, _ = mav_pair(mav, signed=False)
        msg = mav_highres_imu(mav)
        parts = []
        for k in range(frames):
            tx.seq = k % 256
            parts.append(msg.pack(tx))
        mav_chunks = chunked(b"".join(parts))
    return Streams(frames, chunked(ours), mav_chunks)
