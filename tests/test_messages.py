"""Every message round-trips; construct (the declaration) and the fast codec agree; bad values
are refused on build and on decode with a documented error."""

from __future__ import annotations

import dataclasses
import random
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol as p
from protocol import gen
from protocol._schema import Kind, Record

from .helpers import ALL_MESSAGES, any_message, plain


@given(any_message)
def test_every_message_round_trips_through_a_frame(message: p.Message) -> None:
    data = plain(message, seq=0xBEEF)
    (frame,) = p.FrameDecoder().feed(data)
    assert isinstance(frame, p.Frame)
    assert frame.msg_id == message.MSG_ID and frame.seq == 0xBEEF
    decoded = frame.decode()
    assert decoded == message
    assert type(decoded) is type(message)
    assert plain(decoded, seq=0xBEEF) == data


def _construct_view(value: Any, f: Any) -> Any:
    """What construct's parse returns for a field, in our representation."""
    if f.kind is Kind.ARRAY:
        return tuple(_construct_record(item, f.item) for item in value)
    if f.kind is Kind.FLAGS:
        return sum(v for k, v in f.enum_type.__members__.items() if value[k])
    if f.kind in (Kind.ENUM,):
        return int(value)
    return value


def _construct_record(container: Any, cls: type[Record]) -> dict[str, Any]:
    return {f.name: _construct_view(container[f.name], f) for f in cls.FIELDS}


def _ours(record: Record) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in record.FIELDS:
        v = getattr(record, f.name)
        if f.kind is Kind.ARRAY:
            v = tuple(_ours(item) for item in v)
        elif f.kind in (Kind.ENUM, Kind.FLAGS):
            v = int(v)
        out[f.name] = v
    return out


@given(any_message)
def test_construct_declaration_and_fast_codec_agree(message: p.Message) -> None:
    payload = message.encode_payload()
    parsed = message.STRUCT.parse(payload)
    assert _construct_record(parsed, type(message)) == _ours(message)
    assert message.STRUCT.build(parsed) == payload
    if message.SIZE >= 0:
        assert message.STRUCT.sizeof() == len(payload) == message.SIZE


def test_catalogue_covers_the_workflows() -> None:
    names = {cls.NAME for cls in ALL_MESSAGES}
    required = {
        "HELLO", "CHALLENGE", "CONFIRM", "SESSION_READY", "END_SESSION", "SESSION_ENDED",
        "GET_DEVICE_INFO", "DEVICE_INFO", "GET_STATUS", "STATUS", "GET_DRUG", "DRUG_INFO",
        "SET_DRUG", "SET_CONTINUOUS_DOSE", "SET_SCHEDULE", "START_CLINICIAN_BOLUS",
        "CANCEL_BOLUS", "START_PRIMING_BOLUS", "START_BRIDGE", "SET_PATIENT_BOLUS",
        "GET_PATIENT_BOLUS", "REQUEST_PATIENT_BOLUS", "RECORD_REFILL", "REFILL_RESULT",
        "SET_ALARM_SETTINGS", "GET_ALARMS", "ALARM_LIST", "ACKNOWLEDGE_ALARMS",
        "SILENCE_ALARMS", "ALARM_TEST", "GET_EVENTS", "EVENT_PAGE", "GET_CLOCK", "SET_CLOCK",
        "SUSPEND", "RESUME", "GET_COMMAND_STATUS", "COMMAND_STATUS", "TELEMETRY_BEACON",
        "ERROR", "COMMAND_ACK",
    }  # fmt: skip
    assert required <= names
    assert p.SetSchedule.FIELDS[-1].max is not None and p.SetSchedule.FIELDS[-1].max >= 24


def test_every_field_is_documented_and_units_are_named() -> None:
    for cls in ALL_MESSAGES:
        assert cls.__doc__ and cls.__doc__.strip()
        for f in cls.FIELDS:
            assert f.doc.strip(), f"{cls.NAME}.{f.name} has no doc"
            if f.kind is Kind.INT and f.unit:
                assert f.name.endswith(
                    (
                        "_nl",
                        "_ng",
                        "_ms",
                        "_per_day",
                        "_per_ml",
                        "_milli",
                        "_permille",
                        "_ppm",
                        "minute",
                    )
                ), f"{cls.NAME}.{f.name}: unit {f.unit} not named in the field"


def test_therapy_commands_carry_command_id_and_expected_version() -> None:
    for cls in ALL_MESSAGES:
        names = [f.name for f in cls.FIELDS]
        if cls.KIND is p.CommandKind.THERAPY:
            assert names[:2] == ["command_id", "expected_program_version"], cls.NAME
        if cls.KIND is p.CommandKind.COMMAND:
            assert names[0] == "command_id", cls.NAME


def test_responses_that_echo_commands_carry_the_command_id() -> None:
    for cls in (p.CommandAck, p.RefillResult, p.PatientBolusAccepted, p.CommandStatus, p.Error):
        assert cls.FIELDS[0].name == "command_id" or "command_id" in {f.name for f in cls.FIELDS}
    for cls in (p.CommandAck, p.RefillResult, p.PatientBolusAccepted):
        assert "duplicate" in {f.name for f in cls.FIELDS}


def test_seeds_differ_between_messages_and_follow_layout() -> None:
    seeds = [cls.SEED for cls in ALL_MESSAGES]
    assert len(set(seeds)) == len(seeds)
    assert p.crc16(p.SetContinuousDose.signature().encode()) == p.SetContinuousDose.SEED


def test_no_float_fields_anywhere() -> None:
    for cls in ALL_MESSAGES:
        for f in cls.FIELDS:
            assert "f" not in f.fmt and "d" not in f.fmt and "e" not in f.fmt


# --- invalid values are refused on build --------------------------------------------------------


def _valid(cls: type[Any]) -> Any:
    return gen._example(cls, "sample", random.Random(7))


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.NAME)
def test_out_of_range_values_are_refused_when_building(cls: type[p.Message]) -> None:
    base = _valid(cls)
    for f in cls.FIELDS:
        bad: list[Any] = []
        if f.kind is Kind.INT:
            assert f.min is not None and f.max is not None
            bad = [f.min - 1, f.max + 1, "1", 1.5, True]
        elif f.kind is Kind.BOOL:
            bad = [2, "yes", None]
        elif f.kind is Kind.ENUM:
            assert f.enum_type is not None
            bad = [max(m.value for m in f.enum_type) + 1, "A", None]
        elif f.kind is Kind.FLAGS:
            bad = [1 << 31, -1, "x"]
        elif f.kind is Kind.BYTES:
            bad = [b"\x00" * (f.base.length + 1), b"", "x" * f.base.length]
        elif f.kind is Kind.TEXT:
            assert f.max is not None
            bad = ["é" * f.max, b"bytes", None, "\ud800"]
        elif f.kind is Kind.ARRAY:
            assert f.max is not None and f.item is not None
            item = _valid(f.item)
            bad = [(item,) * (f.max + 1), ("not a record",), 5]
        for value in bad:
            with pytest.raises(p.FieldValueError) as info:
                dataclasses.replace(base, **{f.name: value})
            assert info.value.code is p.ErrorCode.MALFORMED
            assert f.name in str(info.value)


def test_schedule_rules_are_enforced() -> None:
    cid = bytes(16)
    ok = p.SetSchedule(cid, 0, False, (p.ScheduleStep(0, 1), p.ScheduleStep(60, 2)))
    assert len(ok.steps) == 2
    for steps in [
        (),
        (p.ScheduleStep(30, 1),),
        (p.ScheduleStep(0, 1), p.ScheduleStep(0, 2)),
        (p.ScheduleStep(0, 1), p.ScheduleStep(90, 2), p.ScheduleStep(60, 3)),
    ]:
        with pytest.raises(p.FieldValueError):
            p.SetSchedule(cid, 0, False, steps)


def test_lists_become_tuples_and_ints_become_enums() -> None:
    m = p.SetSchedule(bytes(16), 0, False, [p.ScheduleStep(0, 1)])  # type: ignore[arg-type]
    assert isinstance(m.steps, tuple)
    h = p.Hello(host_id=1, role=1, nonce=bytes(16))  # type: ignore[arg-type]
    assert h.role is p.Role.CLINICIAN
    assert hash(h) == hash(p.Hello(host_id=1, role=p.Role.CLINICIAN, nonce=bytes(16)))


# --- invalid payloads are refused on decode ------------------------------------------------------


@given(any_message, st.data())
def test_wrong_payload_sizes_are_refused(message: p.Message, data: st.DataObject) -> None:
    payload = message.encode_payload()
    cut = data.draw(st.integers(0, max(0, len(payload) - 1)))
    for bad in (payload[:cut], payload + b"\x00"):
        if bad == payload:
            continue
        try:
            decoded = type(message).decode_payload(bad)
        except p.MessageError as exc:
            assert exc.code is p.ErrorCode.MALFORMED
        else:  # a shorter variable-length payload can still be valid: then it must re-encode
            assert decoded.encode_payload() == bad


def test_out_of_range_payload_values_are_refused() -> None:
    good = p.SetPatientBolus(bytes(16), 0, True, 100_000, 600_000, 3_600_000, 4, False)
    payload = bytearray(good.encode_payload())
    lockout_at = 16 + 4 + 1 + 4 + 4
    struct.pack_into("<I", payload, lockout_at, 0)  # lockout 0 is never allowed
    with pytest.raises(p.FieldValueError, match="lockout_ms"):
        p.SetPatientBolus.decode_payload(bytes(payload))
    payload = bytearray(good.encode_payload())
    payload[20] = 2  # bool 'enabled' = 2
    with pytest.raises(p.FieldValueError, match="enabled"):
        p.SetPatientBolus.decode_payload(bytes(payload))
    hello = bytearray(p.Hello(1, p.Role.PATIENT, bytes(16)).encode_payload())
    hello[4] = 9  # unknown role
    with pytest.raises(p.FieldValueError, match="role"):
        p.Hello.decode_payload(bytes(hello))
    ack = bytearray(p.AcknowledgeAlarms(bytes(16), p.Alarm.LOW_RESERVOIR).encode_payload())
    ack[19] = 0x80  # unknown alarm bit
    with pytest.raises(p.FieldValueError, match="unknown bits"):
        p.AcknowledgeAlarms.decode_payload(bytes(ack))
    err = bytearray(p.Error(p.ErrorCode.MALFORMED, 1, bytes(16), "ab").encode_payload())
    err[-2:] = b"\xff\xfe"
    with pytest.raises(p.FieldValueError, match="UTF-8"):
        p.Error.decode_payload(bytes(err))


def test_every_message_is_exported_from_the_package_and_the_catalogue() -> None:
    """protocol/__init__.py and protocol/_messages.py each spell out the message names (the
    package's explicit surface, checked by mypy): a message declared and left out of either
    list fails here, as does a name bound to another class."""
    from protocol import _messages

    for cls in p.MESSAGES.values():
        assert cls.__name__ in p.__all__ and cls.__name__ in _messages.__all__, cls.__name__
        assert getattr(p, cls.__name__) is cls and getattr(_messages, cls.__name__) is cls
