"""The declaration machinery: every message field is a construct subcon with doc, unit and range.

Theory of operation
-------------------
A message is declared once, as a class whose fields are built by the helpers below (`u32`,
`enum8`, `array`...). Each helper returns a `FieldSpec` holding the construct subcon (the
declaration proper, with its doc string), the unit, and the allowed range. The `record` and
`message` decorators turn the class into a frozen, slotted dataclass and derive from the same
specs:

* the construct `Struct` (used by the doc generator and as an independent oracle in tests);
* the schema signature and its CRC seed (MAVLink's CRC_EXTRA idea);
* a fast codec: precomputed `struct` formats taken from the subcons, and validation code
  generated once per class (range, enum, size checks), so a frame costs microseconds, not the
  ~40 us construct needs to parse one.

Nothing here is hand-maintained twice: change a declaration and the codec, docs, vectors and
seed all follow (and the staleness tests say which generated files to refresh).
"""

from __future__ import annotations

import binascii
import dataclasses
import enum
import inspect
import struct
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar, dataclass_transform

import construct as c

from ._errors import FieldValueError, PayloadSizeError

#: Largest payload of any frame; `@message` refuses a declaration that could exceed it.
MAX_PAYLOAD = 1024


class Kind(enum.Enum):
    INT = "int"
    BOOL = "bool"
    ENUM = "enum"
    FLAGS = "flags"
    BYTES = "bytes"
    TEXT = "text"
    ARRAY = "array"


class Direction(enum.Enum):
    HOST_TO_PUMP = "host -> pump"
    PUMP_TO_HOST = "pump -> host"


class Access(enum.Enum):
    """What a message needs before the pump acts on it (the authorization matrix)."""

    OPEN = "no session needed"
    SESSION = "any authenticated session"
    PATIENT = "patient or clinician session"
    CLINICIAN = "clinician session only"


class CommandKind(enum.Enum):
    READ = "read"  # changes nothing
    COMMAND = "command"  # changes pump state: carries command_id
    THERAPY = "therapy"  # changes therapy: command_id + expected_program_version
    SESSION = "session"  # handshake and session control
    RESPONSE = "response"  # pump -> host


_FMT_BOUNDS = {
    "B": (0, 0xFF),
    "H": (0, 0xFFFF),
    "I": (0, 0xFFFF_FFFF),
    "Q": (0, 0xFFFF_FFFF_FFFF_FFFF),
    "b": (-0x80, 0x7F),
    "h": (-0x8000, 0x7FFF),
    "i": (-0x8000_0000, 0x7FFF_FFFF),
    "q": (-0x8000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF),
}
# construct spells 32-bit fields "L"/"l"; struct's standard sizes make them identical to "I"/"i".
_FMT_ALIAS = {"L": "I", "l": "i"}
_FMT_SIG = {"B": "u8", "H": "u16", "I": "u32", "Q": "u64", "b": "i8", "h": "i16", "i": "i32"}
_FMT_SIG["q"] = "i64"


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One field of a record or message: construct subcon plus what construct cannot say."""

    kind: Kind
    con: Any  # the construct subcon: the declaration (carries the doc string too)
    doc: str
    unit: str | None = None
    min: int | None = None
    max: int | None = None
    enum_type: type[enum.IntEnum] | type[enum.IntFlag] | None = None
    item: type[Record] | None = None  # ARRAY: the record type of the items
    name: str = ""

    @property
    def base(self) -> Any:
        """The subcon without its documentation wrapper."""
        con = self.con
        while isinstance(con, c.Renamed):
            con = con.subcon
        return con

    @property
    def fmt(self) -> str:
        """struct format character(s) of a fixed-size field, derived from the subcon."""
        if self.kind is Kind.BYTES:
            return f"{self.base.length}s"
        if self.kind in (Kind.TEXT, Kind.ARRAY):
            return ""
        if self.kind is Kind.BOOL:
            return "B"  # construct's Flag: one byte, 0 or 1
        sub = self.base.subcon if self.kind in (Kind.ENUM, Kind.FLAGS) else self.base
        return _fmt_char(sub)

    @property
    def fixed(self) -> bool:
        return self.kind not in (Kind.TEXT, Kind.ARRAY)

    @property
    def type_signature(self) -> str:
        if self.kind is Kind.INT:
            return _FMT_SIG[self.fmt]
        if self.kind is Kind.BOOL:
            return "bool"
        if self.kind is Kind.ENUM:
            return "enum" + _FMT_SIG[self.fmt][1:]
        if self.kind is Kind.FLAGS:
            return "flags" + _FMT_SIG[self.fmt][1:]
        if self.kind is Kind.BYTES:
            return f"bytes{self.base.length}"
        if self.kind is Kind.TEXT:
            return "text8"
        assert self.item is not None
        return f"array8<{self.item.signature()}>"

    @property
    def size_range(self) -> tuple[int, int]:
        if self.fixed:
            return struct.calcsize("<" + self.fmt), struct.calcsize("<" + self.fmt)
        if self.kind is Kind.TEXT:
            assert self.max is not None
            return 1, 1 + self.max
        assert self.item is not None and self.max is not None
        return 1 + (self.min or 0) * self.item.SIZE, 1 + self.max * self.item.SIZE

    def range_text(self) -> str:
        """Human description of the allowed values, used in errors and docs."""
        if self.kind is Kind.BOOL:
            return "0 or 1"
        if self.kind is Kind.ENUM:
            assert self.enum_type is not None
            return ", ".join(f"{m.value}={m.name}" for m in self.enum_type)
        if self.kind is Kind.FLAGS:
            assert self.enum_type is not None
            return "bit set of " + ", ".join(f"0x{m.value:X}={m.name}" for m in self.enum_type)
        if self.kind is Kind.BYTES:
            return f"exactly {self.base.length} bytes"
        if self.kind is Kind.TEXT:
            return f"UTF-8, at most {self.max} bytes"
        if self.kind is Kind.ARRAY:
            return f"{self.min or 0} to {self.max} items"
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.min} .. {self.max}{unit}"


def _fmt_char(con: Any) -> str:
    """The struct format character of a construct FormatField (little-endian checked)."""
    fmtstr: str = con.fmtstr
    if fmtstr[0] != "<":
        raise ValueError(f"{fmtstr}: the protocol is little-endian")
    return _FMT_ALIAS.get(fmtstr[1:], fmtstr[1:])


def _int(con: Any, doc: str, unit: str | None, lo: int | None, hi: int | None) -> Any:
    tlo, thi = _FMT_BOUNDS[_fmt_char(con)]
    lo = tlo if lo is None else lo
    hi = thi if hi is None else hi
    if not tlo <= lo <= hi <= thi:
        raise ValueError(f"range {lo}..{hi} does not fit {_fmt_char(con)}")
    return FieldSpec(Kind.INT, con * doc, doc, unit, lo, hi)


# The field helpers. They return Any so a declaration reads `dose_ng: int = u32(...)`.
def u8(doc: str, *, unit: str | None = None, min: int | None = None, max: int | None = None) -> Any:
    return _int(c.Int8ul, doc, unit, min, max)


def u16(
    doc: str, *, unit: str | None = None, min: int | None = None, max: int | None = None
) -> Any:
    return _int(c.Int16ul, doc, unit, min, max)


def u32(
    doc: str, *, unit: str | None = None, min: int | None = None, max: int | None = None
) -> Any:
    return _int(c.Int32ul, doc, unit, min, max)


def u64(
    doc: str, *, unit: str | None = None, min: int | None = None, max: int | None = None
) -> Any:
    return _int(c.Int64ul, doc, unit, min, max)


def i32(
    doc: str, *, unit: str | None = None, min: int | None = None, max: int | None = None
) -> Any:
    return _int(c.Int32sl, doc, unit, min, max)


def i64(
    doc: str, *, unit: str | None = None, min: int | None = None, max: int | None = None
) -> Any:
    return _int(c.Int64sl, doc, unit, min, max)


def boolean(doc: str) -> Any:
    return FieldSpec(Kind.BOOL, c.Flag * doc, doc, None, 0, 1)


def enum8(enum_type: type[enum.IntEnum], doc: str) -> Any:
    return FieldSpec(Kind.ENUM, c.Enum(c.Int8ul, enum_type) * doc, doc, enum_type=enum_type)


def enum16(enum_type: type[enum.IntEnum], doc: str) -> Any:
    return FieldSpec(Kind.ENUM, c.Enum(c.Int16ul, enum_type) * doc, doc, enum_type=enum_type)


def flags32(flag_type: type[enum.IntFlag], doc: str) -> Any:
    return FieldSpec(Kind.FLAGS, c.FlagsEnum(c.Int32ul, flag_type) * doc, doc, enum_type=flag_type)


def blob(length: int, doc: str) -> Any:
    return FieldSpec(Kind.BYTES, c.Bytes(length) * doc, doc, min=length, max=length)


def text(max_bytes: int, doc: str) -> Any:
    if not 0 < max_bytes <= 255:
        raise ValueError("text fields have a u8 length prefix")
    return FieldSpec(Kind.TEXT, c.PascalString(c.Int8ul, "utf8") * doc, doc, min=0, max=max_bytes)


def array(item: type[Record], max_count: int, doc: str, *, min_count: int = 0) -> Any:
    if not 0 <= min_count <= max_count <= 255:
        raise ValueError("arrays have a u8 count prefix")
    con = c.PrefixedArray(c.Int8ul, item.STRUCT) * doc
    return FieldSpec(Kind.ARRAY, con, doc, min=min_count, max=max_count, item=item)


# Fields shared by many messages.
def command_id_field() -> Any:
    return blob(
        16,
        "Host-generated unique id of this logical command (e.g. uuid4). Journaled by the host "
        "before the first send and reused on every retry; the pump applies it at most once.",
    )


def program_version_field() -> Any:
    return u32(
        "Compare-and-set: the program_version the host last read. The pump refuses the command "
        "with PROGRAM_VERSION_MISMATCH if its version differs.",
    )


def confirm_field() -> Any:
    return boolean(
        "1 when the clinician explicitly confirmed a soft drug-library limit warning; without "
        "it a dose beyond the soft limit is refused with SOFT_LIMIT_UNCONFIRMED.",
    )


def timestamp(doc: str) -> Any:
    return u64(doc, unit="ms since 1970-01-01 UTC, pump clock")


def duplicate_field() -> Any:
    return boolean(
        "1 when this command id had already been applied: this is the original result, "
        "resent, and nothing was applied again.",
    )


class Record:
    """Base of declared records (array items) and messages: frozen, slotted dataclasses."""

    __slots__ = ()

    NAME: ClassVar[str]
    FIELDS: ClassVar[tuple[FieldSpec, ...]]
    STRUCT: ClassVar[Any]  # construct Struct built from FIELDS
    SIZE: ClassVar[int]  # fixed size in bytes (records only; -1 if variable)
    MIN_SIZE: ClassVar[int]
    MAX_SIZE: ClassVar[int]
    _encode: ClassVar[Callable[[Any], bytes]]
    _decode: ClassVar[Callable[[bytes], Any]]
    _from_values: ClassVar[Callable[[tuple[Any, ...]], Any]]

    def _check(self) -> None:
        """Cross-field rules of the record; override in a declaration when needed."""

    def __post_init__(self) -> None:
        type(self)._validate(self)

    _validate: ClassVar[Callable[[Any], None]]

    @classmethod
    def signature(cls) -> str:
        """Canonical layout string: message name, field types and names (the seed's input)."""
        return " ".join([cls.NAME, *(f"{f.type_signature} {f.name}" for f in cls.FIELDS)])

    def encode_payload(self) -> bytes:
        """The message's payload bytes (no frame)."""
        return type(self)._encode(self)

    @classmethod
    def decode_payload(cls: type[_R], payload: bytes) -> _R:
        """Decode and validate a payload; raises `MessageError` subclasses, never anything else."""
        result: _R = cls._decode(payload)
        return result


_R = TypeVar("_R", bound=Record)
_T = TypeVar("_T")


def _collect(cls: type[Any]) -> list[FieldSpec]:
    specs: list[FieldSpec] = []
    for name in inspect.get_annotations(cls):
        spec = cls.__dict__.get(name)
        if not isinstance(spec, FieldSpec):
            raise TypeError(f"{cls.__name__}.{name} must be declared with a field helper")
        specs.append(dataclasses.replace(spec, name=name))
    for spec in specs:
        delattr(cls, spec.name)
    return specs


def _snake_to_upper(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.upper())
    return "".join(out)


def _build(cls: type[_T], name: str | None = None) -> type[_T]:
    specs = _collect(cls)
    new_cls: Any = dataclasses.dataclass(frozen=True, slots=True, eq=True, repr=True)(cls)
    new_cls.NAME = name or _snake_to_upper(cls.__name__)
    new_cls.FIELDS = tuple(specs)
    new_cls.STRUCT = c.Struct(*[f.name / f.con for f in specs])
    lo = sum(f.size_range[0] for f in specs)
    hi = sum(f.size_range[1] for f in specs)
    new_cls.MIN_SIZE, new_cls.MAX_SIZE = lo, hi
    new_cls.SIZE = lo if lo == hi else -1
    _generate_codec(new_cls)
    return new_cls  # type: ignore[no-any-return]


# mypy needs field_specifiers as a literal tuple, so it is spelled out on both decorators.
@dataclass_transform(
    frozen_default=True,
    field_specifiers=(
        u8,
        u16,
        u32,
        u64,
        i32,
        i64,
        boolean,
        enum8,
        enum16,
        flags32,
        blob,
        text,
        array,
        command_id_field,
        program_version_field,
        confirm_field,
        timestamp,
        duplicate_field,
    ),
)
def record(cls: type[_T]) -> type[_T]:
    """Declare a fixed-size record used as an array item inside messages."""
    built = _build(cls)
    if any(not f.fixed for f in built.FIELDS):  # type: ignore[attr-defined]
        raise TypeError("records must be fixed-size")
    return built


# --- code generation ----------------------------------------------------------------------------


def _generate_codec(cls: Any) -> None:
    """Generate _validate, _encode, _decode and _from_values for a declared class."""
    specs: Sequence[FieldSpec] = cls.FIELDS
    name = cls.NAME
    ns: dict[str, Any] = {
        "FVE": FieldValueError,
        "PSE": PayloadSizeError,
        "new": object.__new__,
        "osa": object.__setattr__,
        "cls": cls,
        "NAME": name,
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

    ns_src: list[str] = []

    # _validate(self): used by __post_init__ on every construction.
    v = ["def _validate(self):"]
    for i, f in enumerate(specs):
        a = f"self.{f.name}"
        fn = repr(f.name)
        v.append(f"    x = {a}")
        if f.kind is Kind.INT:
            v.append("    if not isinstance_(x, int_) or isinstance_(x, bool_):")
            v.append(f"        raise FVE(NAME, {fn}, f'must be an integer, got {{x!r}}')")
            v.append(f"    if not {f.min} <= x <= {f.max}:")
            v.append(f"        raise FVE(NAME, {fn}, f'{{x}} outside {f.range_text()}')")
        elif f.kind is Kind.BOOL:
            v.append("    if x is not True and x is not False:")
            v.append("        if isinstance_(x, int_) and x in (0, 1):")
            v.append(f"            osa(self, {fn}, x == 1)")
            v.append("        else:")
            v.append(f"            raise FVE(NAME, {fn}, f'must be a bool, got {{x!r}}')")
        elif f.kind is Kind.ENUM:
            v.append(f"    m = E{i}.get(x) if isinstance_(x, int_) else None")
            v.append("    if m is None:")
            v.append(f"        raise FVE(NAME, {fn}, f'{{x!r}} is not one of {f.range_text()}')")
            v.append(f"    if m is not x: osa(self, {fn}, m)")
        elif f.kind is Kind.FLAGS:
            v.append("    if not isinstance_(x, int_) or isinstance_(x, bool_) or x < 0:")
            v.append(f"        raise FVE(NAME, {fn}, f'must be a flag set, got {{x!r}}')")
            v.append(f"    if x & ~M{i}:")
            v.append(f"        raise FVE(NAME, {fn}, f'unknown bits 0x{{x & ~M{i}:X}}')")
            v.append(f"    if x.__class__ is not F{i}: osa(self, {fn}, F{i}(x))")
        elif f.kind is Kind.BYTES:
            v.append("    if isinstance_(x, bytearray_):")
            v.append("        x = bytes_(x)")
            v.append(f"        osa(self, {fn}, x)")
            v.append(f"    if not isinstance_(x, bytes_) or len_(x) != {f.base.length}:")
            v.append(f"        raise FVE(NAME, {fn}, 'must be exactly {f.base.length} bytes')")
        elif f.kind is Kind.TEXT:
            v.append("    if not isinstance_(x, str_):")
            v.append(f"        raise FVE(NAME, {fn}, f'must be a str, got {{x!r}}')")
            v.append(f"    if len_(x.encode('utf-8', 'surrogatepass')) > {f.max}:")
            v.append(f"        raise FVE(NAME, {fn}, 'longer than {f.max} UTF-8 bytes')")
            v.append("    try:")
            v.append("        x.encode('utf-8')")
            v.append("    except UnicodeEncodeError:")
            v.append(f"        raise FVE(NAME, {fn}, 'not encodable as UTF-8') from None")
        elif f.kind is Kind.ARRAY:
            v.append("    if isinstance_(x, list_):")
            v.append("        x = tuple_(x)")
            v.append(f"        osa(self, {fn}, x)")
            v.append("    if not isinstance_(x, tuple_):")
            v.append(f"        raise FVE(NAME, {fn}, 'must be a tuple of items')")
            v.append(f"    if not {f.min} <= len_(x) <= {f.max}:")
            v.append(
                f"        raise FVE(NAME, {fn}, f'{{len_(x)}} items, allowed {f.range_text()}')"
            )
            v.append("    for it in x:")
            v.append(f"        if it.__class__ is not I{i}:")
            v.append(f"            raise FVE(NAME, {fn}, 'items must be {f.item.NAME} records')")  # type: ignore[union-attr]
    v.append("    self._check()")
    ns_src.append("\n".join(v))

    # Group consecutive fixed fields into struct segments.
    segments: list[tuple[str, list[int]] | int] = []  # ("fmt", [field idx]) or variable idx
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

    # _encode(self) -> bytes
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
    ns_src.append("\n".join(e))

    # _from_values(t): validate decoded primitive values in declaration order and build.
    # Checks here are only those the struct format does not already guarantee. This is the
    # per-frame hot path: values go straight from the tuple into the slots.
    has_check = cls._check is not Record._check
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
    # Build through a mutable twin with the identical slot layout, then take on the frozen
    # class: plain slot stores are 2.5x cheaper than calling each slot descriptor.
    fv.append("    o = new(Twin)")
    for i, f in enumerate(specs):
        fv.append(f"    o.{f.name} = x{i}")
    fv.append("    o.__class__ = cls")
    if has_check:
        fv.append("    o._check()")
    fv.append("    return o")
    ns_src.append("\n".join(fv))

    # _decode(buf) -> instance
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
    ns_src.append("\n".join(d))

    exec(compile("\n\n".join(ns_src), f"<codec {name}>", "exec"), ns)
    cls._validate = ns["_validate"]
    cls._encode = ns["_encode"]
    cls._decode = ns["_decode"]
    cls._from_values = ns["_from_values"]


def schema_seed(signature: str) -> int:
    """CRC-16/CCITT-FALSE of the ASCII layout signature: the per-message CRC seed."""
    return binascii.crc_hqx(signature.encode("ascii"), 0xFFFF)


class Message(Record):
    """Base of every protocol message. Subclasses are declared with `@message(...)`."""

    __slots__ = ()

    MSG_ID: ClassVar[int]
    SEED: ClassVar[int]
    SEED_BYTES: ClassVar[bytes]
    CRC_INIT: ClassVar[int]  # CRC-16 register after the seed bytes: where the frame CRC starts
    DIRECTION: ClassVar[Direction]
    ACCESS: ClassVar[Access]
    KIND: ClassVar[CommandKind]
    RESPONSES: ClassVar[tuple[str, ...]]  # names of the messages that may answer it
    BROADCAST_OK: ClassVar[bool]


#: Every declared message by id; filled by `@message` at import time.
MESSAGES: dict[int, type[Message]] = {}
MESSAGES_BY_NAME: dict[str, type[Message]] = {}

_M = TypeVar("_M", bound=Message)


# mypy needs field_specifiers as a literal tuple, so it is spelled out on both decorators.
@dataclass_transform(
    frozen_default=True,
    field_specifiers=(
        u8,
        u16,
        u32,
        u64,
        i32,
        i64,
        boolean,
        enum8,
        enum16,
        flags32,
        blob,
        text,
        array,
        command_id_field,
        program_version_field,
        confirm_field,
        timestamp,
        duplicate_field,
    ),
)
def message(
    msg_id: int,
    *,
    direction: Direction,
    access: Access,
    kind: CommandKind,
    responses: tuple[str, ...] = (),
    broadcast_ok: bool = False,
) -> Callable[[type[_M]], type[_M]]:
    """Declare a protocol message. The class docstring becomes its documentation."""

    def wrap(cls: type[_M]) -> type[_M]:
        if not 0 < msg_id <= 0xFFFF or msg_id in MESSAGES:
            raise ValueError(f"message id 0x{msg_id:04X} invalid or already used")
        if not cls.__doc__:
            raise TypeError(f"{cls.__name__} needs a docstring: it is the message's documentation")
        built: Any = _build(cls)
        if built.MAX_SIZE > MAX_PAYLOAD:
            raise TypeError(f"{cls.__name__}: up to {built.MAX_SIZE} bytes > {MAX_PAYLOAD}")
        names = [f.name for f in built.FIELDS]
        if kind in (CommandKind.COMMAND, CommandKind.THERAPY) and names[:1] != ["command_id"]:
            raise TypeError(f"{cls.__name__}: state-changing commands start with command_id")
        if kind is CommandKind.THERAPY and names[1:2] != ["expected_program_version"]:
            raise TypeError(f"{cls.__name__}: therapy commands carry expected_program_version")
        built.MSG_ID = msg_id
        built.SEED = schema_seed(built.signature())
        built.SEED_BYTES = built.SEED.to_bytes(2, "little")
        built.CRC_INIT = binascii.crc_hqx(built.SEED_BYTES, 0xFFFF)
        built.DIRECTION = direction
        built.ACCESS = access
        built.KIND = kind
        built.RESPONSES = responses
        built.BROADCAST_OK = broadcast_ok
        MESSAGES[msg_id] = built
        MESSAGES_BY_NAME[built.NAME] = built
        result: type[_M] = built
        return result

    return wrap
