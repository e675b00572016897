"""protocol/schema.json: complete enough to build a codec in another language from it alone.

A C codec is generated from schema.json by tests/codegen/c_codec.py (which never imports
`protocol`), compiled with `gcc -Wall -Werror`, and run against the golden vectors: every message
vector decodes to the expected fields and re-encodes to identical bytes, the worked handshake's
keys and tags are derived and its sealed frames verify and re-encode, and every malformed frame
the Python codec refuses, the C codec refuses too; and its stream decoder finds, in any chunking,
what the Python one finds.
"""

from __future__ import annotations

import ast
import binascii
import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

import protocol as p
from protocol import gen
from protocol._fields import Kind
from protocol._frame import FLAG_FROM_PUMP
from tests.codegen import c_codec

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "protocol" / "schema.json"
CODEGEN = ROOT / "tests" / "codegen"
VECTORS = ROOT / "tests" / "vectors"
GCC = shutil.which("gcc")


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    data: dict[str, Any] = _load(SCHEMA)
    return data


def _compile(out: Path, sources: dict[str, str], main: str) -> Path:
    if GCC is None:
        pytest.skip("gcc is not installed: the generated C codec cannot be compiled")
    for name, text in sources.items():
        (out / name).write_text(text, encoding="utf-8")
    for name in ("itp_crypto.c", "itp_crypto.h", "itp_stream.c", "itp_stream.h"):
        shutil.copy(CODEGEN / name, out / name)
    (out / "main.c").write_text(main, encoding="utf-8")
    exe = out / "itp"
    r = subprocess.run(
        [GCC, "-std=c11", "-Wall", "-Werror", "-O1", "-o", str(exe)]
        + [str(out / n) for n in ("itp_codec.c", "itp_crypto.c", "itp_stream.c", "main.c")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return exe


@pytest.fixture(scope="module")
def c_client(tmp_path_factory: pytest.TempPathFactory, schema: dict[str, Any]) -> Path:
    """The driver linked with the codec generated from schema.json."""
    out = tmp_path_factory.mktemp("c_codec")
    driver = (CODEGEN / "driver.c").read_text(encoding="utf-8")
    return _compile(out, c_codec.generate(schema), driver)


def _run(exe: Path, commands: list[str]) -> list[dict[str, Any]]:
    r = subprocess.run(
        [str(exe)], input="\n".join(commands) + "\n", capture_output=True, text=True, check=True
    )
    lines = r.stdout.splitlines()
    assert len(lines) == len(commands), r.stdout + r.stderr
    return [json.loads(line) for line in lines]


# --- the schema file itself --------------------------------------------------------------------


def test_schema_is_generated_and_fresh() -> None:
    assert SCHEMA in gen.generated_files()
    assert SCHEMA not in gen.stale_files(), "run: python -m protocol.gen --write"


def test_schema_validates_against_its_json_schema(schema: dict[str, Any]) -> None:
    meta = _load(ROOT / "protocol" / "schema.schema.json")
    validator = jsonschema_rs.Draft202012Validator(meta)
    errors = [str(e) for e in validator.iter_errors(schema)]
    assert not errors, errors[:5]
    broken = dict(schema, messages=[dict(schema["messages"][0], sealing="sometimes")])
    assert not validator.is_valid(broken)


def test_schema_matches_the_declarations(schema: dict[str, Any]) -> None:
    assert schema["protocol"]["version"] == f"{p.PROTOCOL_MAJOR}.{p.PROTOCOL_MINOR}"
    assert [m["id"] for m in schema["messages"]] == sorted(p.MESSAGES)
    records = {r["name"] for r in schema["records"]}
    enums = {e["name"]: e for e in schema["enums"]}
    for m in schema["messages"]:
        cls = p.MESSAGES[m["id"]]
        assert (m["name"], m["seed"], m["signature"]) == (cls.NAME, cls.SEED, cls.signature())
        assert binascii.crc_hqx(m["signature"].encode("ascii"), 0xFFFF) == m["seed"]
        assert (m["min_payload"], m["max_payload"]) == (cls.MIN_SIZE, cls.MAX_SIZE)
        assert [f["name"] for f in m["fields"]] == [f.name for f in cls.FIELDS]
        for f, spec in zip(m["fields"], cls.FIELDS, strict=True):
            assert f["doc"] and f["type"] == spec.type_signature
            if spec.enum_type is not None:
                listed = {v["name"]: v["value"] for v in enums[f["enum"]]["values"]}
                assert listed == {x.name: x.value for x in spec.enum_type}
            if spec.item is not None:
                assert f["item"] in records
    assert all(e["values"] for e in enums.values())
    assert {e["code"] for e in schema["errors"]} == {int(c) for c in p.ErrorCode}


def test_every_cross_field_check_is_in_the_schema(schema: dict[str, Any]) -> None:
    declared = [*p.MESSAGES.values(), *(r for r in _all_records())]
    with_check = {cls.NAME for cls in declared if "_check" in cls.__dict__}
    ruled = {m["name"] for m in schema["messages"] + schema["records"] if m["rules"]}
    assert with_check == ruled
    assert {"SET_SCHEDULE", "ACKNOWLEDGE_ALARMS", "SILENCE_ALARMS", "ALARM_ENTRY"} <= ruled
    for owner in schema["messages"] + schema["records"]:
        for rule in owner["rules"]:
            assert rule["kind"] in schema["rule_kinds"] and rule["doc"], rule


def _all_records() -> list[type[p.Record]]:
    return [f.item for cls in p.MESSAGES.values() for f in cls.FIELDS if f.item is not None]


def test_the_generator_reads_only_the_schema() -> None:
    imported: set[str] = set()
    for name in ("c_codec.py", "_c_runtime.py"):
        tree = ast.parse((CODEGEN / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "json", "sys", "pathlib", "typing", "_c_runtime"}, imported


# --- the generated C codec against the golden vectors ------------------------------------------


def test_c_codec_decodes_and_reencodes_every_vector(c_client: Path) -> None:
    cases = [(m, v) for m in _load(VECTORS / "messages.json")["messages"] for v in m["vectors"]]
    results = _run(c_client, [f"frame {v['frame']}" for _, v in cases])
    assert len({m["id"] for m, _ in cases}) == len(p.MESSAGES)
    for (m, v), r in zip(cases, results, strict=True):
        where = f"{m['name']} {v['variant']}"
        assert r["ok"], (where, r)
        assert (r["msg_id"], r["name"], r["seq"], r["pump_id"]) == (
            m["id"],
            m["name"],
            v["seq"],
            v["pump_id"],
        ), where
        assert r["flags"] == (FLAG_FROM_PUMP if v["from_pump"] else 0), where
        assert r["fields"] == v["fields"], where
        assert r["reencoded"] == v["frame"], where
        cls = p.MESSAGES[m["id"]]
        expected_labels = {
            f.name: f.enum_type(v["fields"][f.name]).name
            for f in cls.FIELDS
            if f.kind is Kind.ENUM and f.enum_type is not None
        }
        assert r["labels"] == expected_labels, where


def test_c_codec_runs_the_worked_handshake(c_client: Path) -> None:
    hs = _load(VECTORS / "handshake.json")
    i, f = hs["inputs"], hs["frames"]
    keys_cmd = (
        f"keys {i['K_clinician']} {i['host_id']} {i['role']} {i['nonce_H']} {i['pump_id']} "
        f"{i['session_id']} {i['nonce_P']}"
    )
    sealed = [
        ("session_ready", hs["k_p2h"]),
        ("set_continuous_dose", hs["k_h2p"]),
        ("command_ack", hs["k_p2h"]),
    ]
    plain = ["hello", "challenge", "confirm"]
    results = _run(
        c_client,
        [keys_cmd]
        + [f"sealed {key} {f[name]}" for name, key in sealed]
        + [f"frame {f[name]}" for name in plain],
    )
    keys = results[0]
    for name in ("transcript", "tag_P", "tag_H", "k_h2p", "k_p2h"):
        assert keys[name] == hs[name], name
    for (name, _), r in zip(sealed, results[1:4], strict=True):
        frame = p.FrameDecoder().feed(bytes.fromhex(f[name]))[0]
        assert isinstance(frame, p.Frame)
        assert r["ok"] and r["tag_ok"] is True, (name, r)
        assert r["reencoded"] == f[name], name
        assert (r["session_id"], r["counter"]) == (frame.session_id, frame.counter)
        assert r["fields"] == gen.to_json(frame.decode()), name
    for name, r in zip(plain, results[4:], strict=True):
        assert r["ok"] and r["reencoded"] == f[name], name
    challenge = results[5]["fields"]
    assert challenge["tag"] == hs["tag_P"]
    assert results[6]["fields"]["tag"] == hs["tag_H"]


def _recrc(frame: bytes, msg_id: int) -> bytes:
    return frame[:-2] + p.frame_crc(frame[:-2], p.MESSAGES[msg_id].SEED).to_bytes(2, "little")


def test_c_codec_refuses_what_the_framing_refuses(c_client: Path) -> None:
    hs = _load(VECTORS / "handshake.json")
    good = bytes.fromhex(_load(VECTORS / "crc.json")["frame_example"]["frame"])
    msg_id = p.GetStatus.MSG_ID
    cases = {
        "crc": good[:-1] + bytes([good[-1] ^ 1]),
        "magic": b"\x00" + good[1:],
        "version": _recrc(good[:2] + b"\x02" + good[3:], msg_id),
        "flags": _recrc(good[:3] + b"\x08" + good[4:], msg_id),
        "unknown_message": good[:8] + b"\xee\xee" + good[10:],
        "length": _recrc(good[:4] + b"\x05\x00" + good[6:], msg_id),
        "size": good + b"\x00",
        "short": good[:10],
    }
    sealed = bytearray.fromhex(hs["frames"]["set_continuous_dose"])
    sealed[30] ^= 1  # a payload byte: CRC fixed, tag now wrong
    forged = _recrc(bytes(sealed), p.SetContinuousDose.MSG_ID)
    results = _run(
        c_client,
        [f"frame {raw.hex()}" for raw in cases.values()] + [f"sealed {hs['k_h2p']} {forged.hex()}"],
    )
    for (error, raw), r in zip(cases.items(), results[:-1], strict=True):
        assert r == {"ok": False, "error": error}, (error, raw.hex(), r)
        if error not in ("size", "short"):  # one whole frame per call, unlike a stream
            assert not [x for x in p.FrameDecoder().feed(raw) if isinstance(x, p.Frame)], error
    assert results[-1] == {"ok": False, "error": "tag"}


def _forbidden_values(field: dict[str, Any], wire: dict[str, Any]) -> list[int]:
    """Values of the field's integer base type that the schema says are invalid."""
    kind = field["kind"]
    t = wire[field.get("base", "u8")]
    if kind in ("int", "bool"):
        out = []
        if field["min"] > t["min"]:
            out.append(field["min"] - 1)
        if field["max"] < t["max"]:
            out.append(field["max"] + 1)
        return out
    if kind == "enum":
        return [next(x for x in range(t["max"] + 1) if x not in field["values"])]
    if kind == "flags":
        return [next(1 << b for b in range(32) if not field["mask"] & 1 << b)]
    return []


def _malformed_frames(schema: dict[str, Any]) -> list[tuple[str, bytes]]:
    """Every vector's 'max' frame with one fixed-offset field set to a forbidden value."""
    vectors = {m["id"]: m["vectors"] for m in _load(VECTORS / "messages.json")["messages"]}
    records = {r["name"]: r for r in schema["records"]}
    out: list[tuple[str, bytes]] = []
    for m in schema["messages"]:
        raw = bytes.fromhex(next(v for v in vectors[m["id"]] if v["variant"] == "max")["frame"])
        # (label, offset in the payload, field): top-level fields and the first array item's
        fixed = [(f["name"], f["offset"], f) for f in m["fields"] if f["offset"] is not None]
        for name, offset, f in list(fixed):
            if f["kind"] == "array" and f["max_count"]:
                item = records[f["item"]]["fields"]
                fixed += [(f"{name}[0].{x['name']}", offset + 1 + x["offset"], x) for x in item]
        for name, offset, f in fixed:
            if f["size"] is None:
                continue
            for bad in _forbidden_values(f, schema["wire_types"]):
                at = schema["frame"]["header_size"] + offset
                size = f["size"]
                value = bad.to_bytes(size, "little", signed=bad < 0)
                frame = raw[:at] + value + raw[at + size :]
                out.append((f"{m['name']}.{name}={bad}", _recrc(frame, m["id"])))
        texts = [f for f in m["fields"] if f["kind"] == "text" and f["offset"] is not None]
        for f in texts:  # invalid UTF-8: one lone continuation byte
            at = schema["frame"]["header_size"] + f["offset"]
            frame = raw[:at] + b"\x01\x80" + raw[at + 1 + raw[at] :]
            frame = frame[:4] + (len(frame) - 16).to_bytes(2, "little") + frame[6:]
            out.append((f"{m['name']}.{f['name']} not UTF-8", _recrc(frame, m["id"])))
    return out


def test_c_codec_refuses_every_malformed_payload_python_refuses(
    c_client: Path, schema: dict[str, Any]
) -> None:
    cases = _malformed_frames(schema)
    assert len(cases) > 50  # every range, enum and flag set in the catalogue
    results = _run(c_client, [f"frame {raw.hex()}" for _, raw in cases])
    for (label, raw), r in zip(cases, results, strict=True):
        (frame,) = p.FrameDecoder().feed(raw)
        assert isinstance(frame, p.Frame), label
        with pytest.raises(p.MessageError):
            frame.decode()
        assert r == {"ok": False, "error": "malformed"}, (label, r)


_ENCODE_MAIN = r"""
#include <stdio.h>
#include <string.h>
#include "itp_codec.h"

int main(void) {
    static uint8_t out[ITP_MAX_FRAME];
    itp_message_t m;
    int err;
    memset(&m, 0, sizeof m);
    m.msg_id = 0x%(get_status)04X;
    size_t n = itp_encode_frame(&m, 0, 1, %(pump)d, 0, 0, out, sizeof out, &err);
    for (size_t i = 0; i < n; i++) printf("%%02x", out[i]);
    printf("\n");
    memset(&m, 0, sizeof m);
    m.msg_id = 0x%(set_schedule)04X;
    m.u.set_schedule.steps_count = 1;
    m.u.set_schedule.steps[0].start_minute = 1440; /* one past the last minute of a day */
    n = itp_encode_frame(&m, 0, 2, %(pump)d, 0, 0, out, sizeof out, &err);
    printf("%%zu %%s\n", n, itp_error_name(err));
    m.u.set_schedule.steps[0].start_minute = 0;
    m.u.set_schedule.steps[0].dose_ng_per_day = 400000;
    n = itp_encode_frame(&m, 0, 2, %(pump)d, 0, 0, out, sizeof out, &err);
    for (size_t i = 0; i < n; i++) printf("%%02x", out[i]);
    printf("\n");
    return 0;
}
"""


def test_c_encoder_builds_frames_and_refuses_out_of_range_values(
    tmp_path: Path, schema: dict[str, Any]
) -> None:
    crc = _load(VECTORS / "crc.json")["frame_example"]
    main = _ENCODE_MAIN % {
        "get_status": p.GetStatus.MSG_ID,
        "set_schedule": p.SetSchedule.MSG_ID,
        "pump": gen.EXAMPLE_PUMP_ID,
    }
    exe = _compile(tmp_path, c_codec.generate(schema), main)
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert lines[0] == crc["frame"]
    assert lines[1:3] == ["0", "malformed"]
    expected = p.encode_frame(
        p.SetSchedule(
            command_id=bytes(16),
            expected_program_version=0,
            confirm_soft_limit=False,
            steps=(p.ScheduleStep(0, 400_000),),
        ),
        pump_id=gen.EXAMPLE_PUMP_ID,
        seq=2,
        from_pump=False,
    )
    assert lines[3] == expected.hex()


# --- the stream decoder (docs/protocol.md section 4) over the generated message table ----------


def _python_events(data: bytes, chunk: int) -> list[str]:
    dec = p.FrameDecoder()
    out: list[str] = []
    for i in range(0, len(data), chunk):
        for item in dec.feed(data[i : i + chunk]):
            if isinstance(item, p.Frame):
                out.append(p.MESSAGES[item.msg_id].NAME)
            elif isinstance(item, p.GarbageSkipped):
                out.append(f"GarbageSkipped:{item.count}")
            else:
                out.append(type(item).__name__)
    return out


def test_c_stream_decoder_matches_the_stream_vectors(c_client: Path) -> None:
    cases = _load(VECTORS / "stream.json")["cases"]
    commands, expected = [], []
    for case in cases:
        data = bytes.fromhex(case["stream"])
        for chunk in (len(data), 1, 3, 7):
            commands.append(f"stream {chunk} {case['stream']}")
            expected.append((case, chunk, _python_events(data, chunk)))
    for (case, chunk, events), r in zip(expected, _run(c_client, commands), strict=True):
        assert r["events"] == events, (case["label"], chunk)
        frames = [e for e in r["events"] if e in p.MESSAGES_BY_NAME]
        assert frames == case["frames"], (case["label"], chunk)
        if chunk == len(bytes.fromhex(case["stream"])):
            errors = [e.split(":")[0] for e in r["events"] if e not in p.MESSAGES_BY_NAME]
            assert errors == case["errors"], case["label"]


def _hostile_stream(rng: random.Random, frames: list[bytes]) -> bytes:
    """Vector frames with garbage, cut-offs, flipped bits and lying lengths between them."""
    out = bytearray()
    for _ in range(rng.randint(1, 6)):
        frame = bytearray(rng.choice(frames))
        roll = rng.random()
        if roll < 0.2:
            frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
        elif roll < 0.3:
            frame = frame[: rng.randrange(1, len(frame))]
        elif roll < 0.4:
            frame[4:6] = rng.randrange(0, 300).to_bytes(2, "little")
        if rng.random() < 0.3:
            out += rng.choice([b"\xe7", b"\xe7\x1a", rng.randbytes(rng.randint(1, 20))])
        out += frame
    return bytes(out)


def test_c_stream_decoder_agrees_with_python_on_hostile_streams(c_client: Path) -> None:
    vectors = _load(VECTORS / "messages.json")["messages"]
    frames = [bytes.fromhex(v["frame"]) for m in vectors for v in m["vectors"]]
    frames = [f for f in frames if len(f) < 200]  # short ones: several per stream
    rng = random.Random(1616)
    commands, expected = [], []
    for _ in range(300):
        data = _hostile_stream(rng, frames)
        for chunk in (1, 5, 64, 1000):
            commands.append(f"stream {chunk} {data.hex()}")
            expected.append(_python_events(data, chunk))
    results = _run(c_client, commands)
    kinds: set[str] = set()
    for command, events, r in zip(commands, expected, results, strict=True):
        assert r["events"] == events, command
        kinds.update(e.split(":")[0] for e in events if e not in p.MESSAGES_BY_NAME)
    # the streams exercised every way of losing bytes
    assert {"GarbageSkipped", "BadCrc", "BadLength", "TruncatedFrame"} <= kinds, kinds


def _python_refusal(raw: bytes) -> str:
    """What the receiving end (host for pump frames, pump for host frames) says before any key
    is involved: 'direction', 'not_sealed' or 'ok'."""
    (frame,) = p.FrameDecoder().feed(raw)
    assert isinstance(frame, p.Frame)
    key = p.SecretKey(bytes(32))

    def rand(n: int) -> bytes:
        return b"\x01" * n  # never zero: the pump draws until it gets a non-zero session id

    try:
        if frame.from_pump:
            p.HostSecurity(frame.pump_id, p.Role.CLINICIAN, key, rand).receive(frame)
        else:
            pump = p.PumpSecurity(frame.pump_id, {p.Role.CLINICIAN: key}, rand)
            result = pump.receive(frame, 0)
            if isinstance(result, p.Rejected):
                raise result.error
    except (p.WrongDirection, p.NotAuthenticated) as exc:
        return "direction" if isinstance(exc, p.WrongDirection) else "not_sealed"
    except p.ProtocolError:
        pass  # a later check (handshake state, ...): not the framing policy
    return "ok"


def test_c_codec_applies_the_direction_and_sealing_rules_as_python_does(c_client: Path) -> None:
    raws: list[bytes] = []
    for m in _load(VECTORS / "messages.json")["messages"]:
        raw = bytes.fromhex(m["vectors"][0]["frame"])
        flipped = raw[:3] + bytes([raw[3] ^ FLAG_FROM_PUMP]) + raw[4:]
        raws += [raw, _recrc(flipped, m["id"])]
    results = _run(c_client, [f"frame {raw.hex()}" for raw in raws])
    seen = set()
    for raw, r in zip(raws, results, strict=True):
        assert r["ok"], r
        assert r["policy"] == _python_refusal(raw), (r["name"], r["flags"])
        seen.add(r["policy"])
    assert seen == {"ok", "direction", "not_sealed"}


def _rule_violations(schema: dict[str, Any]) -> list[tuple[str, bytes]]:
    """Each message's 'max' vector broken by exactly one of the cross-field rules it (or the
    first item of one of its arrays) declares."""
    vectors = {m["id"]: m["vectors"] for m in _load(VECTORS / "messages.json")["messages"]}
    records = {r["name"]: r for r in schema["records"]}
    header = schema["frame"]["header_size"]
    out: list[tuple[str, bytes]] = []
    for m in schema["messages"]:
        raw = bytes.fromhex(next(v for v in vectors[m["id"]] if v["variant"] == "max")["frame"])
        owners = [(m, 0, m["name"])]
        for f in m["fields"]:
            if f["kind"] == "array" and f["offset"] is not None and f["max_count"]:
                label = f"{m['name']}.{f['name']}[0]"
                owners.append((records[f["item"]], f["offset"] + 1, label))
        for owner, base, label in owners:
            fields = {f["name"]: f for f in owner["fields"]}
            for rule in owner["rules"]:
                f = fields[rule["field"]]
                at = header + base + f["offset"]
                patches: list[tuple[str, int, int, int]] = []  # (what, offset, size, value)
                if rule["kind"] == "nonzero":
                    patches.append(("0", at, f["size"], 0))
                elif rule["kind"] == "single_bit":
                    two = [v["value"] for v in _enum(schema, f["enum"])["values"]][:2]
                    patches.append(("two bits", at, f["size"], two[0] | two[1]))
                else:
                    key = next(x for x in records[f["item"]]["fields"] if x["name"] == rule["key"])
                    item0 = at + 1 + key["offset"]
                    item1 = item0 + f["item_size"]
                    first = int.from_bytes(raw[item0 : item0 + key["size"]], "little")
                    patches.append(("equal keys", item1, key["size"], first))
                    if "first" in rule:
                        patches.append(("first", item0, key["size"], rule["first"] + 1))
                for what, offset, size, value in patches:
                    frame = raw[:offset] + value.to_bytes(size, "little") + raw[offset + size :]
                    name = f"{label}.{rule['field']} {rule['kind']}: {what}"
                    out.append((name, _recrc(frame, m["id"])))
    return out


def _enum(schema: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in schema["enums"] if e["name"] == name)
    return found


def test_c_codec_enforces_the_cross_field_rules_as_python_does(
    c_client: Path, schema: dict[str, Any]
) -> None:
    cases = _rule_violations(schema)
    kinds = {label.split(" ")[1].rstrip(":") for label, _ in cases}
    assert kinds == set(schema["rule_kinds"]), kinds  # every kind of rule is exercised
    results = _run(c_client, [f"frame {raw.hex()}" for _, raw in cases])
    for (label, raw), r in zip(cases, results, strict=True):
        (frame,) = p.FrameDecoder().feed(raw)
        assert isinstance(frame, p.Frame), label
        with pytest.raises(p.MessageError):
            frame.decode()
        assert r == {"ok": False, "error": "malformed"}, (label, r)
