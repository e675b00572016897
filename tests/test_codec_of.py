"""`Message._of(*values)`, the positional constructor of the pump's hot answers, is the class
call: for any values, valid or not, the same object (type, fields, converted enums, flag sets,
tuples) or the same error (type, code, text)."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol as p
from protocol import gen
from protocol._schema import FieldSpec, Kind, Record

from .helpers import ALL_MESSAGES, field_strategy

ALL_RECORDS: list[type[Record]] = sorted(
    {f.item for m in ALL_MESSAGES for f in m.FIELDS if f.item is not None},
    key=lambda c: c.NAME,
)


def _odd_value(f: FieldSpec) -> st.SearchStrategy[Any]:
    """Values the class call must convert or refuse: raw ints for enums and flag sets, bools
    and floats for ints, lists for tuples, bytearrays for bytes, out-of-range numbers."""
    weird: list[Any] = [None, "1", 1.5, True, False, -1, 1 << 64]
    base: st.SearchStrategy[Any] = st.sampled_from(weird)
    if f.kind is Kind.INT:
        assert f.min is not None and f.max is not None
        base |= st.sampled_from([f.min - 1, f.max + 1, f.min, f.max])
    elif f.kind is Kind.BOOL:
        base |= st.sampled_from([0, 1, 2])
    elif f.kind in (Kind.ENUM, Kind.FLAGS):
        assert f.enum_type is not None
        base |= st.integers(-2, 1 << 33)
        base |= st.sampled_from([int(m) for m in f.enum_type])
    elif f.kind is Kind.BYTES:
        n = f.base.length
        base |= st.binary(min_size=n, max_size=n).map(bytearray)
        base |= st.binary(max_size=n + 1)
    elif f.kind is Kind.TEXT:
        base |= st.sampled_from(["\ud800", b"bytes", "é" * 200])
    elif f.kind is Kind.ARRAY:
        base |= st.lists(st.sampled_from(["x", 5]), max_size=2)
        base |= field_strategy(f).map(list)
    return base


def _values(cls: type[Record]) -> st.SearchStrategy[list[Any]]:
    return st.tuples(*(field_strategy(f) | _odd_value(f) for f in cls.FIELDS)).map(list)


def _outcome(make: Any, values: list[Any]) -> tuple[str, Any]:
    try:
        obj = make(*values)
    except Exception as exc:  # the very same error is the point
        return "error", (type(exc), getattr(exc, "code", None), str(exc))
    return "ok", obj


def _same(cls: type[Record], values: list[Any]) -> None:
    kind, want = _outcome(cls, values)
    got_kind, got = _outcome(cls._of, values)
    assert got_kind == kind, (got, want)
    if kind == "error":
        assert got == want
        return
    assert type(got) is cls
    assert got == want and hash(got) == hash(want) and repr(got) == repr(want)
    for f in cls.FIELDS:  # the converted values themselves, not only equal ones
        assert type(getattr(got, f.name)) is type(getattr(want, f.name))
    if cls.FIELDS:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(got, cls.FIELDS[0].name, None)
    assert got._encode() == want._encode()


@pytest.mark.parametrize("cls", [*ALL_MESSAGES, *ALL_RECORDS], ids=lambda c: c.NAME)
@given(data=st.data())
def test_of_is_the_class_call(cls: type[Record], data: st.DataObject) -> None:
    _same(cls, data.draw(_values(cls)))


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.NAME)
def test_of_refuses_each_bad_field_like_the_class_call(cls: type[p.Message]) -> None:
    """Each field of a valid message replaced by a bad value in turn: the error of the class
    call, so a field the generated checks forgot (or checked in another order) shows up."""
    base = gen._example(cls, "sample", random.Random(7))
    good = [getattr(base, f.name) for f in cls.FIELDS]
    _same(cls, good)
    for i, _f in enumerate(cls.FIELDS):
        bad: Any
        for bad in (None, "x", -1, 1 << 70, 1.5, True, [], b"", 2):
            values = list(good)
            values[i] = bad
            _same(cls, values)


def test_of_runs_the_cross_field_rules() -> None:
    """SET_SCHEDULE's own `_check` (the steps' order) runs in `_of` too."""
    steps = (p.ScheduleStep(0, 1), p.ScheduleStep(0, 2))
    cls: Any = p.SetSchedule
    base = gen._example(cls, "sample", random.Random(7))
    values = [steps if f.name == "steps" else getattr(base, f.name) for f in cls.FIELDS]
    with pytest.raises(p.FieldValueError):
        cls(*values)
    _same(cls, values)
