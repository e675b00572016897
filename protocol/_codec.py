"""Codec generation: the Python source of each declared class's validate, encode and decode.

For every record and message, `generate_codec` writes five small functions from the field specs
and compiles them once, at declaration time: `_validate` (run by `__post_init__` on every
construction: types, ranges, enum members, sizes, then the class's cross-field `_check`),
`_encode` (one precomputed `struct.Struct` per run of fixed-size fields, length-prefixed text and
arrays between them), `_decode` (size checks, then the same structs) and `_from_values` (the
per-frame hot path: only the checks the struct format does not already guarantee, then the
values go straight into the slots of a mutable twin class that then takes on the frozen one)
and `_of` (the constructor of the pump's hot answers: positional values, the very checks and
conversions of `_validate` in the same order, then the twin's slot stores; equal to calling the
class, or the same error: `tests/test_codec_of.py`). The generated code is a pure function of
the declarations, so the wire format can only change with them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from ._errors import FieldValueError, PayloadSizeError
from ._fields import _FMT_BOUNDS, FieldSpec, Kind

# A run of consecutive fixed-size fields packed by one struct: (format, field indexes), or the
# index of one variable-size field (text or array).
_Segment = tuple[str, list[int]] | int


def generate_codec(cls: Any, *, has_check: bool) -> None:
    """Generate _validate, _encode, _decode, _from_values and _of for a declared class.

    `has_check`: the class overrides `Record._check` (its cross-field rules run on decode too).
    """
    specs: Sequence[FieldSpec] = cls.FIELDS
    ns = _namespace(cls, specs)
    segments = _segments(specs, ns)
    ns_src = [
        _validate_source(specs),
        _encode_source(specs, segments),
        _from_values_source(specs, has_check),
        _of_source(specs, has_check),
        _decode_source(cls, specs, segments, ns),
    ]
    exec(compile("\n\n".join(ns_src), f"<codec {cls.NAME}>", "exec"), ns)
    cls._validate = ns["_validate"]
    cls._encode = ns["_encode"]
    cls._decode = ns["_decode"]
    cls._from_values = ns["_from_values"]
    cls._of = ns["_of"]


def _namespace(cls: Any, specs: Sequence[FieldSpec]) -> dict[str, Any]:
    """The globals of the generated functions: builtins bound once, per-field lookup tables."""
    ns: dict[str, Any] = {
        "FVE": FieldValueError,
        "PSE": PayloadSizeError,
        "new": object.__new__,
        "osa": object.__setattr__,
        "cls": cls,
        "NAME": cls.NAME,
        "bytes_": bytes,
        "bytearray_": bytearray,
        "tuple_": tuple,
        "list_": list,
        "int_": int,
        "bool_": bool,
        "str_": str,
        "isinstance_": isinstance,
        "len_": len,
        "UDE": UnicodeDecodeError,
    }
    ns["Twin"] = type(f"_{cls.__name__}Builder", cls.__bases__, {"__slots__": cls.__slots__})
    for i, f in enumerate(specs):
        if f.kind is Kind.ENUM:
            assert f.enum_type is not None
            ns[f"E{i}"] = {m.value: m for m in f.enum_type}
        if f.kind is Kind.FLAGS:
            assert f.enum_type is not None
            ns[f"F{i}"] = f.enum_type
            ns[f"M{i}"] = sum(m.value for m in f.enum_type)
            ns[f"FC{i}"] = {}
        if f.kind is Kind.ARRAY:
            ns[f"I{i}"] = f.item
    return ns


def _validate_source(specs: Sequence[FieldSpec]) -> str:
    """_validate(self): used by __post_init__ on every construction."""
    v = ["def _validate(self):"]
    for i, f in enumerate(specs):
        v.append(f"    x = self.{f.name}")
        v += _check_lines(i, f, "x", f"osa(self, {f.name!r}, {{}})")
    v.append("    self._check()")
    return "\n".join(v)


def _of_source(specs: Sequence[FieldSpec], has_check: bool) -> str:
    """_of(*values): the same checks and conversions as _validate, in the same order, on
    positional values, then the values go straight into the slots (the hot paths' constructor:
    no keyword matching, no frozen __setattr__ per field)."""
    args = ", ".join(f"x{i}" for i in range(len(specs)))
    o = [f"def _of({args}):"]
    for i, f in enumerate(specs):
        o += _check_lines(i, f, f"x{i}", f"x{i} = {{}}")
    o += _twin_build(specs, has_check)
    return "\n".join(o)


def _check_lines(i: int, f: FieldSpec, x: str, store_fmt: str) -> list[str]:
    """The checks of field `i` on the value in variable `x`; `store_fmt.format(expr)` is the
    statement that replaces the field's value by a converted one (an enum member, bytes...)."""
    fn = repr(f.name)
    store = store_fmt.format
    v: list[str] = []
    if f.kind is Kind.INT:
        # an exact int passes the type test at once (the usual case: no calls)
        v.append(
            f"    if {x}.__class__ is not int_ and "
            f"(not isinstance_({x}, int_) or isinstance_({x}, bool_)):"
        )
        v.append(f"        raise FVE(NAME, {fn}, f'must be an integer, got {{{x}!r}}')")
        v.append(f"    if not {f.min} <= {x} <= {f.max}:")
        v.append(f"        raise FVE(NAME, {fn}, f'{{{x}}} outside {f.range_text()}')")
    elif f.kind is Kind.BOOL:
        v.append(f"    if {x} is not True and {x} is not False:")
        v.append(f"        if isinstance_({x}, int_) and {x} in (0, 1):")
        v.append(f"            {store(f'{x} == 1')}")
        v.append("        else:")
        v.append(f"            raise FVE(NAME, {fn}, f'must be a bool, got {{{x}!r}}')")
    elif f.kind is Kind.ENUM:
        v.append(f"    m = E{i}.get({x}) if isinstance_({x}, int_) else None")
        v.append("    if m is None:")
        v.append(f"        raise FVE(NAME, {fn}, f'{{{x}!r}} is not one of {f.range_text()}')")
        v.append(f"    if m is not {x}: {store('m')}")
    elif f.kind is Kind.FLAGS:
        v.append(f"    if not isinstance_({x}, int_) or isinstance_({x}, bool_) or {x} < 0:")
        v.append(f"        raise FVE(NAME, {fn}, f'must be a flag set, got {{{x}!r}}')")
        # int_(x): a flag enum's own & costs about a microsecond
        v.append(f"    if int_({x}) & ~M{i}:")
        v.append(f"        raise FVE(NAME, {fn}, f'unknown bits 0x{{int_({x}) & ~M{i}:X}}')")
        v.append(f"    if {x}.__class__ is not F{i}: {store(f'F{i}({x})')}")
    elif f.kind is Kind.BYTES:
        v.append(f"    if isinstance_({x}, bytearray_):")
        v.append(f"        {x} = bytes_({x})")
        v.append(f"        {store(x)}")
        v.append(f"    if not isinstance_({x}, bytes_) or len_({x}) != {f.base.length}:")
        v.append(f"        raise FVE(NAME, {fn}, 'must be exactly {f.base.length} bytes')")
    elif f.kind is Kind.TEXT:
        v.append(f"    if not isinstance_({x}, str_):")
        v.append(f"        raise FVE(NAME, {fn}, f'must be a str, got {{{x}!r}}')")
        v.append(f"    if len_({x}.encode('utf-8', 'surrogatepass')) > {f.max}:")
        v.append(f"        raise FVE(NAME, {fn}, 'longer than {f.max} UTF-8 bytes')")
        v.append("    try:")
        v.append(f"        {x}.encode('utf-8')")
        v.append("    except UnicodeEncodeError:")
        v.append(f"        raise FVE(NAME, {fn}, 'not encodable as UTF-8') from None")
    elif f.kind is Kind.ARRAY:
        v.append(f"    if isinstance_({x}, list_):")
        v.append(f"        {x} = tuple_({x})")
        v.append(f"        {store(x)}")
        v.append(f"    if not isinstance_({x}, tuple_):")
        v.append(f"        raise FVE(NAME, {fn}, 'must be a tuple of items')")
        v.append(f"    if not {f.min} <= len_({x}) <= {f.max}:")
        v.append(f"        raise FVE(NAME, {fn}, f'{{len_({x})}} items, allowed {f.range_text()}')")
        v.append(f"    for it in {x}:")
        v.append(f"        if it.__class__ is not I{i}:")
        v.append(f"            raise FVE(NAME, {fn}, 'items must be {f.item.NAME} records')")  # type: ignore[union-attr]
    return v


def _segments(specs: Sequence[FieldSpec], ns: dict[str, Any]) -> list[_Segment]:
    """Group consecutive fixed fields into struct segments; their structs go into `ns`."""
    segments: list[_Segment] = []  # ("fmt", [field idx]) or variable idx
    cur_fmt, cur_idx = "", []
    for i, f in enumerate(specs):
        if f.fixed:
            cur_fmt += f.fmt
            cur_idx.append(i)
        else:
            if cur_idx:
                segments.append((cur_fmt, cur_idx))
                cur_fmt, cur_idx = "", []
            segments.append(i)
    if cur_idx:
        segments.append((cur_fmt, cur_idx))
    for k, seg in enumerate(segments):
        if isinstance(seg, tuple):
            ns[f"S{k}"] = struct.Struct("<" + seg[0])
    if "S0" in ns:
        ns["unpack0"] = ns["S0"].unpack

    return segments


def _encode_source(specs: Sequence[FieldSpec], segments: Sequence[_Segment]) -> str:
    """_encode(self) -> bytes"""
    e = ["def _encode(self):"]
    if len(segments) == 1 and isinstance(segments[0], tuple):
        args = ", ".join(f"self.{specs[i].name}" for i in segments[0][1])
        e.append(f"    return S0.pack({args})")
    elif not segments:
        e.append("    return b''")
    else:
        e.append("    parts = []")
        for k, seg in enumerate(segments):
            if isinstance(seg, tuple):
                args = ", ".join(f"self.{specs[i].name}" for i in seg[1])
                e.append(f"    parts.append(S{k}.pack({args}))")
            else:
                f = specs[seg]
                if f.kind is Kind.TEXT:
                    e.append(f"    b = self.{f.name}.encode('utf-8')")
                    e.append("    parts.append(bytes_((len_(b),)))")
                    e.append("    parts.append(b)")
                else:
                    e.append(f"    parts.append(bytes_((len_(self.{f.name}),)))")
                    e.append(f"    for it in self.{f.name}:")
                    e.append("        parts.append(it._encode())")
        e.append("    return b''.join(parts)")
    return "\n".join(e)


def _from_values_source(specs: Sequence[FieldSpec], has_check: bool) -> str:
    """_from_values(t): validate decoded primitive values in declaration order and build.

    Checks here are only those the struct format does not already guarantee. This is the
    per-frame hot path: values go straight from the tuple into the slots.
    """
    fv = ["def _from_values(t):"]
    if specs:
        fv.append("    " + ", ".join(f"x{i}" for i in range(len(specs))) + ", = t")
    for i, f in enumerate(specs):
        fn = repr(f.name)
        x = f"x{i}"
        if f.kind is Kind.INT:
            tlo, thi = _FMT_BOUNDS[f.fmt]
            if (f.min, f.max) != (tlo, thi):
                fv.append(f"    if not {f.min} <= {x} <= {f.max}:")
                fv.append(f"        raise FVE(NAME, {fn}, f'{{{x}}} outside {f.range_text()}')")
        elif f.kind is Kind.BOOL:
            fv.append(f"    if {x} > 1:")
            fv.append(f"        raise FVE(NAME, {fn}, f'{{{x}}} is not 0 or 1')")
            fv.append(f"    {x} = {x} == 1")
        elif f.kind is Kind.ENUM:
            fv.append(f"    {x} = E{i}.get({x}, {x})")
            fv.append(f"    if {x}.__class__ is int_:")
            fv.append(f"        raise FVE(NAME, {fn}, f'{{{x}}} is not one of {f.range_text()}')")
        elif f.kind is Kind.FLAGS:
            # IntFlag construction costs about a microsecond; valid sets are few, so memoise.
            fv.append(f"    m = FC{i}.get({x})")
            fv.append("    if m is None:")
            fv.append(f"        if {x} & ~M{i}:")
            fv.append(f"            raise FVE(NAME, {fn}, f'unknown bits 0x{{{x} & ~M{i}:X}}')")
            fv.append(f"        m = FC{i}[{x}] = F{i}({x})")
            fv.append(f"    {x} = m")
    fv += _twin_build(specs, has_check)
    return "\n".join(fv)


def _twin_build(specs: Sequence[FieldSpec], has_check: bool) -> list[str]:
    """The generated constructors' common end: store x0, x1 ... into a mutable twin with the
    identical slot layout, then give it the frozen class (plain slot stores are 2.5x cheaper
    than calling each slot descriptor), run the message's own _check if it has one."""
    o = ["    o = new(Twin)"]
    o += [f"    o.{f.name} = x{i}" for i, f in enumerate(specs)]
    o.append("    o.__class__ = cls")
    if has_check:
        o.append("    o._check()")
    o.append("    return o")
    return o


def _decode_source(
    cls: Any, specs: Sequence[FieldSpec], segments: Sequence[_Segment], ns: dict[str, Any]
) -> str:
    """_decode(buf) -> instance; the array item structs go into `ns`."""
    d = ["def _decode(buf):", "    n = len_(buf)"]
    if len(segments) == 1 and isinstance(segments[0], tuple):
        d.append(f"    if n != {cls.MIN_SIZE}:")
        d.append(f"        raise PSE(NAME, n, 'exactly {cls.MIN_SIZE}')")
        d.append("    return _from_values(unpack0(buf))")
    elif not segments:
        d.append("    if n:")
        d.append("        raise PSE(NAME, n, 'exactly 0')")
        d.append("    return _from_values(())")
    else:
        d.append(f"    if not {cls.MIN_SIZE} <= n <= {cls.MAX_SIZE}:")
        d.append(f"        raise PSE(NAME, n, '{cls.MIN_SIZE} to {cls.MAX_SIZE}')")
        d.append("    off = 0")
        d.append("    vals = []")
        for k, seg in enumerate(segments):
            if isinstance(seg, tuple):
                d.append(f"    if off + S{k}.size > n:")
                d.append("        raise PSE(NAME, n, 'more bytes (truncated)')")
                d.append(f"    vals.extend(S{k}.unpack_from(buf, off))")
                d.append(f"    off += S{k}.size")
            else:
                f = specs[seg]
                fn = repr(f.name)
                d.append("    if off >= n:")
                d.append("        raise PSE(NAME, n, 'more bytes (truncated)')")
                d.append("    k = buf[off]")
                d.append("    off += 1")
                if f.kind is Kind.TEXT:
                    d.append(f"    if k > {f.max}:")
                    d.append(f"        raise FVE(NAME, {fn}, f'{{k}} bytes, at most {f.max}')")
                    d.append("    if off + k > n:")
                    d.append("        raise PSE(NAME, n, 'more bytes (truncated text)')")
                    d.append("    try:")
                    d.append("        vals.append(bytes_(buf[off:off + k]).decode('utf-8'))")
                    d.append("    except UDE:")
                    d.append(f"        raise FVE(NAME, {fn}, 'invalid UTF-8') from None")
                    d.append("    off += k")
                else:
                    item = f.item
                    assert item is not None
                    d.append(f"    if not {f.min} <= k <= {f.max}:")
                    d.append(
                        f"        raise FVE(NAME, {fn}, f'{{k}} items, allowed {f.range_text()}')"
                    )
                    d.append(f"    end = off + k * {item.SIZE}")
                    d.append("    if end > n:")
                    d.append("        raise PSE(NAME, n, 'more bytes (truncated array)')")
                    ns[f"IS{seg}"] = struct.Struct("<" + "".join(x.fmt for x in item.FIELDS))
                    d.append(
                        f"    vals.append(tuple_([I{seg}._from_values(v) for v in "
                        f"IS{seg}.iter_unpack(buf[off:end])]))"
                    )
                    d.append("    off = end")
        d.append("    if off != n:")
        d.append("        raise PSE(NAME, n, f'{off} (trailing bytes)')")
        d.append("    return _from_values(vals)")
    return "\n".join(d)
