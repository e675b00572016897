"""The markdown half of `protocol.gen`: docs/protocol.md rendered from the declarations.

`render` fills the placeholders of protocol/spec_template.md with tables built from the message
catalogue (summary, per-message details with field offsets, ranges and seeds, the access matrix),
the enums, the error codes, the session policy's limits and the worked handshake and CRC
examples taken from the generated vectors. It is a pure function of its arguments (the caller,
`gen.render_docs`, reads the template), so the document is byte-for-byte reproducible.
"""

from __future__ import annotations

import enum
from typing import Any

from . import _enums, _frame, _gen_docs_rules, _session
from ._errors import ERROR_INFO
from ._messages import SetContinuousDose
from ._schema import MAX_PAYLOAD, MESSAGES, Access, Kind, Message, Record


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _field_rows(cls: type[Record], prefix: str = "") -> list[str]:
    rows: list[str] = []
    offset: int | None = 0
    for f in cls.FIELDS:
        off = "" if offset is None else str(offset)
        unit = f.unit or ""
        rows.append(
            f"| {off} | `{prefix}{f.name}` | {f.type_signature.replace('<', '&lt;')} | "
            f"{_md_escape(unit)} | {_md_escape(f.range_text())} | {_md_escape(f.doc)} |"
        )
        lo, hi = f.size_range
        offset = None if offset is None or lo != hi else offset + lo
    return rows


def _field_table(cls: type[Record]) -> list[str]:
    """The field table of a message or record: header and one row per field."""
    return [
        "| offset | field | type | unit | range | meaning |",
        "|---:|---|---|---|---|---|",
        *_field_rows(cls),
    ]


def _access_text(cls: type[Message]) -> str:
    if cls.DIRECTION.name == "PUMP_TO_HOST":
        return "sent by the pump" + (", plain" if cls.ACCESS is Access.OPEN else ", sealed")
    return {
        Access.OPEN: "open (no session)",
        Access.SESSION: "any session",
        Access.PATIENT: "patient or clinician",
        Access.CLINICIAN: "clinician only",
    }[cls.ACCESS]


def _message_summary() -> str:
    rows = [
        "| id | message | direction | kind | access | payload bytes | answered by |",
        "|---|---|---|---|---|---|---|",
    ]
    for msg_id in sorted(MESSAGES):
        cls = MESSAGES[msg_id]
        size = str(cls.MIN_SIZE) if cls.SIZE >= 0 else f"{cls.MIN_SIZE}-{cls.MAX_SIZE}"
        answers = ", ".join(f"`{r}`" for r in cls.RESPONSES)
        anchor = cls.NAME.lower().replace("_", "-")
        rows.append(
            f"| `0x{msg_id:04X}` | [`{cls.NAME}`](#0x{msg_id:04x}-{anchor}) | "
            f"{cls.DIRECTION.value} | {cls.KIND.value} | {_access_text(cls)} | {size} | "
            f"{answers} |"
        )
    return "\n".join(rows)


def _message_details() -> str:
    parts: list[str] = []
    for msg_id in sorted(MESSAGES):
        cls = MESSAGES[msg_id]
        doc = " ".join((cls.__doc__ or "").split())
        size = f"{cls.MIN_SIZE}" if cls.SIZE >= 0 else f"{cls.MIN_SIZE} to {cls.MAX_SIZE}"
        parts.append(f"### 0x{msg_id:04X} {cls.NAME}\n")
        parts.append(f"{doc}\n")
        parts.append(
            f"- direction: {cls.DIRECTION.value}; kind: {cls.KIND.value}; access: "
            f"{_access_text(cls)}"
        )
        if cls.RESPONSES:
            parts.append("- answered by: " + ", ".join(f"`{r}`" for r in cls.RESPONSES))
        if cls.BROADCAST_OK:
            parts.append("- may be addressed to the broadcast pump id `FFFFFFFF`")
        parts.append(f"- payload: {size} bytes; schema seed `0x{cls.SEED:04X}`")
        parts.append(f"- signature: `{cls.signature()}`\n")
        if cls.FIELDS:
            parts.extend(_field_table(cls))
            for f in cls.FIELDS:
                if f.kind is Kind.ARRAY:
                    assert f.item is not None
                    parts.append(
                        f"\nEach `{f.name}` item is a `{f.item.NAME}` record of "
                        f"{f.item.SIZE} bytes:\n"
                    )
                    parts.extend(_field_table(f.item))
        else:
            parts.append("Empty payload.")
        parts.append("")
    return "\n".join(parts)


def _enum_tables() -> str:
    parts: list[str] = []
    for name in sorted(vars(_enums)):
        obj = getattr(_enums, name)
        if not (isinstance(obj, type) and issubclass(obj, enum.Enum)) or obj.__module__ != (
            _enums.__name__
        ):
            continue
        doc = " ".join((obj.__doc__ or "").split())
        parts.append(f"### {name}\n")
        if doc and not doc.startswith("An enumeration") and "Support for integer" not in doc:
            parts.append(f"{doc}\n")
        parts.append("| value | name |")
        parts.append("|---:|---|")
        for m in obj:
            val = f"0x{m.value:X}" if issubclass(obj, enum.IntFlag) else str(m.value)
            parts.append(f"| {val} | `{m.name}` |")
        parts.append("")
    return "\n".join(parts)


def _error_table() -> str:
    rows = ["| code | name | meaning | what to do | reply |", "|---:|---|---|---|---|"]
    for code, info in ERROR_INFO.items():
        rows.append(
            f"| {int(code)} | `{code.name}` | {_md_escape(info.meaning)} | "
            f"{_md_escape(info.action)} | {info.sent} |"
        )
    return "\n".join(rows)


def _access_table() -> str:
    rows = [
        "| message | no session | patient session | clinician session |",
        "|---|:-:|:-:|:-:|",
    ]
    for msg_id in sorted(MESSAGES):
        cls = MESSAGES[msg_id]
        if cls.DIRECTION.name != "HOST_TO_PUMP":
            continue
        none = "yes" if cls.ACCESS is Access.OPEN else "-"
        patient = "yes" if cls.ACCESS is not Access.CLINICIAN else "-"
        rows.append(f"| `{cls.NAME}` | {none} | {patient} | yes |")
    return "\n".join(rows)


def _handshake_example(hs: dict[str, Any]) -> str:
    i = hs["inputs"]
    f = hs["frames"]
    lines = [
        "| value | bytes (hex) |",
        "|---|---|",
        f"| `K_clinician` | `{i['K_clinician']}` |",
        f"| pump_id | {i['pump_id']} = `{i['pump_id']:08x}` (LE `{i['pump_id'].to_bytes(4, 'little').hex()}`) |",  # noqa: E501
        f"| host_id | {i['host_id']} (LE `{i['host_id'].to_bytes(4, 'little').hex()}`) |",
        f"| role | {i['role']} (CLINICIAN) |",
        f"| nonce_H | `{i['nonce_H']}` |",
        f"| session_id | `0x{i['session_id']:08X}` (LE `{i['session_id'].to_bytes(4, 'little').hex()}`) |",  # noqa: E501
        f"| nonce_P | `{i['nonce_P']}` |",
        f"| transcript | `{hs['transcript']}` |",
        f"| tag_P | `{hs['tag_P']}` |",
        f"| tag_H | `{hs['tag_H']}` |",
        f"| HKDF salt | `{hs['hkdf_salt']}` |",
        f"| HKDF info | `{hs['hkdf_info']}` |",
        f"| k_h2p | `{hs['k_h2p']}` |",
        f"| k_p2h | `{hs['k_p2h']}` |",
        "",
        "Frames, in order:",
        "",
        "| frame | bytes (hex) |",
        "|---|---|",
        f"| HELLO (seq 1) | `{f['hello']}` |",
        f"| CHALLENGE | `{f['challenge']}` |",
        f"| CONFIRM (seq 2) | `{f['confirm']}` |",
        f"| SESSION_READY (pump counter 1) | `{f['session_ready']}` |",
        f"| SET_CONTINUOUS_DOSE 5000000 ng/day (seq 3, host counter 1) | "
        f"`{f['set_continuous_dose']}` |",
        f"| COMMAND_ACK (pump counter 2) | `{f['command_ack']}` |",
        "",
        "The SET_CONTINUOUS_DOSE tag is `HMAC-SHA256(k_h2p, "
        f"{hs['set_continuous_dose_tag_input']})[:16]` = `{hs['set_continuous_dose_tag']}`.",
    ]
    return "\n".join(lines)


def render(
    template: str, handshake: dict[str, Any], crc: dict[str, Any], *, example_pump_id: int
) -> str:
    """Fill every `{{PLACEHOLDER}}` of the template (spec_template.md's text); raises ValueError
    if one is left unfilled. `handshake` and `crc` are the vectors shown as examples."""
    policy = _session.SessionPolicy()
    ex = crc["frame_example"]
    values = {
        "VERSION": f"{_frame.PROTOCOL_MAJOR}.{_frame.PROTOCOL_MINOR}",
        "MAJOR": str(_frame.PROTOCOL_MAJOR),
        "MINOR": str(_frame.PROTOCOL_MINOR),
        "MAX_PAYLOAD": str(MAX_PAYLOAD),
        "MAX_FRAME": str(_frame.MAX_FRAME),
        "CRC_CHECK": f"{crc['check']:04X}",
        "SEED_EXAMPLE_SIGNATURE": SetContinuousDose.signature(),
        "SEED_EXAMPLE": f"{SetContinuousDose.SEED:04X}",
        "CRC_EXAMPLE_NAME": "GET_STATUS",
        "CRC_EXAMPLE_PUMP": str(example_pump_id),
        "CRC_EXAMPLE_FRAME": ex["frame"],
        "CRC_EXAMPLE_SEED": f"{ex['seed']:04X}",
        "CRC_EXAMPLE_INPUT": ex["crc_input"],
        "CRC_EXAMPLE_CRC": f"{ex['crc']:04X}",
        "IDLE_MIN": str(policy.idle_timeout_ms // 60_000),
        "LIFE_MIN": str(policy.max_lifetime_ms // 60_000),
        "MAX_SESSIONS": str(policy.max_sessions),
        "RETIRED": str(_session.RETIRED_SESSIONS),
        "MAX_PENDING": str(policy.max_pending_handshakes),
        "HS_TIMEOUT_S": str(policy.handshake_timeout_ms // 1000),
        "LOCK_THRESHOLD": str(policy.lockout_threshold),
        "LOCK_WINDOW_S": str(policy.lockout_window_ms // 1000),
        "LOCK_BASE_S": str(policy.lockout_base_ms // 1000),
        "LOCK_MAX_MIN": str(policy.lockout_max_ms // 60_000),
        "HANDSHAKE_EXAMPLE": _handshake_example(handshake),
        "ACCESS_TABLE": _access_table(),
        "ERROR_TABLE": _error_table(),
        "MESSAGE_SUMMARY": _message_summary(),
        "MESSAGE_DETAILS": _message_details(),
        "ENUM_TABLES": _enum_tables(),
        **_gen_docs_rules.placeholders(),  # sections 16-19: state rules, arithmetic, events
    }
    text = template
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        raise ValueError("unfilled placeholder in spec_template.md")
    return text.rstrip() + "\n"
