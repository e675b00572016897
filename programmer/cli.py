"""`pump-programmer`: the programmer's command line.

The clinical workflows land with the programmer issue (#5). Until then `decode` inspects
protocol v1 frames: give it hex (arguments or standard input) and it prints every frame found,
its header and its decoded message, or the documented decode error.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

import protocol as p


def _version() -> str:
    try:
        return metadata.version("intrathecal-pump-emulator")
    except metadata.PackageNotFoundError:
        return "unknown"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pump-programmer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("decode", help="decode protocol v1 frames given in hex")
    d.add_argument("hex", nargs="*", help="frame bytes in hex (default: read standard input)")
    args = parser.parse_args(argv)
    if args.command == "decode":
        return decode(" ".join(args.hex) if args.hex else sys.stdin.read())
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
