"""The self-check bench/codec.py runs before timing: proof that the variants do the same work.

Ours and the hand-written codec produce byte-identical frames (the sealed one with the same
session key and counter) and each decodes the other's; every codec rejects every single-bit
corruption of its frame; a tampered payload with a recomputed CRC is caught by the tag or the
signature; a replay is rejected; the stream decoders recover after a corrupt frame. A failure
raises `SelfCheckError`: the numbers would be meaningless.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from _codec_fixtures import (
    CHUNK,
    DOSE,
    DOSE_VALUES,
    PUMP_ID,
    STATUS,
    STATUS_SEQ,
    STATUS_VALUES,
    SelfCheckError,
    Session,
    Streams,
    chunked,
    feed_all,
    open_session,
)
from _codec_peers import (
    HW_CRC,
    HandAuthReceiver,
    HandAuthSender,
    HandError,
    HandStreamDecoder,
    hw_decode_status,
    hw_encode_status,
    mav_accepted,
    mav_command_long,
    mav_fix_crc,
    mav_highres_imu,
    mav_pair,
    mav_receiver,
)

import protocol as p


def ours_accepts_status(data: bytes) -> bool:
    items = p.FrameDecoder().feed(data)
    try:
        return any(isinstance(x, p.Frame) and x.decode() == STATUS for x in items)
    except p.MessageError:
        return False


def ours_accepts_dose(s: Session, data: bytes) -> bool:
    items = p.FrameDecoder().feed(data)
    frames = [x for x in items if isinstance(x, p.Frame)]
    return any(
        isinstance(r, p.Request) and r.message == DOSE
        for r in (s.pump.receive(f, 0) for f in frames)
    )


def hand_accepts(decode: Callable[[bytes], tuple[Any, ...]], data: bytes) -> bool:
    try:
        decode(data)
    except (HandError, struct.error):
        return False
    return True


def bit_flips(data: bytes) -> list[bytes]:
    out = []
    for k in range(len(data) * 8):
        b = bytearray(data)
        b[k // 8] ^= 1 << (k % 8)
        out.append(bytes(b))
    return out


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SelfCheckError(what)


def self_check_status(mav: Any | None) -> list[str]:
    ours = p.encode_frame(STATUS, pump_id=PUMP_ID, seq=STATUS_SEQ, from_pump=True)
    hand = hw_encode_status(STATUS_VALUES, PUMP_ID, STATUS_SEQ)
    check(len(ours) == 96, f"status frame is {len(ours)} bytes, expected 96")
    check(ours == hand, "status: hand-written frame differs from encode_frame")
    check(hw_decode_status(ours) == STATUS_VALUES, "status: hand-written decoder misreads ours")
    check(ours_accepts_status(hand), "status: ours does not decode the hand-written frame")
    flips = bit_flips(ours)
    check(not any(ours_accepts_status(f) for f in flips), "status: ours accepted a 1-bit flip")
    check(
        not any(hand_accepts(hw_decode_status, f) for f in flips),
        "status: hand-written accepted a 1-bit flip",
    )
    notes = [f"status: ours == hand-written (96 B); {len(flips)} 1-bit flips rejected by both"]
    if mav is not None:
        tx, rx = mav_pair(mav, signed=False)
        msg = mav_highres_imu(mav)
        data = msg.pack(tx)
        check(len(data) == 75, f"HIGHRES_IMU frame is {len(data)} bytes, expected 75")
        check(mav_accepted(rx, data, msg), "pymavlink: HIGHRES_IMU does not round-trip")
        mflips = bit_flips(data)
        check(
            not any(mav_accepted(mav_receiver(mav, False), f, msg) for f in mflips),
            "pymavlink: accepted a 1-bit flip of HIGHRES_IMU",
        )
        notes.append(f"status: pymavlink HIGHRES_IMU 75 B; {len(mflips)} 1-bit flips rejected")
    return notes


def self_check_auth(mav: Any | None) -> list[str]:
    s = open_session()
    sender = HandAuthSender(s.k_h2p, s.session_id, PUMP_ID)
    receiver = HandAuthReceiver(s.k_h2p, s.session_id, PUMP_ID)
    ours = s.host.seal(DOSE, seq=5)  # the host's first sealed frame: counter 1
    hand = sender.seal(DOSE_VALUES, seq=5)  # counter 1, same key
    check(len(ours) == 65, f"sealed dose frame is {len(ours)} bytes, expected 65")
    check(ours == hand, "auth: hand-written sealed frame differs from HostSecurity.seal")
    flips = bit_flips(ours)
    check(not any(ours_accepts_dose(s, f) for f in flips), "auth: ours accepted a 1-bit flip")
    check(
        not any(hand_accepts(receiver.open, f) for f in flips),
        "auth: hand-written accepted a 1-bit flip",
    )
    # Change the payload and recompute the CRC: only the tag can catch it.
    forged = bytearray(ours)
    forged[30] ^= 0x01
    forged[-2:] = HW_CRC.pack(p.frame_crc(bytes(forged[:-2]), p.SetContinuousDose.SEED))
    check(not ours_accepts_dose(s, bytes(forged)), "auth: ours accepted a forged tag")
    check(not hand_accepts(receiver.open, bytes(forged)), "auth: hand accepted a forged tag")
    check(receiver.open(ours) == DOSE_VALUES, "auth: hand-written decoder misreads ours")
    check(ours_accepts_dose(s, ours), "auth: ours does not accept its own frame")
    check(not ours_accepts_dose(s, ours), "auth: ours accepted a replay")
    check(not hand_accepts(receiver.open, ours), "auth: hand-written accepted a replay")
    check(ours_accepts_dose(s, sender.seal(DOSE_VALUES, 6)), "auth: ours rejects a hand frame")
    notes = [
        "auth: ours == hand-written (65 B, same session key/counter); each accepts the other's; "
        f"{len(flips)} 1-bit flips, a forged payload with valid CRC and a replay rejected by both"
    ]
    if mav is not None:
        tx, rx = mav_pair(mav, signed=True)
        msg = mav_command_long(mav)
        data = msg.pack(tx)
        check(len(data) == 58, f"signed COMMAND_LONG is {len(data)} bytes, expected 58")
        check(mav_accepted(rx, data, msg), "pymavlink: signed COMMAND_LONG does not round-trip")
        check(rx.signing.goodsig_count == 1, "pymavlink: signature was not verified")
        mflips = bit_flips(data)
        check(
            not any(mav_accepted(mav_receiver(mav, True), f, msg) for f in mflips),
            "pymavlink: accepted a 1-bit flip of a signed COMMAND_LONG",
        )
        mforged = bytearray(msg.pack(tx))
        mforged[20] ^= 0x01
        mav_fix_crc(mav, mforged, msg.crc_extra)
        check(not mav_accepted(rx, bytes(mforged), msg), "pymavlink: accepted a forged signature")
        check(rx.signing.badsig_count == 1, "pymavlink: forged frame not caught by the signature")
        check(not mav_accepted(rx, data, msg), "pymavlink: accepted a replay")
        notes.append(
            f"auth: pymavlink signed COMMAND_LONG 58 B, signature verified; {len(mflips)} 1-bit "
            "flips, a forged payload with valid CRC and a replay rejected"
        )
    return notes


def self_check_stream(streams: Streams, mav: Any | None) -> list[str]:
    n = streams.frames
    got = [x.decode() for x in feed_all(p.FrameDecoder().feed, streams.ours)]
    check(len(got) == n and all(m == STATUS for m in got), "stream: ours lost frames")
    hand = feed_all(HandStreamDecoder().feed, streams.ours)
    check(len(hand) == n and all(t == STATUS_VALUES for t in hand), "stream: hand lost frames")
    # One corrupted frame in the middle: both hunting decoders must deliver the other n - 1.
    bad = bytearray(b"".join(streams.ours))
    bad[(n // 2) * 96 + 40] ^= 0x10
    bad_chunks = chunked(bytes(bad))
    got_bad = [x for x in feed_all(p.FrameDecoder().feed, bad_chunks) if isinstance(x, p.Frame)]
    check(len(got_bad) == n - 1, "stream: ours did not recover after a corrupt frame")
    check(
        len(feed_all(HandStreamDecoder().feed, bad_chunks)) == n - 1,
        "stream: hand-written did not recover after a corrupt frame",
    )
    notes = [f"stream: {n} frames in {CHUNK}-byte chunks decoded by ours and hand-written"]
    if mav is not None:
        msgs = feed_all(mav_receiver(mav, False).parse_buffer, streams.mav)
        check(len(msgs) == n, f"stream: pymavlink decoded {len(msgs)} of {n} frames")
        notes.append(f"stream: pymavlink decoded all {n} HIGHRES_IMU frames")
    return notes
