"""100,000 mutated frames (CRC recomputed, as an attacker would) into the pump's session layer:
no exception escapes, nothing is accepted, and no session state changes."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

import protocol as p

from .helpers import PUMP_ID, Pair, dose, recrc


def _fingerprint(pump: p.PumpSecurity) -> Any:
    return tuple(
        (s.session_id, s.role, s.window.highest, s.window.bitmap, s.send_counter, s.last_ms)
        for s in pump._sessions.values()
    )


def _mutate(rng: random.Random, frame: bytes, sessions: list[int]) -> bytes:
    data = bytearray(frame)
    op = rng.randrange(9)
    if op == 0:  # bit flips anywhere but the CRC
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data) - 2)
            data[i] ^= 1 << rng.randrange(8)
    elif op == 1:  # random byte values
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(2, len(data) - 2)] = rng.randrange(256)
    elif op == 2:  # payload truncated or extended, length field kept consistent (a lying peer)
        n = int.from_bytes(data[4:6], "little")
        new = max(0, n + rng.randint(-n, 12))
        payload = bytes(data[22 : 22 + n])
        payload = (payload + rng.randbytes(12))[:new]
        data = data[:22] + payload + data[22 + n : -2] + b"\0\0"
        data[4:6] = new.to_bytes(2, "little")
    elif op == 3:  # another message id in the same envelope
        data[8:10] = rng.choice(list(p.MESSAGES)).to_bytes(2, "little")
    elif op == 4:  # strip the session header and tag: the same command, unauthenticated
        n = int.from_bytes(data[4:6], "little")
        data = data[:14] + data[22 : 22 + n] + b"\0\0"
        data[3] &= ~0x01
        if rng.random() < 0.5:
            data[3] |= 0x04  # ... and claim to come from the pump
    elif op == 5 and rng.random() < 0.3:  # claim to come from the pump
        data[3] |= 0x04
    elif op == 5:  # counter moved (far future, zero, past)
        data[18:22] = rng.choice((0, 1, 2**32 - 1, rng.randrange(2**32))).to_bytes(4, "little")
    elif op == 6:  # another (live or made-up) session id
        sid = rng.choice([*sessions, rng.randrange(2**32)])
        data[14:18] = sid.to_bytes(4, "little")
    elif op == 7:  # a fresh random payload with a random tag
        n = int.from_bytes(data[4:6], "little")
        data[22 : 22 + n + 16] = rng.randbytes(n + 16)
    else:  # another pump's id
        data[10:14] = rng.randrange(2**32).to_bytes(4, "little")
    return recrc(data)


def _fuzz(n: int, seed: int) -> Counter[str]:
    rng = random.Random(seed)
    pair = Pair(seed=seed)
    clinician = pair.new_host(p.Role.CLINICIAN)
    patient = pair.new_host(p.Role.PATIENT)
    pair.handshake(clinician)
    pair.handshake(patient)
    # Valid sealed frames, already delivered once (so exact replays are also in the mix).
    genuine = []
    for i in range(1, 41):
        host = clinician if i % 2 else patient
        message: p.Message = dose(i) if host is clinician else p.RequestPatientBolus(bytes(16), i)
        frame = host.seal(message, seq=i)
        assert isinstance(pair.to_pump(frame), p.Request)
        genuine.append(frame)
    # ... and valid frames never delivered, whose mutations get past the replay pre-check.
    fresh = [clinician.seal(dose(1000 + i), seq=i) for i in range(40)]
    fresh += [patient.seal(p.GetStatus(), seq=i) for i in range(40)]
    sessions = [s.session_id for s in pair.pump.sessions]
    before = _fingerprint(pair.pump)
    stats: Counter[str] = Counter()
    decoder = p.FrameDecoder()
    while stats["session inputs"] < n:
        original = rng.choice(genuine if rng.random() < 0.3 else fresh)
        data = _mutate(rng, original, sessions)
        if data == original:  # a no-op mutation (e.g. the same session id drawn)
            continue
        for item in decoder.feed(data):
            if not isinstance(item, p.Frame):
                stats["framing: " + type(item).__name__] += 1
                continue
            stats["session inputs"] += 1
            result = pair.pump.receive(item, pair.now_ms)
            if isinstance(result, p.Rejected):
                stats[type(result.error).__name__] += 1
                assert isinstance(result.error.code, p.ErrorCode)
                if result.reply is not None:
                    # Refusals of unauthenticated frames are never sealed in a session.
                    assert not p.FrameDecoder().feed(result.reply)[0].authenticated  # type: ignore[union-attr]
            else:
                # Only a mutation that produced a well-formed *open* message may get through:
                # the session layer never accepts anything that needs a session.
                assert not item.authenticated, (data.hex(), result)
                assert type(item.decode()).ACCESS is p.Access.OPEN
                stats["open message"] += 1
        assert _fingerprint(pair.pump) == before
    decoder.feed(b"")
    # The replay windows never moved: genuine frames are still accepted, fresh ones too.
    assert isinstance(pair.to_pump(fresh[0]), p.Request)
    assert isinstance(pair.send(dose(10_000), clinician), p.Request)
    assert isinstance(pair.send(p.GetStatus(), patient), p.Request)
    return stats


def test_100k_mutated_frames_into_the_session_layer() -> None:
    stats = _fuzz(100_000, seed=7)
    print(dict(stats))
    assert stats["session inputs"] >= 100_000
    assert stats["AuthFailed"] > 1000 and stats["Replayed"] > 100 and stats["WrongPump"] > 100
    assert stats["NotAuthenticated"] > 100 and stats["WrongDirection"] > 100


@pytest.mark.slow
def test_1m_mutated_frames_into_the_session_layer() -> None:
    _fuzz(1_000_000, seed=8)


def test_garbage_that_decodes_as_open_messages_is_harmless() -> None:
    pair = Pair()
    rng = random.Random(1)
    for _ in range(2000):
        hello = p.Hello(
            host_id=rng.randrange(2**32), role=p.Role.CLINICIAN, nonce=rng.randbytes(16)
        )
        data = p.encode_frame(hello, pump_id=PUMP_ID, seq=1, from_pump=False)
        assert isinstance(pair.to_pump(data), p.Reply)
    # A flood of HELLOs keeps only a bounded number of pending handshakes.
    assert len(pair.pump._pending) <= p.SessionPolicy().max_pending_handshakes
    pair.handshake()
