"""Golden vectors: decode and re-encode byte for byte; CRC check value; generated files fresh."""

from __future__ import annotations

import binascii
import json
from pathlib import Path
from typing import Any

import pytest

import protocol as p
from protocol import gen

VECTORS = Path(__file__).parent / "vectors"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


def _cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [(m["name"], m, v) for m in load("messages.json")["messages"] for v in m["vectors"]]


@pytest.mark.parametrize(
    ("name", "meta", "vector"), _cases(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_golden_vector_decodes_and_reencodes(
    name: str, meta: dict[str, Any], vector: dict[str, Any]
) -> None:
    cls = p.MESSAGES[meta["id"]]
    assert name == cls.NAME
    assert meta["seed"] == cls.SEED and cls.signature() == meta["signature"]
    assert binascii.crc_hqx(meta["signature"].encode("ascii"), 0xFFFF) == cls.SEED
    raw = bytes.fromhex(vector["frame"])
    items = p.FrameDecoder().feed(raw)
    assert len(items) == 1 and isinstance(items[0], p.Frame)
    frame = items[0]
    assert frame.payload.hex() == vector["payload"]
    message = frame.decode()
    assert message == gen.from_json(cls, vector["fields"])
    assert gen.to_json(message) == vector["fields"]
    again = p.encode_frame(
        message, pump_id=vector["pump_id"], seq=vector["seq"], from_pump=vector["from_pump"]
    )
    assert again == raw


def test_crc_check_value() -> None:
    crc = load("crc.json")
    assert p.crc16(b"123456789") == 0x29B1 == crc["check"]
    ex = crc["frame_example"]
    frame = bytes.fromhex(ex["frame"])
    assert bytes.fromhex(ex["crc_input"]) == ex["seed"].to_bytes(2, "little") + frame[:-2]
    assert p.crc16(bytes.fromhex(ex["crc_input"])) == ex["crc"]
    assert int.from_bytes(frame[-2:], "little") == ex["crc"]
    assert p.frame_crc(frame[:-2], ex["seed"]) == ex["crc"]


def _crc16_bitwise(data: bytes) -> int:
    """Independent bit-by-bit CRC-16/CCITT-FALSE, straight from the parameters in the docs."""
    reg = 0xFFFF
    for byte in data:
        reg ^= byte << 8
        for _ in range(8):
            reg = ((reg << 1) ^ 0x1021) & 0xFFFF if reg & 0x8000 else (reg << 1) & 0xFFFF
    return reg


def test_crc_matches_an_independent_implementation() -> None:
    for m in load("messages.json")["messages"]:
        for v in m["vectors"]:
            raw = bytes.fromhex(v["frame"])
            seed = m["seed"].to_bytes(2, "little")
            assert _crc16_bitwise(seed + raw[:-2]) == int.from_bytes(raw[-2:], "little")


@pytest.mark.parametrize("case", load("stream.json")["cases"], ids=lambda c: c["label"])
def test_stream_vectors_in_any_chunking(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["stream"])
    for chunk in (len(data) or 1, 1, 3, 7):
        dec = p.FrameDecoder()
        items: list[p.Frame | p.DecodeError] = []
        for i in range(0, len(data), chunk):
            items += dec.feed(data[i : i + chunk])
        names = [p.MESSAGES[f.msg_id].NAME for f in items if isinstance(f, p.Frame)]
        assert names == case["frames"], chunk


def test_generated_files_are_fresh() -> None:
    stale = gen.stale_files()
    assert not stale, f"stale generated files {stale}: run python -m protocol.gen --write"


def test_generation_is_deterministic() -> None:
    assert gen.generated_files() == gen.generated_files()


def test_docs_cover_what_an_implementer_needs() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text(encoding="utf-8")
    for needle in [
        "CRC-16/CCITT-FALSE", "0x1021", "0x29B1", "HKDF-SHA256", "transcript", "Replay window",
        "command_id", "expected_program_version", "IDEMPOTENCY_MISMATCH", "itp/v1/<serial>/cmd",
        "last will", "Versioning", "TCP_NODELAY", "8 data bits",
    ]:  # fmt: skip
        assert needle in doc, needle
    for cls in p.MESSAGES.values():
        assert f"0x{cls.MSG_ID:04X} {cls.NAME}" in doc
        for f in cls.FIELDS:
            assert f"`{f.name}`" in doc
    for code in p.ErrorCode:
        assert f"`{code.name}`" in doc
