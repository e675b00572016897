"""The protocol's `frozen_maker` (protocol/_fast.py) builds exactly what the frozen dataclass call
builds: the `Request` a pump session hands the pump for each frame and the `Response` a host
session returns are the same type, equal, hashed and shown alike, and still frozen."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol as p
from protocol._fast import frozen_maker
from protocol._host_session import _make_response
from protocol._pump_session import _make_request

frames = st.builds(
    lambda seq, pump_id: p.FrameDecoder().feed(
        p.encode_frame(p.GetStatus(), pump_id=pump_id, seq=seq, from_pump=False)
    )[0],
    st.integers(0, 0xFFFF),
    st.integers(1, 2**32 - 2),
)
messages = st.sampled_from([p.GetStatus(), p.GetClock(), p.GetEvents(cursor=3, max_count=7)])
sessions = st.none() | st.builds(
    p.SessionInfo, st.integers(0, 2**32 - 1), st.sampled_from(list(p.Role))
)


def _same(got: Any, want: Any) -> None:
    assert type(got) is type(want)
    assert got == want and hash(got) == hash(want) and repr(got) == repr(want)
    assert dataclasses.astuple(got) == dataclasses.astuple(want)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.frame = None


@given(messages, frames, sessions)
def test_the_request_maker_builds_the_request(msg: Any, frame: Any, info: Any) -> None:
    _same(_make_request(msg, frame, info), p.Request(msg, frame, info))
    _same(_make_request(message=msg, frame=frame, session=info), p.Request(msg, frame, info))


@given(messages, frames)
def test_the_response_maker_builds_the_response(msg: Any, frame: Any) -> None:
    _same(_make_response(msg, frame), p.Response(msg, frame))


def test_a_session_hands_out_what_the_class_builds() -> None:
    key = p.SecretKey(bytes(range(32)))
    pump = p.PumpSecurity(77, {p.Role.CLINICIAN: key}, secrets.token_bytes)
    host = p.HostSecurity(77, p.Role.CLINICIAN, key, secrets.token_bytes)
    now = 1_000

    def to_pump(data: bytes) -> Any:
        (frame,) = p.FrameDecoder().feed(data)
        assert isinstance(frame, p.Frame)
        return pump.receive(frame, now)

    def to_host(data: bytes) -> Any:
        (frame,) = p.FrameDecoder().feed(data)
        assert isinstance(frame, p.Frame)
        return host.receive(frame)

    confirm = to_host(to_pump(host.hello(seq=1)).data)
    assert isinstance(to_host(to_pump(confirm.data).data), p.Established)
    req = to_pump(host.seal(p.GetClock(), seq=3))
    _same(req, p.Request(req.message, req.frame, req.session))
    assert req.message == p.GetClock() and req.session is not None
    answer = p.Clock(pump_time_ms=5, speed_factor_milli=1000)
    resp = to_host(pump.reply(req, answer))
    _same(resp, p.Response(resp.message, resp.frame))
    assert resp.message == answer


def test_the_maker_refuses_what_it_cannot_copy() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(slots=True)
    class Mutable:
        a: int

    for cls in (NoSlots, Mutable):
        with pytest.raises(TypeError):
            frozen_maker(cls)
