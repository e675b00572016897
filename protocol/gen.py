"""Generate docs/protocol.md, tests/vectors/*.json, protocol/schema.json and the Wireshark
dissector from the message declarations.

    python -m protocol.gen --write    # regenerate the files
    python -m protocol.gen --check    # exit 1 and name the stale files (what the tests do)

Everything is a pure function of the declarations plus fixed example inputs, so the output is
byte-for-byte reproducible. This module builds the vectors (example values, frames, the worked
handshake, decoder streams) and writes or checks the files; the markdown of docs/protocol.md is
rendered by `_gen_docs.py`, tools/wireshark/pump_telemetry.lua by `_gen_dissector.py`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import _enums, _frame, _gen_dissector, _gen_docs, _gen_docs_rules, _gen_schema, _session
from ._messages import (
    AcknowledgeAlarms,
    AlarmEntry,
    CommandAck,
    GetStatus,
    ScheduleStep,
    SetContinuousDose,
    SetSchedule,
    SilenceAlarms,
)
from ._schema import MESSAGES, FieldSpec, Kind, Record

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "spec_template.md"

EXAMPLE_PUMP_ID = 1234
EXAMPLE_SEQ = 0x0102


# --- JSON representation of values --------------------------------------------------------------


def to_json(record: Record) -> dict[str, Any]:
    """Field values as JSON: ints, bools, hex strings for bytes, lists of objects for arrays."""
    out: dict[str, Any] = {}
    for f in record.FIELDS:
        v = getattr(record, f.name)
        if f.kind is Kind.BYTES:
            out[f.name] = v.hex()
        elif f.kind is Kind.ARRAY:
            out[f.name] = [to_json(item) for item in v]
        elif f.kind is Kind.BOOL:
            out[f.name] = bool(v)
        elif f.kind is Kind.TEXT:
            out[f.name] = v
        else:
            out[f.name] = int(v)
    return out


def from_json(cls: type[Record], data: dict[str, Any]) -> Record:
    """Inverse of `to_json`."""
    kwargs: dict[str, Any] = {}
    for f in cls.FIELDS:
        v = data[f.name]
        if f.kind is Kind.BYTES:
            kwargs[f.name] = bytes.fromhex(v)
        elif f.kind is Kind.ARRAY:
            assert f.item is not None
            kwargs[f.name] = tuple(from_json(f.item, x) for x in v)
        else:
            kwargs[f.name] = v
    return cls(**kwargs)


# --- example values -------------------------------------------------------------------------------


def _value(f: FieldSpec, variant: str, rng: random.Random) -> Any:
    lo = variant == "min"
    if f.kind is Kind.INT:
        assert f.min is not None and f.max is not None
        if variant == "sample":
            return rng.randint(f.min, f.max)
        return f.min if lo else f.max
    if f.kind is Kind.BOOL:
        return rng.random() < 0.5 if variant == "sample" else not lo
    if f.kind is Kind.ENUM:
        assert f.enum_type is not None
        members = list(f.enum_type)
        return rng.choice(members) if variant == "sample" else members[0 if lo else -1]
    if f.kind is Kind.FLAGS:
        assert f.enum_type is not None
        bits = [m.value for m in f.enum_type]
        if variant == "sample":
            return sum(b for b in bits if rng.random() < 0.3)
        return 0 if lo else sum(bits)
    if f.kind is Kind.BYTES:
        n = f.base.length
        if variant == "sample":
            return rng.randbytes(n)
        return bytes(n) if lo else b"\xff" * n
    if f.kind is Kind.TEXT:
        assert f.max is not None
        if variant == "sample":
            return "Réservoir bas: remplir. " * 2
        return "" if lo else "x" * f.max
    assert f.item is not None and f.max is not None
    count = (f.min or 0) if lo else f.max if variant == "max" else rng.randint(f.min or 0, f.max)
    return tuple(_example(f.item, variant, rng, i) for i in range(count))


# Records whose rules (or their container's) the generic variants cannot satisfy.
_FIXUPS: dict[type[Record], Callable[[dict[str, Any], str, int], None]] = {
    ScheduleStep: lambda kw, variant, i: kw.update(start_minute=min(i * 30, 1439)),
    AcknowledgeAlarms: lambda kw, variant, i: kw.update(
        alarms=kw["alarms"] or _enums.Alarm.LOW_RESERVOIR
    ),
    SilenceAlarms: lambda kw, variant, i: kw.update(
        alarms=kw["alarms"] or _enums.Alarm.LOW_RESERVOIR
    ),
    AlarmEntry: lambda kw, variant, i: kw.update(
        alarm=_enums.Alarm.LOW_RESERVOIR if variant == "min" else _enums.Alarm.WATCHDOG
    ),
}


def _example(cls: type[Record], variant: str, rng: random.Random, index: int = 0) -> Any:
    kwargs = {f.name: _value(f, variant, rng) for f in cls.FIELDS}
    fix = _FIXUPS.get(cls)
    if fix is not None:
        fix(kwargs, variant, index)
    return cls(**kwargs)


def message_vectors() -> dict[str, Any]:
    rng = random.Random(20261122)
    messages = []
    for msg_id in sorted(MESSAGES):
        cls = MESSAGES[msg_id]
        vectors = []
        for variant in ("min", "max", "sample"):
            msg = _example(cls, variant, rng)
            from_pump = cls.DIRECTION.name == "PUMP_TO_HOST"
            frame = _frame.encode_frame(
                msg, pump_id=EXAMPLE_PUMP_ID, seq=EXAMPLE_SEQ, from_pump=from_pump
            )
            vectors.append(
                {
                    "variant": variant,
                    "fields": to_json(msg),
                    "payload": msg.encode_payload().hex(),
                    "pump_id": EXAMPLE_PUMP_ID,
                    "seq": EXAMPLE_SEQ,
                    "from_pump": from_pump,
                    "frame": frame.hex(),
                }
            )
        messages.append(
            {
                "name": cls.NAME,
                "id": msg_id,
                "signature": cls.signature(),
                "seed": cls.SEED,
                "min_payload": cls.MIN_SIZE,
                "max_payload": cls.MAX_SIZE,
                "vectors": vectors,
            }
        )
    return {
        "protocol": f"{_frame.PROTOCOL_MAJOR}.{_frame.PROTOCOL_MINOR}",
        "note": "Plain (unauthenticated) frames; 'fields' uses hex for bytes.",
        "messages": messages,
    }


def crc_vectors() -> dict[str, Any]:
    get_status = _frame.encode_frame(GetStatus(), pump_id=EXAMPLE_PUMP_ID, seq=1, from_pump=False)
    return {
        **_gen_schema.CRC_PARAMETERS,
        "check_input": "123456789",
        "check": _frame.crc16(b"123456789"),
        "frame_example": {
            "message": "GET_STATUS",
            "seed": GetStatus.SEED,
            "crc_input": (GetStatus.SEED_BYTES + get_status[:-2]).hex(),
            "frame": get_status.hex(),
            "crc": int.from_bytes(get_status[-2:], "little"),
        },
    }


class _Counter:
    """Deterministic 'randomness' that hands out fixed byte strings in order."""

    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)

    def __call__(self, n: int) -> bytes:
        chunk = self._chunks.pop(0)
        assert len(chunk) == n
        return chunk


def handshake_vectors() -> dict[str, Any]:
    """A complete session with fixed keys and nonces, every frame and intermediate value."""
    key = _session.SecretKey(bytes(range(0x00, 0x20)))
    patient_key = _session.SecretKey(bytes(range(0x80, 0xA0)))
    nonce_h = bytes(range(0x10, 0x20))
    nonce_p = bytes(range(0x20, 0x30))
    session_id = 0x11223344
    host_id = 0xBEEF
    role = _enums.Role.CLINICIAN
    pump_id = EXAMPLE_PUMP_ID
    pump = _session.PumpSecurity(
        pump_id,
        {role: key, _enums.Role.PATIENT: patient_key},
        _Counter(session_id.to_bytes(4, "little"), nonce_p),
    )
    host = _session.HostSecurity(pump_id, role, key, _Counter(nonce_h), host_id=host_id)
    hello = host.hello(seq=1)
    dec_p, dec_h = _frame.FrameDecoder(), _frame.FrameDecoder()

    def to_pump(data: bytes) -> Any:
        (frame,) = dec_p.feed(data)
        assert isinstance(frame, _frame.Frame)
        return pump.receive(frame, 0)

    def to_host(data: bytes) -> Any:
        (frame,) = dec_h.feed(data)
        assert isinstance(frame, _frame.Frame)
        return host.receive(frame)

    challenge = to_pump(hello)
    confirm = to_host(challenge.data)
    ready = to_pump(confirm.data)
    established = to_host(ready.data)
    assert isinstance(established, _session.Established)
    command = SetContinuousDose(
        command_id=bytes.fromhex("00112233445566778899aabbccddeeff"),
        expected_program_version=7,
        dose_ng_per_day=5_000_000,  # 5 mg/day: 0.2 mL/day at 25 mg/mL (section 18)
        confirm_soft_limit=False,
    )
    sealed = host.seal(command, seq=3)
    request = to_pump(sealed)
    assert isinstance(request, _session.Request)
    ack = pump.reply(
        request,
        CommandAck(command_id=command.command_id, duplicate=False, program_version=8, event_seq=42),
    )
    to_host(ack)
    t = _session.transcript(host_id, role, nonce_h, pump_id, session_id, nonce_p)
    tag_p, tag_h = _session.handshake_tags(key, t)
    k_h2p, k_p2h = _session.session_keys(key, nonce_h, nonce_p, session_id, role)
    info = _session.HKDF_INFO_PREFIX + session_id.to_bytes(4, "little") + bytes((role,))
    sealed_frame = _frame.FrameDecoder().feed(sealed)[0]
    assert isinstance(sealed_frame, _frame.Frame)
    return {
        "inputs": {
            "K_clinician": key.to_hex(),
            "K_patient": patient_key.to_hex(),
            "pump_id": pump_id,
            "host_id": host_id,
            "role": int(role),
            "nonce_H": nonce_h.hex(),
            "nonce_P": nonce_p.hex(),
            "session_id": session_id,
        },
        "transcript": t.hex(),
        "tag_P": tag_p.hex(),
        "tag_H": tag_h.hex(),
        "hkdf_salt": (nonce_h + nonce_p).hex(),
        "hkdf_info": info.hex(),
        "k_h2p": k_h2p.hex(),
        "k_p2h": k_p2h.hex(),
        "frames": {
            "hello": hello.hex(),
            "challenge": challenge.data.hex(),
            "confirm": confirm.data.hex(),
            "session_ready": ready.data.hex(),
            "set_continuous_dose": sealed.hex(),
            "command_ack": ack.hex(),
        },
        "set_continuous_dose_tag_input": sealed_frame.mac_input.hex(),
        "set_continuous_dose_tag": sealed_frame.tag.hex(),
    }


def stream_vectors() -> dict[str, Any]:
    """Decoder cases: a byte stream and what a conforming decoder must find in it."""
    a = _frame.encode_frame(GetStatus(), pump_id=EXAMPLE_PUMP_ID, seq=1, from_pump=False)
    b = _frame.encode_frame(
        SetSchedule(
            command_id=bytes(16),
            expected_program_version=1,
            confirm_soft_limit=False,
            steps=(ScheduleStep(0, 400_000), ScheduleStep(420, 600_000)),
        ),
        pump_id=EXAMPLE_PUMP_ID,
        seq=2,
        from_pump=False,
    )
    corrupt = bytearray(a)
    corrupt[-3] ^= 0x01
    lying = bytearray(b)
    lying[4:6] = (200).to_bytes(2, "little")  # claims 200 payload bytes
    cases = [
        ("clean", a + b),
        ("garbage before", b"\x00\xe7\x55garbage\xe7" + a),
        ("corrupt then good", bytes(corrupt) + b),
        ("lying length then good", bytes(lying[:20]) + a),
        ("good frame inside a bad candidate", a[:10] + b),
    ]
    out = []
    for label, data in cases:
        items = _frame.FrameDecoder().feed(data)
        out.append(
            {
                "label": label,
                "stream": data.hex(),
                "frames": [MESSAGES[i.msg_id].NAME for i in items if isinstance(i, _frame.Frame)],
                "errors": [type(i).__name__ for i in items if not isinstance(i, _frame.Frame)],
            }
        )
    return {"note": "Feed each stream in one piece or byte by byte: same frames.", "cases": out}


# --- the generated files -----------------------------------------------------------------------


def render_docs(handshake: dict[str, Any], crc: dict[str, Any]) -> str:
    """docs/protocol.md: spec_template.md with every placeholder filled (see `_gen_docs`)."""
    template = _gen_schema.fill_docs(TEMPLATE.read_text(encoding="utf-8"))
    return _gen_docs.render(template, handshake, crc, example_pump_id=EXAMPLE_PUMP_ID)


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


# Other docs with sections generated from protocol declarations (the event-record tables).
MARKED_DOCS = (ROOT / "docs" / "firmware_model.md", ROOT / "docs" / "emulator.md")


def generated_files() -> dict[Path, str]:
    """Every generated file, by path, with its exact content."""
    handshake = handshake_vectors()
    crc = crc_vectors()
    marked = {
        path: _gen_docs_rules.fill_markers(path.read_text(encoding="utf-8")) for path in MARKED_DOCS
    }
    return {
        **marked,
        ROOT / "docs" / "protocol.md": render_docs(handshake, crc),
        ROOT / "tests" / "vectors" / "messages.json": _json(message_vectors()),
        ROOT / "tests" / "vectors" / "handshake.json": _json(handshake),
        ROOT / "tests" / "vectors" / "crc.json": _json(crc),
        ROOT / "tests" / "vectors" / "stream.json": _json(stream_vectors()),
        ROOT / _gen_dissector.OUTPUT: _gen_dissector.render(),
        ROOT / "protocol" / "schema.json": _json(_gen_schema.schema()),
    }


def stale_files() -> list[Path]:
    return [
        path
        for path, content in generated_files().items()
        if not path.exists() or path.read_text(encoding="utf-8") != content
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protocol.gen", description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="regenerate the files")
    group.add_argument("--check", action="store_true", help="exit 1 if any file is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}", file=sys.stderr)
        if stale:
            print("run: python -m protocol.gen --write", file=sys.stderr)
        return 1 if stale else 0
    for path, content in generated_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
