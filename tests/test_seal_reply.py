"""The positional sealing paths (`_Channel.seal_reply` for the pump, `seal_request` for the
host, both through `protocol._frame._seal`) write the very bytes of `_Channel.seal(...)` with
`from_pump` True or False and of a frame laid out by hand from the spec (header, then session id
and counter, payload, truncated HMAC-SHA256, CRC), move the counter the same way, and refuse an
exhausted counter the same way, changing nothing."""

from __future__ import annotations

import binascii
import hashlib
import hmac
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol as p
from protocol._channel import MAX_COUNTER, _Channel
from protocol._frame import CRC_SIZE, FLAG_AUTH, FLAG_FROM_PUMP, TAG_SIZE

KEY_OUT, KEY_IN = bytes(range(32)), bytes(range(32, 64))

messages = st.one_of(
    st.just(p.GetStatus()),
    st.builds(
        p.Clock,
        pump_time_ms=st.integers(0, 2**63 - 1),
        speed_factor_milli=st.integers(1, 1000),
    ),
    st.builds(
        p.ClockLocal,
        pump_time_ms=st.integers(0, 2**40),
        speed_factor_milli=st.just(1000),
        utc_offset_ms=st.integers(-14 * 3_600_000, 14 * 3_600_000),
        zone=st.sampled_from(["UTC", "Europe/Paris", ""]),
    ),
)


def _pair(session_id: int, counter: int) -> tuple[_Channel, _Channel]:
    a = _Channel(session_id, p.Role.CLINICIAN, KEY_OUT, KEY_IN, 0)
    b = _Channel(session_id, p.Role.CLINICIAN, KEY_OUT, KEY_IN, 0)
    a.send_counter = b.send_counter = counter
    return a, b


def _by_hand(
    msg: p.Message, pump_id: int, seq: int, session_id: int, counter: int, flags: int
) -> bytes:
    payload = msg._encode()
    body = struct.pack("<2sBBHHHI", b"\xe7\x1a", 1, flags, len(payload), seq, msg.MSG_ID, pump_id)
    body += struct.pack("<II", session_id, counter) + payload
    body += hmac.new(KEY_OUT, body[2:], hashlib.sha256).digest()[:TAG_SIZE]
    return body + struct.pack("<H", binascii.crc_hqx(body, msg.CRC_INIT))


@given(
    msg=messages,
    pump_id=st.integers(0, 2**32 - 1),
    seq=st.integers(0, 0xFFFF),
    session_id=st.integers(0, 2**32 - 1),
    counter=st.integers(0, MAX_COUNTER - 1),
)
def test_seal_reply_is_seal_from_the_pump(
    msg: p.Message, pump_id: int, seq: int, session_id: int, counter: int
) -> None:
    a, b = _pair(session_id, counter)
    got = a.seal_reply(msg, pump_id, seq)
    want = b.seal(msg, pump_id=pump_id, seq=seq, from_pump=True)
    assert got == want
    assert a.send_counter == b.send_counter == counter + 1
    assert got == _by_hand(msg, pump_id, seq, session_id, counter + 1, FLAG_AUTH | FLAG_FROM_PUMP)
    (frame,) = p.FrameDecoder().feed(got)
    assert isinstance(frame, p.Frame)
    assert frame.from_pump and frame.authenticated and frame.seq == seq
    assert frame.session_id == session_id and frame.counter == counter + 1
    assert frame.decode() == msg
    assert len(frame.raw) == len(got) and frame.raw[-CRC_SIZE:] == got[-CRC_SIZE:]


@given(
    pump_id=st.integers(0, 2**32 - 1),
    seq=st.integers(0, 0xFFFF),
    session_id=st.integers(0, 2**32 - 1),
    counter=st.integers(0, MAX_COUNTER - 1),
    msg=st.sampled_from([p.GetStatus(), p.GetClock(), p.GetEvents(cursor=5, max_count=9)]),
)
def test_seal_request_is_seal_from_the_host(
    msg: p.Message, pump_id: int, seq: int, session_id: int, counter: int
) -> None:
    a, b = _pair(session_id, counter)
    got = a.seal_request(msg, pump_id, seq)
    assert got == b.seal(msg, pump_id=pump_id, seq=seq, from_pump=False)
    assert a.send_counter == b.send_counter == counter + 1
    assert got == _by_hand(msg, pump_id, seq, session_id, counter + 1, FLAG_AUTH)
    (frame,) = p.FrameDecoder().feed(got)
    assert isinstance(frame, p.Frame)
    assert not frame.from_pump and frame.authenticated and frame.decode() == msg


def test_an_exhausted_counter_is_refused_alike_and_nothing_moves() -> None:
    a, b = _pair(9, MAX_COUNTER)
    with pytest.raises(p.SessionExpired) as got:
        a.seal_reply(p.GetStatus(), 1, 2)
    with pytest.raises(p.SessionExpired) as want:
        b.seal(p.GetStatus(), pump_id=1, seq=2, from_pump=True)
    assert str(got.value) == str(want.value)
    with pytest.raises(p.SessionExpired):
        a.seal_request(p.GetStatus(), 1, 2)
    assert a.send_counter == b.send_counter == MAX_COUNTER
