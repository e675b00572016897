"""Run tshark with the generated dissector and check what it shows against `protocol`'s decoding.

`dissect(pcap)` runs `tshark -X lua_script:tools/wireshark/pump_telemetry.lua -T pdml` and
returns the packets; `check_frame(proto)` rebuilds the frame bytes from the dissector's header
fields, decodes them with `protocol` (which also verifies the CRC) and asserts that every
header and message field the dissector shows has the value `protocol` decoded, in wire order,
enumerations by name and numbers with their unit.
"""

from __future__ import annotations

import enum
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import protocol as p
from protocol._fields import Kind
from protocol._schema import Record

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "tools" / "wireshark" / "pump_telemetry.lua"

# Expert severities (epan/proto.h): PI_CHAT, PI_NOTE, PI_WARN, PI_ERROR.
CHAT, NOTE, WARN, ERROR = 0x00200000, 0x00400000, 0x00600000, 0x00800000

# The frame's own fields, in wire order: what rebuilds the frame bytes.
FRAME_FIELDS = (
    "itp.magic",
    "itp.version",
    "itp.flags",
    "itp.length",
    "itp.seq",
    "itp.msg_id",
    "itp.pump_id",
    "itp.session_id",
    "itp.counter",
    "itp.payload",
    "itp.tag",
    "itp.crc",
)
_NOT_MESSAGE = {*FRAME_FIELDS, "itp.message", "itp.sealed", "itp.topic"}
_FRAME_PARTS = ("itp.crc.", "itp.flags.")


def dissect(pcap: Path, *options: str) -> list[ET.Element]:
    """The PDML packets tshark makes of `pcap` with the dissector loaded."""
    run = subprocess.run(
        ["tshark", "-n", "-X", f"lua_script:{LUA}", "-r", str(pcap), *options, "-T", "pdml"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "Lua" not in run.stderr, run.stderr  # a script that fails to load says so here
    return ET.fromstring(run.stdout).findall("packet")


def frames(packet: ET.Element) -> list[ET.Element]:
    return [e for e in packet.iter("proto") if e.get("name") == "itp"]


def experts(packet: ET.Element) -> list[tuple[str, int, str]]:
    """(expert field name, severity, message) of every expert item in the packet."""
    out = []
    for e in packet.iter("field"):
        if e.get("name") != "_ws.expert":
            continue
        name = severity = message = ""
        for child in e:
            n = child.get("name", "")
            if n == "_ws.expert.severity":
                severity = child.get("show", "0")
            elif n == "_ws.expert.message":
                message = child.get("show", "")
            elif not n.startswith("_ws.expert"):
                name = n
        out.append((name, int(severity or 0), message))
    return out


def assert_clean(packet: ET.Element, *, only_itp: bool = False) -> None:
    """No malformed mark, no Lua error, no expert warning or error (with `only_itp`, none in
    the dissector's own trees: a live TCP capture may carry TCP analysis notes of its own)."""
    names = {e.get("name") for e in packet.iter()}
    assert "_ws.malformed" not in names and "_ws.lua.error" not in names
    scopes = frames(packet) if only_itp else [packet]
    bad = [x for scope in scopes for x in experts(scope) if x[1] >= WARN]
    assert not bad, bad


def shown(proto: ET.Element) -> list[tuple[str, str, str]]:
    """(name, show, value) of the fields under `proto` in document order, experts left out:
    `show` is the value as tshark shows it, `value` the hex of its bytes."""
    out: list[tuple[str, str, str]] = []

    def walk(e: ET.Element) -> None:
        for child in e:
            name = child.get("name", "")
            if name.startswith("_ws.expert"):
                continue
            if name.startswith("itp.") and not name.endswith(".item"):
                out.append((name, child.get("show", ""), child.get("value", "")))
            walk(child)

    walk(proto)
    return out


def values(proto: ET.Element) -> dict[str, str]:
    """Field name -> shown value (the last one of a name)."""
    return {name: show for name, show, _ in shown(proto)}


def _expected(owner: type[Record], record: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for f in owner.FIELDS:
        abbr = f"itp.{owner.NAME.lower()}.{f.name}"
        v = getattr(record, f.name)
        if f.kind is Kind.ARRAY:
            assert f.item is not None
            out.append((abbr + ".count", str(len(v))))
            for item in v:
                out += _expected(f.item, item)
        elif f.kind is Kind.TEXT:
            out += [(abbr + ".length", str(len(v.encode()))), (abbr, v)]
        elif f.kind is Kind.BYTES:
            out.append((abbr, "hex:" + v.hex()))
        elif f.kind is Kind.FLAGS:
            out.append((abbr, f"0x{int(v):08x}"))
            assert isinstance(v, enum.IntFlag)
            out += [(f"{abbr}.bit.{str(m.name).lower()}", "1") for m in type(v) if m in v]
        else:
            out.append((abbr, str(int(v))))
    return out


def _labels(owner: type[Record], record: Any) -> list[tuple[str, str]]:
    """(field name, how its line must start) for enumerations (their names) and units."""
    out: list[tuple[str, str]] = []
    for f in owner.FIELDS:
        abbr = f"itp.{owner.NAME.lower()}.{f.name}"
        v = getattr(record, f.name)
        if f.kind is Kind.ARRAY:
            assert f.item is not None
            for item in v:
                out += _labels(f.item, item)
        elif f.kind is Kind.ENUM:
            out.append((abbr, f"{f.name}: {v.name} ({int(v)})"))
        elif f.kind is Kind.INT and f.unit:
            out.append((abbr, f"{f.name}: {int(v)} {f.unit}"))
    return out


def check_labels(proto: ET.Element, message: p.Message) -> None:
    """Enumeration values are shown by name, numbers with their unit."""
    want = _labels(type(message), message)
    names = {n for n, _ in want}
    got = [(e.get("name", ""), e.get("showname", "")) for e in proto.iter("field")]
    got = [x for x in got if x[0] in names]
    assert len(got) == len(want), message.NAME
    for (name, line), (_, start) in zip(got, want, strict=True):
        assert line.startswith(start), (name, line, start)


def frame_bytes(proto: ET.Element) -> bytes:
    values = {e.get("name"): e.get("value", "") for e in proto if e.get("name") in FRAME_FIELDS}
    return bytes.fromhex("".join(values.get(name, "") for name in FRAME_FIELDS))


def check_frame(proto: ET.Element) -> tuple[p.Frame, p.Message]:
    """Assert the dissector shows exactly what `protocol` decodes of the same bytes."""
    raw = frame_bytes(proto)
    (frame,) = p.FrameDecoder().feed(raw)  # the CRC verifies, the header is consistent
    assert isinstance(frame, p.Frame), frame
    message = frame.decode()
    got = shown(proto)
    header = {name: show for name, show, _ in got}
    values = {name: value for name, _, value in got}
    assert header["itp.message"] == message.NAME
    assert header["itp.seq"] == str(frame.seq) and header["itp.pump_id"] == str(frame.pump_id)
    assert header["itp.sealed"] == ("1" if frame.authenticated else "0")
    assert header["itp.crc.status"] == "Good"
    if frame.authenticated:
        assert int(header["itp.session_id"], 16) == frame.session_id
        assert header["itp.counter"] == str(frame.counter)
    assert values.get("itp.payload", "") == frame.payload.hex()
    fields = [
        (name, value if expected.startswith("hex:") else show)
        for (name, show, value), (_, expected) in zip(
            [x for x in got if x[0] not in _NOT_MESSAGE and not x[0].startswith(_FRAME_PARTS)],
            _expected(type(message), message) + [("", "")] * len(got),
            strict=False,
        )
    ]
    want = [(n, v.removeprefix("hex:")) for n, v in _expected(type(message), message)]
    assert fields == want, message.NAME
    check_labels(proto, message)
    return frame, message
