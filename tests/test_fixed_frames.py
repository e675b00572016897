"""protocol.FixedFrames: a fixed-size message's frames straight from field values.

Checked against the generic encoder for every qualifying declared message: for any field values
(valid ones and the kinds of wrong ones a caller could pass: out of range, wrong type, unknown
enum members and flag bits, bytes of the wrong length) the fast frame is byte for byte the
frame `encode_frame(Msg(...))` builds, or both refuse the values with the same FieldValueError.
"""

from __future__ import annotations

import enum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol as p
from protocol._fields import FieldSpec, Kind
from protocol._schema import MESSAGES, Direction, Record

QUALIFYING = sorted(
    (
        cls
        for cls in MESSAGES.values()
        if all(f.fixed for f in cls.FIELDS) and cls._check is Record._check
    ),
    key=lambda cls: cls.MSG_ID,
)


def field_values(f: FieldSpec) -> st.SearchStrategy[Any]:
    """Valid values of the field and near misses of every kind."""
    junk = st.sampled_from([None, 1.0, "1", b"\x01"])
    if f.kind is Kind.INT:
        assert f.min is not None and f.max is not None
        return st.one_of(
            st.integers(f.min, f.max),
            st.sampled_from([f.min, f.max, f.min - 1, f.max + 1]),
            st.integers(f.min - 1000, f.max + 1000),
            st.booleans(),
            junk,
        )
    if f.kind is Kind.BOOL:
        return st.one_of(st.booleans(), st.integers(-1, 2), junk)
    if f.kind is Kind.ENUM:
        assert f.enum_type is not None
        return st.one_of(st.sampled_from(list(f.enum_type)), st.integers(-1, 300), junk)
    if f.kind is Kind.FLAGS:
        assert f.enum_type is not None
        flags: type[enum.IntFlag] = f.enum_type  # type: ignore[assignment]
        members = [m.value for m in flags]
        valid = st.lists(st.sampled_from(members)).map(lambda ms: sum(set(ms)))
        return st.one_of(
            valid,
            valid.map(flags),
            st.integers(-1, 2**32),
            st.booleans(),
            junk,
        )
    assert f.kind is Kind.BYTES
    n = f.base.length
    return st.one_of(
        st.binary(min_size=n, max_size=n),
        st.binary(min_size=n, max_size=n).map(bytearray),
        st.binary(min_size=max(0, n - 1), max_size=n + 1),
        junk,
    )


@st.composite
def message_and_values(draw: st.DrawFn) -> tuple[type[p.Message], list[Any]]:
    cls = draw(st.sampled_from(QUALIFYING))
    return cls, [draw(field_values(f)) for f in cls.FIELDS]


def generic(cls: type[p.Message], values: list[Any], pump_id: int, seq: int) -> bytes | str:
    """encode_frame's bytes, or the text of the FieldValueError that refuses the values."""
    try:
        msg = cls(**{f.name: v for f, v in zip(cls.FIELDS, values, strict=True)})
    except p.FieldValueError as exc:
        return str(exc)
    return p.encode_frame(
        msg, pump_id=pump_id, seq=seq, from_pump=cls.DIRECTION is Direction.PUMP_TO_HOST
    )


def fast(cls: type[p.Message], values: list[Any], pump_id: int, seq: int) -> bytes | str:
    frames = p.FixedFrames(cls, from_pump=cls.DIRECTION is Direction.PUMP_TO_HOST)
    try:
        return frames.encode(pump_id, *values, seq=seq)
    except p.FieldValueError as exc:
        return str(exc)


def test_there_is_something_to_compare() -> None:
    assert p.TelemetryBeacon in QUALIFYING
    assert len(QUALIFYING) >= 5


@given(
    message_and_values(),
    st.integers(1, p.BROADCAST_PUMP_ID - 1),
    st.integers(0, 0xFFFF),
)
def test_fast_frames_equal_the_generic_encoder(
    case: tuple[type[p.Message], list[Any]], pump_id: int, seq: int
) -> None:
    cls, values = case
    assert fast(cls, values, pump_id, seq) == generic(cls, values, pump_id, seq)


beacon_fields = [field_values(f) for f in p.TelemetryBeacon.FIELDS]


@given(st.tuples(*beacon_fields), st.integers(1, p.BROADCAST_PUMP_ID - 1))
def test_beacon_header_once_then_tails(values: tuple[Any, ...], pump_id: int) -> None:
    """The fleet's way: the header and its CRC register once per pump, a tail per beacon; the
    frame decodes to the beacon those values make."""
    frames = p.FixedFrames(p.TelemetryBeacon, from_pump=True)
    head, crc = frames.header(pump_id)
    expected = generic(p.TelemetryBeacon, list(values), pump_id, 0)
    try:
        frame = head + frames.tail(crc, *values)
    except p.FieldValueError as exc:
        assert str(exc) == expected
        return
    assert frame == expected
    (got,) = p.FrameDecoder().feed(frame)
    assert isinstance(got, p.Frame) and got.pump_id == pump_id and got.from_pump
    msg = got.decode()
    assert msg == p.TelemetryBeacon(*values)


def test_only_fixed_messages_without_cross_field_rules() -> None:
    with pytest.raises(TypeError, match="variable-size"):
        p.FixedFrames(p.ClockLocal, from_pump=True)
    with pytest.raises(TypeError, match="cross-field"):
        p.FixedFrames(p.SilenceAlarms, from_pump=False)
