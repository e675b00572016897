"""The programmer's offline tools: `pump-programmer decode HEX` (raw frames) and `replay TRACE`
(an emulator trace, `pump-emulator serve --trace`), and the JSON-ready form of messages both
print (`plain`), shared with the command line's `--json` output."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import time
from pathlib import Path
from typing import Any

import protocol as p


def plain(value: Any) -> Any:
    """Messages and records as JSON-ready data (enums by name, bytes in hex)."""
    if isinstance(value, enum.Flag) and not isinstance(value, enum.IntEnum):
        return [m.name for m in type(value) if m.value and m in value]
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bytes):
        return value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def date_text(ms: int | None) -> str:
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


def decode(hex_text: str) -> int:
    cleaned = "".join(hex_text.split()).removeprefix("0x")
    try:
        data = bytes.fromhex(cleaned)
    except ValueError:
        print("error: input is not hexadecimal", file=sys.stderr)
        return 2
    status = 0
    for item in p.FrameDecoder().feed(data):
        if isinstance(item, p.Frame):
            name = p.MESSAGES[item.msg_id].NAME
            auth = (
                f" session=0x{item.session_id:08X} counter={item.counter}"
                if item.authenticated
                else ""
            )
            direction = "pump->host" if item.from_pump else "host->pump"
            print(
                f"frame {name} (0x{item.msg_id:04X}) {direction} pump={item.pump_id} "
                f"seq={item.seq} payload={len(item.payload)}B{auth}"
            )
            try:
                print(f"  {item.decode()}")
            except p.MessageError as exc:
                print(f"  payload refused: {exc.code.name}: {exc.detail}")
                status = 1
            if item.authenticated:
                print("  (tag not verified: that needs the session keys)")
        else:
            print(f"decode error {type(item).__name__} [{item.code.name}]: {item.detail}")
            status = 1
    return status


def replay(path: Path, as_json: bool) -> int:
    """Print an emulator trace (`pump-emulator serve --trace`): every frame, decoded."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    status = 0
    for n, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            print(f"error: {path}:{n} is not JSON", file=sys.stderr)
            return 2
        if "trace" in entry:
            if not as_json:
                print(f"trace of pump {entry.get('pump_serial')}, protocol {entry.get('protocol')}")
            continue
        if "hex" not in entry:
            print(f"{date_text(entry.get('t_ms'))} {entry.get('link')} in: {entry.get('error')}")
            continue
        items = p.FrameDecoder().feed(bytes.fromhex(entry["hex"]))
        for item in items:
            if not isinstance(item, p.Frame):
                print(f"  undecodable: {item!r}")
                status = 1
                continue
            try:
                message: Any = item.decode()
            except p.MessageError as exc:
                message = f"payload refused: {exc.detail}"
                status = 1
            if as_json:
                print(
                    json.dumps(
                        {
                            "t_ms": entry.get("t_ms"),
                            "link": entry.get("link"),
                            "dir": entry.get("dir"),
                            "seq": item.seq,
                            "message": p.MESSAGES[item.msg_id].NAME,
                            "sealed": item.authenticated,
                            "fields": plain(message),
                        }
                    )
                )
            else:
                arrow = "->" if entry.get("dir") == "in" else "<-"
                sealed = "sealed" if item.authenticated else "plain"
                print(
                    f"{date_text(entry.get('t_ms'))} {entry.get('link')} {arrow} seq={item.seq} "
                    f"{sealed} {message}"
                )
    return status
