"""The machine-readable half of `protocol.gen`: protocol/schema.json built from the declarations.

`schema()` returns, as plain JSON data, everything a code generator in another language needs to
build a codec without reading our Python: the protocol version, the wire types, the frame layout
(magic, header fields, flags, CRC parameters and where the per-message seed enters), the session
and sealing parameters (transcript layout, tag and key derivation, replay window, policy limits),
every message (id, name, direction, kind, access, sealing, responses, doc, signature, seed,
payload limits, fields with offsets, sizes, units, ranges, enum names), every array-item record,
every enumeration (values with their docs) and the error codes. Its own structure is described
by protocol/schema.schema.json (JSON Schema 2020-12) and docs/protocol.md section 21.

A pure function of the declarations, so the file is byte-for-byte reproducible; `gen.py` writes
it with the docs and vectors and the staleness test covers it. tests/test_schema_codegen.py
proves it complete: a C codec generated from this file alone (tools/codegen_c.py) decodes and
re-encodes every golden vector.
"""

from __future__ import annotations

import enum
import inspect
import json
import re
from typing import Any

from . import _enums, _frame, _keys, _replay, _session
from ._channel import MAX_COUNTER
from ._errors import ERROR_INFO, ErrorCode
from ._fields import _FMT_BOUNDS, FieldSpec, Kind
from ._rules import RULE_KINDS, rules_of
from ._schema import MAX_PAYLOAD, MESSAGES, Access, Message, Record

# The frame check (_frame.crc16) in the Rocksoft model's terms, for schema.json and the vectors.
CRC_PARAMETERS: dict[str, Any] = {
    "algorithm": "CRC-16/CCITT-FALSE",
    "width": 16,
    "poly": 0x1021,
    "init": 0xFFFF,
    "refin": False,
    "refout": False,
    "xorout": 0,
}

#: Version of the structure of schema.json (not of the protocol): bumped on incompatible change.
SCHEMA_FORMAT = 1

_INT_TYPES = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "i8": "b", "i16": "h", "i32": "i"}
_INT_TYPES["i64"] = "q"


def _doc(obj: Any) -> str:
    return " ".join((inspect.getdoc(obj) or "").split())


def _wire_types() -> dict[str, Any]:
    """The primitive wire types used by field `type` strings (array/bytes/text parameterised)."""
    out: dict[str, Any] = {}
    for name, fmt in _INT_TYPES.items():
        lo, hi = _FMT_BOUNDS[fmt]
        size = {"B": 1, "H": 2, "I": 4, "Q": 8}[fmt.upper()]
        out[name] = {"size": size, "signed": lo < 0, "min": lo, "max": hi}
    out["bool"] = {"size": 1, "signed": False, "min": 0, "max": 1, "doc": "0 or 1; else malformed"}
    for width in (8, 16, 32):
        out[f"enum{width}"] = {
            "size": width // 8,
            "signed": False,
            "doc": "unsigned integer; only the enum's listed values are valid",
        }
        out[f"flags{width}"] = {
            "size": width // 8,
            "signed": False,
            "doc": "unsigned bit set; only the enum's listed bits may be set",
        }
    out["bytesN"] = {"doc": "exactly N raw bytes (field `length`)"}
    out["text8"] = {"doc": "u8 byte count, then that many bytes of strict UTF-8 (<= max_bytes)"}
    out["array8<T>"] = {"doc": "u8 item count, then the fixed-size T records back to back"}
    return out


def _field(f: FieldSpec, offset: int | None) -> dict[str, Any]:
    lo, hi = f.size_range
    out: dict[str, Any] = {
        "name": f.name,
        "kind": f.kind.value,
        "type": f.type_signature,
        "offset": offset,
        "size": lo if lo == hi else None,
        "min_size": lo,
        "max_size": hi,
        "unit": f.unit,
        "doc": " ".join(f.doc.split()),
        "range": f.range_text(),
    }
    if f.kind in (Kind.INT, Kind.BOOL, Kind.ENUM, Kind.FLAGS):
        out["base"] = "u8" if f.kind is Kind.BOOL else _FMT_SIG[f.fmt]
    if f.kind in (Kind.INT, Kind.BOOL):
        out["min"], out["max"] = f.min, f.max
    if f.kind in (Kind.ENUM, Kind.FLAGS):
        assert f.enum_type is not None
        out["enum"] = f.enum_type.__name__
        values = [m.value for m in f.enum_type]
        if f.kind is Kind.ENUM:
            out["values"] = values
        else:
            out["mask"] = sum(values)
    if f.kind is Kind.BYTES:
        out["length"] = f.base.length
    if f.kind is Kind.TEXT:
        out["max_bytes"] = f.max
        out["length_prefix"] = "u8"
    if f.kind is Kind.ARRAY:
        assert f.item is not None
        out["item"] = f.item.NAME
        out["item_size"] = f.item.SIZE
        out["min_count"], out["max_count"] = f.min or 0, f.max
        out["count_prefix"] = "u8"
    return out


_FMT_SIG = {fmt: name for name, fmt in _INT_TYPES.items()}


def _fields(cls: type[Record]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset: int | None = 0
    for f in cls.FIELDS:
        out.append(_field(f, offset))
        lo, hi = f.size_range
        offset = None if offset is None or lo != hi else offset + lo
    return out


def _rules(cls: type[Record]) -> list[dict[str, Any]]:
    """The cross-field rules its `_check` declares (`_rules.py`), each with the check's doc."""
    check = cls.__dict__.get("_check")
    if check is None:
        return []
    declared = rules_of(check)
    names = {f.name: f for f in cls.FIELDS}
    if not declared:
        raise TypeError(f"{cls.NAME}._check: declare its rules with @rules(...) (_rules.py)")
    for r in declared:
        f = names.get(r.field)
        if r.kind not in RULE_KINDS or f is None:
            raise TypeError(f"{cls.NAME}: rule {r} names an unknown kind or field")
        if r.key is not None and (f.item is None or r.key not in {x.name for x in f.item.FIELDS}):
            raise TypeError(f"{cls.NAME}: rule {r} names an unknown item field")
    return [{**r.to_json(), "doc": _doc(check)} for r in declared]


def _sealing(cls: type[Message]) -> str:
    """'always': only in an authenticated frame (a plain one is refused, or, from a pump, a
    forgery); 'optional': needs no session, so a plain frame is accepted (the handshake, the
    beacon, DEVICE_INFO), and an answer to a sealed request is sealed."""
    return "always" if cls.ACCESS is not Access.OPEN else "optional"


def _message(msg_id: int, cls: type[Message]) -> dict[str, Any]:
    return {
        "id": msg_id,
        "id_hex": f"0x{msg_id:04X}",
        "name": cls.NAME,
        "direction": cls.DIRECTION.name.lower(),
        "kind": cls.KIND.value,
        "access": cls.ACCESS.name.lower(),
        "access_doc": cls.ACCESS.value,
        "sealing": _sealing(cls),
        "broadcast_ok": cls.BROADCAST_OK,
        "responses": list(cls.RESPONSES),
        "doc": _doc(cls),
        "signature": cls.signature(),
        "seed": cls.SEED,
        "crc_init": cls.CRC_INIT,
        "min_payload": cls.MIN_SIZE,
        "max_payload": cls.MAX_SIZE,
        "fields": _fields(cls),
        "rules": _rules(cls),
    }


def _records() -> list[dict[str, Any]]:
    seen: dict[str, type[Record]] = {}

    def walk(cls: type[Record]) -> None:
        for f in cls.FIELDS:
            if f.item is not None and f.item.NAME not in seen:
                seen[f.item.NAME] = f.item
                walk(f.item)

    for msg_id in sorted(MESSAGES):
        walk(MESSAGES[msg_id])
    return [
        {
            "name": name,
            "size": cls.SIZE,
            "signature": cls.signature(),
            "doc": _doc(cls) if cls.__doc__ else "",
            "fields": _fields(cls),
            "rules": _rules(cls),
        }
        for name, cls in sorted(seen.items())
    ]


_COMMENT = re.compile(r"^\s+([A-Z][A-Z0-9_]*)\s*=[^#]*#\s*(.+?)\s*$")


def _member_docs(enum_type: type[enum.Enum]) -> dict[str, str]:
    """The trailing comment of each member's line in the enum's source: its per-value doc."""
    docs: dict[str, str] = {}
    for line in inspect.getsource(enum_type).splitlines():
        m = _COMMENT.match(line)
        if m and not m.group(2).startswith("noqa"):
            docs[m.group(1)] = m.group(2)
    return docs


def _enum(enum_type: type[enum.Enum]) -> dict[str, Any]:
    doc = _doc(enum_type)
    if doc.startswith("An enumeration") or "Support for integer" in doc:
        doc = ""  # the inherited docstring of enum.IntEnum / IntFlag, not ours
    member_docs = _member_docs(enum_type)
    if enum_type is ErrorCode:
        member_docs = {code.name: info.meaning for code, info in ERROR_INFO.items()}
    flags = issubclass(enum_type, enum.IntFlag)
    return {
        "name": enum_type.__name__,
        "kind": "flags" if flags else "enum",
        "doc": doc,
        "open": enum_type is _enums.EventKind,
        "values": [
            {"name": m.name, "value": m.value, "doc": member_docs.get(m.name, "")}
            for m in enum_type
        ],
    }


def _enums_list() -> list[dict[str, Any]]:
    types: dict[str, type[enum.Enum]] = {"ErrorCode": ErrorCode}
    for name in vars(_enums):
        obj = getattr(_enums, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, enum.Enum)
            and obj.__module__ == (_enums.__name__)
        ):
            types[name] = obj
    return [_enum(types[name]) for name in sorted(types)]


def _frame_layout() -> dict[str, Any]:
    assert _frame.HEADER.format == "<2sBBHHHI" and _frame.AUTH_HEADER.format == "<II"
    header = [
        ("magic", 0, "bytes2", "Start marker, always the magic bytes."),
        ("version", 2, "u8", "Protocol major version."),
        ("flags", 3, "u8", "Bit set, see `flags`; unknown bits make the frame invalid."),
        ("length", 4, "u16", "Payload length, within the message's min/max payload."),
        ("seq", 6, "u16", "Request sequence; a response echoes its request's seq."),
        ("msg_id", 8, "u16", "Message id."),
        ("pump_id", 10, "u32", "Target pump (host to pump) or sending pump (pump to host)."),
    ]
    auth = [
        ("session_id", 14, "u32", "The session (AUTH frames only)."),
        ("counter", 18, "u32", "This direction's frame counter in the session, from 1."),
    ]

    def rows(items: list[tuple[str, int, str, str]]) -> list[dict[str, Any]]:
        return [{"name": n, "offset": o, "type": t, "doc": d} for n, o, t, d in items]

    return {
        "magic": _frame.MAGIC.hex(),
        "version": _frame.PROTOCOL_MAJOR,
        "header": rows(header),
        "header_size": _frame.HEADER_SIZE,
        "auth_header": rows(auth),
        "auth_header_size": _frame.AUTH_HEADER_SIZE,
        "flags": [
            {"name": "AUTH", "mask": _frame.FLAG_AUTH, "doc": "session header and tag present"},
            {
                "name": "ENCRYPTED",
                "mask": _frame.FLAG_ENCRYPTED,
                "doc": "reserved for v2: a v1 receiver drops the frame",
            },
            {"name": "FROM_PUMP", "mask": _frame.FLAG_FROM_PUMP, "doc": "sent by the pump"},
        ],
        "known_flags_mask": _frame.KNOWN_FLAGS,
        "layout": {
            "plain": "header || payload || crc",
            "auth": "header || auth_header || payload || tag || crc",
        },
        "tag_size": _frame.TAG_SIZE,
        "crc_size": _frame.CRC_SIZE,
        "plain_overhead": _frame.PLAIN_OVERHEAD,
        "auth_overhead": _frame.AUTH_OVERHEAD,
        "max_payload": MAX_PAYLOAD,
        "max_frame": _frame.MAX_FRAME,
        "broadcast_pump_id": _frame.BROADCAST_PUMP_ID,
        "crc": {
            **CRC_PARAMETERS,
            "check": _frame.crc16(b"123456789"),
            "input": "seed (u16 LE) || frame[0 : len - 2]",
            "stored": "u16 little-endian, the frame's last two bytes",
            "crc_init_doc": "each message's crc_init is the register after the two seed bytes",
        },
        "seed": {
            "algorithm": "CRC-16/CCITT-FALSE",
            "input": "the message's ASCII signature",
            "signature": "NAME, then for each field ' <type> <name>' (array types nest the "
            "item record's signature in <...>)",
        },
    }


def _session_params() -> dict[str, Any]:
    policy = _session.SessionPolicy()
    return {
        "key_size": _keys.KEY_SIZE,
        "nonce_size": _keys.NONCE_SIZE,
        "roles": [{"name": r.name, "value": r.value} for r in _enums.Role],
        "handshake": ["HELLO", "CHALLENGE", "CONFIRM", "SESSION_READY"],
        "transcript": {
            "layout": [
                {"name": "host_id", "type": "u32"},
                {"name": "role", "type": "u8"},
                {"name": "nonce_H", "type": f"bytes{_keys.NONCE_SIZE}"},
                {"name": "pump_id", "type": "u32"},
                {"name": "session_id", "type": "u32"},
                {"name": "nonce_P", "type": f"bytes{_keys.NONCE_SIZE}"},
            ],
            "size": _keys._TRANSCRIPT.size,
        },
        "tag_P": "HMAC-SHA256(K_role, 'P' || transcript)[0:16]",
        "tag_H": "HMAC-SHA256(K_role, 'H' || transcript)[0:16]",
        "tag_prefix_P": "50",
        "tag_prefix_H": "48",
        "kdf": {
            "algorithm": "HKDF-SHA256 (RFC 5869)",
            "ikm": "K_role",
            "salt": "nonce_H || nonce_P",
            "info": "info_prefix || session_id (u32 LE) || role (u8)",
            "info_prefix": _keys.HKDF_INFO_PREFIX.hex(),
            "length": 64,
            "k_h2p": "OKM[0:32]",
            "k_p2h": "OKM[32:64]",
        },
        "frame_tag": {
            "algorithm": "HMAC-SHA256",
            "key": "k_h2p for host-to-pump frames, k_p2h for pump-to-host frames",
            "input": "frame[2 : end of payload] (version .. payload)",
            "size": _frame.TAG_SIZE,
        },
        "counter": {"first": 1, "max": MAX_COUNTER, "zero_valid": False},
        "replay_window": _replay.REPLAY_WINDOW,
        "policy": {
            "idle_timeout_ms": policy.idle_timeout_ms,
            "max_lifetime_ms": policy.max_lifetime_ms,
            "handshake_timeout_ms": policy.handshake_timeout_ms,
            "max_sessions": policy.max_sessions,
            "max_pending_handshakes": policy.max_pending_handshakes,
            "retired_sessions": _session.RETIRED_SESSIONS,
            "lockout_threshold": policy.lockout_threshold,
            "lockout_window_ms": policy.lockout_window_ms,
            "lockout_base_ms": policy.lockout_base_ms,
            "lockout_max_ms": policy.lockout_max_ms,
        },
        "sealing_values": {
            "always": "only in an authenticated frame; a plain one is refused (from a pump: a "
            "forgery)",
            "optional": "needs no session, so may travel plain; an answer to a sealed request "
            "is sealed",
        },
    }


def schema() -> dict[str, Any]:
    """The whole of protocol/schema.json, as JSON-ready data."""
    return {
        "$schema": "./schema.schema.json",
        "schema_format": SCHEMA_FORMAT,
        "generated_by": "python -m protocol.gen --write (from protocol/_msg_*.py); do not edit",
        "protocol": {
            "version": f"{_frame.PROTOCOL_MAJOR}.{_frame.PROTOCOL_MINOR}",
            "major": _frame.PROTOCOL_MAJOR,
            "minor": _frame.PROTOCOL_MINOR,
        },
        "byte_order": "little",
        "wire_types": _wire_types(),
        "frame": _frame_layout(),
        "session": _session_params(),
        "rule_kinds": RULE_KINDS,
        "messages": [_message(i, MESSAGES[i]) for i in sorted(MESSAGES)],
        "records": _records(),
        "enums": _enums_list(),
        "errors": [
            {"code": int(code), "name": code.name, **info._asdict()}
            for code, info in ERROR_INFO.items()
        ],
    }


def fill_docs(template: str) -> str:
    """spec_template.md with section 21's placeholders filled (the rest is `_gen_docs`'s)."""
    example = next(m for m in schema()["messages"] if m["name"] == "SESSION_READY")
    lines = [
        f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
        for k, v in example.items()
        if k != "fields"
    ]
    fields = ",\n".join(f"  {json.dumps(f, ensure_ascii=False)}" for f in example["fields"])
    text = "{\n" + ",\n".join([*lines, f' "fields": [\n{fields}\n ]']) + "\n}"
    return template.replace("{{SCHEMA_FORMAT}}", str(SCHEMA_FORMAT)).replace(
        "{{SCHEMA_EXAMPLE}}", text
    )
