"""`pump-emulator fleet`: N emulated pumps in one process on one MQTT connection.

The pumps (`Fleet`, serials from --first-serial, in memory unless --state-dir) beacon on the
broker until SIGINT or SIGTERM, optionally behind one control plane and instructor console for
all of them. Once connected to the broker and subscribed to every pump's command topic (as a
pump's `serve` is when its MqttLink is `connected`) it prints the serials and the control URL
and writes them as JSON to --ready-file: a script that waits for the file can send commands at
once. Until the broker answers nothing is written (the fleet keeps retrying). At exit it prints
the beacon count and lateness and writes those figures to --stats-file (bench/fleet.py reads
them). Bad settings exit 2.

Once built, the pumps' objects are moved out of the garbage collector's sight (`gc.freeze`):
they live as long as the process, and a full collection over 20,000 pumps (~400 MB) would stop
every beacon for half a second.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
from pathlib import Path

from ._cli_common import (
    PROFILES,
    control_address,
    serial_number,
    speed_milli,
    status_line,
    stop_on_signals,
    write_ready_file,
)
from ._control import ControlPlane
from ._fleet import Fleet
from ._keys import KeyFileError
from ._mqtt import MqttSettings
from ._store import StoreError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    f = sub.add_parser("fleet", help="run N pumps in one process on one MQTT connection")
    f.add_argument("--count", type=int, required=True, help="how many pumps")
    f.add_argument("--mqtt", required=True, metavar="URL", help="mqtt://host:port (or mqtts://)")
    f.add_argument("--mqtt-username")
    f.add_argument("--mqtt-password", help="(or ITP_MQTT_PASSWORD)")
    f.add_argument("--first-serial", type=serial_number, default=100_000)
    f.add_argument("--profile", choices=sorted(PROFILES), default="synchromed-ii-20")
    f.add_argument("--speed", type=speed_milli, default=1000, metavar="FACTOR")
    f.add_argument("--beacon-interval", type=float, default=1.0, metavar="SECONDS")
    f.add_argument("--name", default="fleet", help="the fleet's status topic name")
    f.add_argument("--keys-dir", type=Path, help="write each pump's key files here")
    f.add_argument("--state-dir", type=Path, help="persist each pump here (else in memory)")
    f.add_argument("--control", metavar="[HOST:]PORT", help="serve the control plane")
    f.add_argument(
        "--console", action="store_true", help="serve the instructor console (docs/console.md)"
    )
    f.add_argument("--ready-file", type=Path, help="JSON written once serving")
    f.add_argument("--stats-file", type=Path, help="JSON of beacon lateness written at exit")
    f.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])


async def fleet(args: argparse.Namespace) -> int:
    try:
        control_at = control_address(args.control or "0")
        settings = MqttSettings.from_url(
            args.mqtt,
            username=args.mqtt_username,
            password=args.mqtt_password or os.environ.get("ITP_MQTT_PASSWORD"),
        )
        fleet = Fleet(
            args.count,
            settings,
            first_serial=args.first_serial,
            profile=PROFILES[args.profile],
            speed_milli=args.speed,
            beacon_interval_s=args.beacon_interval,
            keys_dir=args.keys_dir,
            state_dir=args.state_dir,
            name=args.name,
            progress=status_line(),
        )
    except (ValueError, StoreError, KeyFileError) as exc:
        print(f"pump-emulator fleet: error: {exc}", file=sys.stderr)
        return 2
    gc.collect()
    gc.freeze()
    stop = stop_on_signals()
    await fleet.start()
    control = None
    if args.control is not None or args.console:
        control = ControlPlane(
            fleet.runtimes, os.environ.get("ITP_CONTROL_TOKEN") or None, console=args.console
        )
        await control.start(*control_at)
    if not await _connected_or_stopped(fleet, stop):
        await _stop(fleet, control, args)
        return 0
    info = {
        "pid": os.getpid(),
        "pumps": args.count,
        "first_serial": args.first_serial,
        "mqtt": args.mqtt,
        "fleet_status_topic": f"itp/v1/fleet/{args.name}/status",
        "keys_dir": str(args.keys_dir) if args.keys_dir else None,
        "control": control.url if control else None,
        "control_token": control.token if control else None,
        "console": control.console_url if control and args.console else None,
    }
    print(f"fleet {args.name}: {args.count} pumps, serials {args.first_serial} .. "
          f"{args.first_serial + args.count - 1}, on {args.mqtt}", flush=True)  # fmt: skip
    if control is not None:
        print(f"control: {control.url}  token {control.token}", flush=True)
    if info["console"]:
        print(f"console: {info['console']}", flush=True)
    if args.ready_file:
        write_ready_file(args.ready_file, info)
    await stop.wait()
    await _stop(fleet, control, args)
    return 0


async def _connected_or_stopped(fleet: Fleet, stop: asyncio.Event) -> bool:
    """Until the fleet is connected and subscribed (True) or asked to stop first (False)."""
    connected = asyncio.create_task(fleet.connected.wait())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({connected, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        connected.cancel()
        stopping.cancel()
    return not stop.is_set()  # else the fleet connected (it may have lost it again since)


async def _stop(fleet: Fleet, control: ControlPlane | None, args: argparse.Namespace) -> None:
    stats = fleet.stats()
    if control is not None:
        await control.close()
    await fleet.close()
    if args.stats_file:
        args.stats_file.write_text(json.dumps(stats))
    print(f"fleet {args.name}: stopped; {stats['beacons_sent']} beacons, "
          f"lateness p99 {stats['lateness_ms_p99']} ms", flush=True)  # fmt: skip
