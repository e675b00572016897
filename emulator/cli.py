"""`pump-emulator`: the emulator's command line.

`serve` runs one emulated pump on a virtual serial port (and MQTT) until Ctrl-C, with
`--console` an instructor's web page of it (docs/console.md). `demo` shows protocol v1 at work
in memory: a handshake, a sealed command, and the pump refusing a replay and a forgery, with
every frame printed in hex. `trace-to-pcap` turns a `--trace` file into a pcap that
tools/wireshark/pump_telemetry.lua decodes (emulator/pcap.py).

This module is the parser and the dispatch; each subcommand lives in its own module with its
options (`add_parser`) and its run function: _cli_serve.py, _cli_ctl.py, _cli_scenario.py,
_cli_fleet.py, _cli_demo.py; what they share (option types, profiles, logging) in
_cli_common.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from importlib import metadata

import protocol as p

from . import _cli_ctl, _cli_demo, _cli_fleet, _cli_scenario, _cli_serve, pcap
from ._cli_common import PROFILES, setup_logging
from ._cli_demo import demo

__all__ = ["PROFILES", "demo", "main"]


def _version() -> str:
    try:
        return metadata.version("intrathecal-pump-emulator")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pump-emulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    _cli_serve.add_parser(sub)
    _cli_ctl.add_parser(sub)
    _cli_scenario.add_parser(sub)
    _cli_fleet.add_parser(sub)
    _cli_demo.add_parser(sub)
    pcap.add_arguments(
        sub.add_parser(
            "trace-to-pcap",
            help="convert a --trace file to pcap for Wireshark (tools/wireshark/)",
            description=pcap.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    args = parser.parse_args(argv)
    try:
        code = _run(parser, args)
        sys.stdout.flush()  # a reader that left shows here, not as an error at exit
        return code
    except BrokenPipeError:  # `pump-emulator scenario list | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no 2nd error at exit
        return 141  # 128 + SIGPIPE, as a shell tool killed by the pipe


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "serve":
        if args.baud is not None and args.baud <= 0:
            parser.error("--baud must be > 0")
        setup_logging(args.log_level, args.log_json)
        return asyncio.run(_cli_serve.serve(args))
    if args.command == "ctl":
        return _cli_ctl.ctl(args)
    if args.command == "scenario":
        return _cli_scenario.scenario(args)
    if args.command == "fleet":
        setup_logging(args.log_level, False)
        return asyncio.run(_cli_fleet.fleet(args))
    if args.command == "demo":
        if not 0 < args.pump_serial < p.BROADCAST_PUMP_ID:
            parser.error("--pump-serial must be 1..4294967294")
        return demo(args.pump_serial)
    if args.command == "trace-to-pcap":
        return pcap.run(args)
    return 2  # pragma: no cover - argparse enforces the choices


if __name__ == "__main__":
    sys.exit(main())
