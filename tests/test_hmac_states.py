"""`hmac_sha256` (the padded key's inner and outer SHA-256 states computed once, copied per
frame) is HMAC-SHA256: for any key and message the standard library's 32 bytes. And the frames a
session seals with it are the frames the keyed HMAC object seals (the tag the tests' raw sealers
compute with `send_mac`), so the wire does not change."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol as p
from protocol._channel import _Channel, hmac_sha256, keyed_mac
from protocol._frame import CRC_SIZE, TAG_SIZE

from .helpers import recrc


@given(key=st.binary(max_size=200), message=st.binary(max_size=300))
def test_it_is_hmac_sha256(key: bytes, message: bytes) -> None:
    tag = hmac_sha256(key)
    want = hmac.new(key, message, hashlib.sha256).digest()
    assert tag(message) == want
    assert tag(message) == want  # the keyed states are copied, never consumed
    h = keyed_mac(key).copy()
    h.update(message)
    assert h.digest() == want


def test_keys_at_the_block_size_edges() -> None:
    for n in (0, 1, 31, 32, 63, 64, 65, 128):
        key = secrets.token_bytes(n)
        for message in (b"", b"x", bytes(64), secrets.token_bytes(1000)):
            assert hmac_sha256(key)(message) == hmac.new(key, message, "sha256").digest()


@given(
    send_key=st.binary(min_size=32, max_size=32),
    dose=st.integers(0, 4_000_000_000),
    seq=st.integers(1, 0xFFFF),
)
def test_a_sealed_frame_carries_the_hmac_of_its_bytes(send_key: bytes, dose: int, seq: int) -> None:
    sender = _Channel(0x01020304, p.Role.CLINICIAN, send_key, bytes(32), 0)
    receiver = _Channel(0x01020304, p.Role.CLINICIAN, bytes(32), send_key, 0)
    message = p.SetContinuousDose(
        command_id=bytes(16),
        expected_program_version=3,
        dose_ng_per_day=dose,
        confirm_soft_limit=False,
    )
    data = sender.seal(message, pump_id=1234, seq=seq, from_pump=False)
    body = data[: -TAG_SIZE - CRC_SIZE]
    want = hmac.new(send_key, body[2:], hashlib.sha256).digest()[:TAG_SIZE]
    assert data[len(body) : len(body) + TAG_SIZE] == want
    (frame,) = p.FrameDecoder().feed(data)
    assert isinstance(frame, p.Frame)
    assert receiver.authentic(frame)
    forged = bytearray(data)
    forged[len(body)] ^= 1  # one bit of the tag
    (bad,) = p.FrameDecoder().feed(recrc(forged))
    assert isinstance(bad, p.Frame)
    assert not receiver.authentic(bad)
    with pytest.raises(p.AuthFailed):
        receiver.verify(bad)
    receiver.verify(frame)  # the forgery moved nothing; now the window moves
    with pytest.raises(p.Replayed):
        receiver.verify(frame)
