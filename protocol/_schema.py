"""The declaration machinery: every message field is a construct subcon with doc, unit and range.

Theory of operation
-------------------
A message is declared once, as a class whose fields are built by the field helpers of
`_fields.py` (`u32`, `enum8`, `array`...). Each helper returns a `FieldSpec` holding the
construct subcon (the declaration proper, with its doc string), the unit, and the allowed range.
The `record` and `message` decorators below turn the class into a frozen, slotted dataclass and
derive from the same specs:

* the construct `Struct` (used by the doc generator and as an independent oracle in tests);
* the schema signature and its CRC seed (MAVLink's CRC_EXTRA idea);
* a fast codec (`_codec.py`): precomputed `struct` formats taken from the subcons, and
  validation code generated once per class (range, enum, size checks), so a frame costs
  microseconds, not the ~40 us construct needs to parse one.

`@message` also registers the class in `MESSAGES` / `MESSAGES_BY_NAME`, in declaration order.

Nothing here is hand-maintained twice: change a declaration and the codec, docs, vectors and
seed all follow (and the staleness tests say which generated files to refresh).
"""

from __future__ import annotations

import binascii
import dataclasses
import enum
import inspect
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, dataclass_transform

import construct as c

from ._codec import generate_codec
from ._fields import (
    FieldSpec,
    Kind,
    array,
    blob,
    boolean,
    command_id_field,
    confirm_field,
    duplicate_field,
    enum8,
    enum16,
    flags32,
    i32,
    i64,
    program_version_field,
    text,
    timestamp,
    u8,
    u16,
    u32,
    u64,
)

__all__ = [
    "MAX_PAYLOAD",
    "MESSAGES",
    "MESSAGES_BY_NAME",
    "Access",
    "CommandKind",
    "Direction",
    "FieldSpec",
    "Kind",
    "Message",
    "Record",
    "array",
    "blob",
    "boolean",
    "command_id_field",
    "confirm_field",
    "duplicate_field",
    "enum8",
    "enum16",
    "flags32",
    "i32",
    "i64",
    "message",
    "program_version_field",
    "record",
    "schema_seed",
    "text",
    "timestamp",
    "u8",
    "u16",
    "u32",
    "u64",
]

#: Largest payload of any frame; `@message` refuses a declaration that could exceed it.
MAX_PAYLOAD = 1024


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
    _of: ClassVar[Callable[..., Any]]  # positional, validated exactly like the class call

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
    generate_codec(new_cls, has_check=new_cls._check is not Record._check)
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
