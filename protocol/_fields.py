"""Field specs: what one field of a record or message is, and the helpers that declare it.

A declaration reads `dose_ng: int = u32("Dose per bolus.", unit="ng", max=...)`: each helper
(`u8` ... `i64`, `boolean`, `enum8`, `flags32`, `blob`, `text`, `array`, and the shared fields
such as `command_id_field`) returns a `FieldSpec` that holds the construct subcon (the
declaration proper, with its doc string), the unit and the allowed range, and derives from the
subcon what the codec and the docs need: the `struct` format, the wire size, the type signature
that feeds the CRC seed, and the human description of the range. The decorators that turn a
class of such fields into a record or message are in `_schema.py`; the code they generate from
the specs is in `_codec.py`.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from typing import TYPE_CHECKING, Any

import construct as c

if TYPE_CHECKING:
    from ._schema import Record


class Kind(enum.Enum):
    INT = "int"
    BOOL = "bool"
    ENUM = "enum"
    FLAGS = "flags"
    BYTES = "bytes"
    TEXT = "text"
    ARRAY = "array"


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
