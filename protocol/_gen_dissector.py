"""Generate the Wireshark dissector (tools/wireshark/pump_telemetry.lua) from the declarations.

The Lua is `dissector_template.lua` (the frame layout, CRC, experts and the registrations on
DLT_USER0 and on MQTT payloads, written once by hand) with its `-- {{TABLES}}` line replaced by
tables derived here from the message catalogue: message ids, names, payload size limits, CRC
registers (the schema seeds), and for every message and record its fields in wire order with
type, unit, range, enumeration names and doc string. Change a declaration and
`python -m protocol.gen --write` regenerates the dissector with the docs and vectors (a test
fails while the checked-in file is stale). Output is a pure function of the declarations.
"""

from __future__ import annotations

import enum
from pathlib import Path

from . import _enums, _frame
from ._fields import _FMT_BOUNDS, FieldSpec, Kind
from ._schema import MESSAGES, Direction, Record

TEMPLATE = Path(__file__).resolve().parent / "dissector_template.lua"
OUTPUT = Path("tools") / "wireshark" / "pump_telemetry.lua"

# Plain integer fields whose values have names without being an enumeration (open: a value
# without a name is shown raw, never flagged).
_NAMED_INTS: dict[tuple[str, str], str] = {
    ("EVENT_RECORD", "kind"): "ENUM_EVENT_KIND",
    ("ERROR", "request_msg_id"): "MESSAGE_NAMES",
}
_OPEN_ENUMS: dict[str, type[enum.IntEnum]] = {"ENUM_EVENT_KIND": _enums.EventKind}


def _lua_str(text: str) -> str:
    """A Lua string literal (double-quoted, escaped; UTF-8 passes through)."""
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{out}"'


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _table_name(enum_type: type[enum.Enum]) -> str:
    return "ENUM_" + _snake(enum_type.__name__).upper()


def _records() -> list[type[Record]]:
    """Every record type used as an array item, in first-use order."""
    seen: list[type[Record]] = []
    for cls in MESSAGES.values():
        for f in cls.FIELDS:
            if f.item is not None and f.item not in seen:
                seen.append(f.item)
    return seen


def _enum_types() -> list[type[enum.Enum]]:
    seen: list[type[enum.Enum]] = []
    owners: list[type[Record]] = [*MESSAGES.values(), *_records()]
    for cls in owners:
        for f in cls.FIELDS:
            if f.enum_type is not None and f.enum_type not in seen:
                seen.append(f.enum_type)
    return seen


def _key(cls: type[Record]) -> str:
    """The owner part of a field's filter name: itp.<key>.<field>."""
    return cls.NAME.lower()


def _range(f: FieldSpec) -> tuple[int, int] | None:
    """The declared range when narrower than the wire type's (what the dissector checks)."""
    if f.kind is not Kind.INT:
        return None
    assert f.min is not None and f.max is not None
    if (f.min, f.max) == _FMT_BOUNDS[f.fmt]:
        return None
    if f.fmt in ("q", "Q"):
        raise ValueError(f"{f.name}: 64-bit ranges are not checked by the dissector")
    return f.min, f.max


def _field_entry(owner: type[Record], f: FieldSpec) -> str:
    parts = [f"name = {_lua_str(f.name)}", f"label = {_lua_str(f.name)}"]
    parts.append(f"doc = {_lua_str(f.doc)}")
    t = f.type_signature
    if f.kind is Kind.ARRAY:
        assert f.item is not None and f.max is not None
        parts.append('t = "array"')
        parts += [f"item = {_lua_str(_key(f.item))}", f"item_label = {_lua_str(f.item.NAME)}"]
        parts += [f"item_size = {f.item.SIZE}", f"min = {f.min or 0}", f"max = {f.max}"]
    elif f.kind is Kind.TEXT:
        parts += ['t = "text"', f"max = {f.max}"]
    elif f.kind is Kind.BYTES:
        parts += ['t = "bytes"', f"len = {f.base.length}"]
    else:
        parts.append(f"t = {_lua_str(t)}")
    if f.unit:
        parts.append(f"unit = {_lua_str(f.unit)}")
        if f.unit.startswith("ms since 1970"):
            parts.append("timestamp = true")
    bounds = _range(f)
    if bounds is not None:
        parts += [f"min = {bounds[0]}", f"max = {bounds[1]}"]
    if f.kind is Kind.ENUM:
        assert f.enum_type is not None
        parts.append(f"vals = {_table_name(f.enum_type)}")
    elif f.kind is Kind.FLAGS:
        assert f.enum_type is not None
        name = _table_name(f.enum_type)
        mask = sum(int(m.value) for m in f.enum_type)
        parts += [f"flags = {name}", f"mask = 0x{mask:X}"]
    named = _NAMED_INTS.get((owner.NAME, f.name))
    if named is not None:
        parts += [f"vals = {named}", "open = true"]
    return "        { " + ", ".join(parts) + " },"


def _spec_block(cls: type[Record]) -> list[str]:
    if not cls.FIELDS:
        return [f"    {_key(cls)} = {{}},"]
    return [f"    {_key(cls)} = {{", *(_field_entry(cls, f) for f in cls.FIELDS), "    },"]


def tables() -> str:
    """The Lua tables derived from the catalogue (what replaces `-- {{TABLES}}`)."""
    lines = ["-- Tables generated from the declarations.", ""]
    lines.append('local BOOL_NAMES = { [0] = "no", [1] = "yes" }')
    lines.append("")
    for e in [*_enum_types(), *_OPEN_ENUMS.values()]:
        members = list(e)
        if issubclass(e, enum.IntFlag):
            items = ", ".join(f"{{ 0x{int(m.value):X}, {_lua_str(str(m.name))} }}" for m in members)
        else:
            items = ", ".join(f"[{int(m.value)}] = {_lua_str(str(m.name))}" for m in members)
        lines += [f"local {_table_name(e)} = {{", f"    {items},", "}"]
    lines.append("")
    lines.append('local MESSAGE_NAMES = { [0] = "none",')
    lines += [f"    [0x{i:04X}] = {_lua_str(c.NAME)}," for i, c in sorted(MESSAGES.items())]
    lines += ["}", "", "local MESSAGES = {"]
    for msg_id, cls in sorted(MESSAGES.items()):
        from_pump = "true" if cls.DIRECTION is Direction.PUMP_TO_HOST else "false"
        lines.append(
            f"    [0x{msg_id:04X}] = {{ name = {_lua_str(cls.NAME)}, key = {_lua_str(_key(cls))}, "
            f"min = {cls.MIN_SIZE}, max = {cls.MAX_SIZE}, crc_init = 0x{cls.CRC_INIT:04X}, "
            f"seed = 0x{cls.SEED:04X}, from_pump = {from_pump} }},"
        )
    lines += [
        "}",
        "",
        "-- Per message and record: its fields in wire order.",
        "local FIELD_SPECS = {",
    ]
    for rec in _records():
        lines += _spec_block(rec)
    for _, cls in sorted(MESSAGES.items()):
        lines += _spec_block(cls)
    lines.append("}")
    return "\n".join(lines)


def render() -> str:
    """The whole dissector source."""
    template = TEMPLATE.read_text(encoding="utf-8")
    version = f"{_frame.PROTOCOL_MAJOR}.{_frame.PROTOCOL_MINOR}"
    out = template.replace("-- {{TABLES}}", tables())
    out = out.replace("{{HEADER}}", "pump_telemetry.lua: intrathecal pump telemetry dissector")
    out = out.replace("{{VERSION}}", version).replace(
        "{{PROTOCOL_MAJOR}}", str(_frame.PROTOCOL_MAJOR)
    )
    return out
