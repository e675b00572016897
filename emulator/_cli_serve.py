"""`pump-emulator serve`: one emulated pump on a virtual serial port (and MQTT) until Ctrl-C.

`add_parser` declares the options (the pump's, then the serial, mqtt, control plane and output
groups); `options` turns them into `ServerOptions` (a malformed `--mqtt` or `--control` exits 2
with a message); `serve` opens the `EmulatorServer` (exit 2 if its memory, keys or scenario
cannot be loaded), prints the banner (`banner`: port, key files, topics, control URL and token),
writes the same facts as JSON to `--ready-file`, and runs until SIGINT or SIGTERM (exit 0) or a
failed task (exit 1). The pump's memory lives in `--state-dir`, by default one directory per
serial under $XDG_STATE_HOME/itp-emulator (`default_state_dir`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

import firmware_model as fm
import protocol as p

from ._cli_common import (
    CATHETER_NL_PER_CM,
    PROFILES,
    catheter_cm,
    catheter_ul_per_cm,
    control_address,
    serial_number,
    speed_milli,
    stop_on_signals,
    write_ready_file,
    zone_name,
)
from ._keys import KeyFileError
from ._mqtt import MqttSettings, topics
from ._scenario import ScenarioError, load_scenario
from ._serial import PortError
from ._server import EmulatorServer, ServerOptions
from ._store import StoreError
from ._trace import DEFAULT_MAX_BYTES as DEFAULT_TRACE_MAX_BYTES
from ._trace import MIN_MAX_BYTES


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser(
        "serve",
        help="run one emulated pump on a virtual serial port (and MQTT) until Ctrl-C",
        description="Run one emulated pump. With no options: a SynchroMed II 20 mL pump on a "
        "new pseudo-terminal, at real time, its state kept in ~/.local/state/itp-emulator.",
    )
    s.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        help="pump model (default: synchromed-ii-20, or the stored pump's)",
    )
    s.add_argument("--pump-serial", type=serial_number, help="pump serial number (default 1234)")
    s.add_argument(
        "--catheter-cm",
        type=catheter_cm,
        metavar="CM",
        help="implanted catheter length of a new pump, 1 .. 200 cm (default 85: a 110 cm "
        "catheter trimmed by 25 cm); the pump reports its volume (CATHETER_INFO)",
    )
    s.add_argument(
        "--catheter-ul-per-cm",
        type=catheter_ul_per_cm,
        default=CATHETER_NL_PER_CM,
        metavar="UL",
        help="the catheter's internal volume per cm, uL (default 2.6: Prometra catheter)",
    )
    s.add_argument(
        "--zone",
        type=zone_name,
        metavar="NAME",
        help="the clinic's IANA time zone of a new pump (e.g. America/New_York), with its "
        "offset now; a stored pump keeps its own (naming another is refused: sync it with "
        "pump-programmer clock --sync)",
    )
    s.add_argument("--state-dir", type=Path, help="where the pump's memory and keys live")
    s.add_argument(
        "--scenario",
        metavar="FILE_OR_NAME",
        help="start from a scenario's starting state (replaces the stored pump)",
    )
    s.add_argument(
        "--speed",
        type=speed_milli,
        default=1000,
        metavar="FACTOR",
        help="pump time runs FACTOR times real time (default 1; 0 pauses)",
    )
    g = s.add_argument_group("serial")
    g.add_argument("--link", type=Path, help="also create a stable symlink to the pty here")
    g.add_argument(
        "--port",
        metavar="DEVICE_OR_URL",
        help="serve on this serial device or pyserial URL instead of a new pty",
    )
    g.add_argument(
        "--baud",
        type=int,
        help="pace the pump's output like a real line of this "
        "speed (a pty ignores baud rates); the port's rate with --port",
    )
    g.add_argument("--no-serial", action="store_true", help="no serial port (MQTT only)")
    m = s.add_argument_group("mqtt")
    m.add_argument(
        "--mqtt",
        metavar="URL",
        help="also serve on this broker: "
        "mqtt://[user[:password]@]host[:port] or mqtts://... for TLS",
    )
    m.add_argument("--mqtt-username")
    m.add_argument("--mqtt-password", help="(or the ITP_MQTT_PASSWORD environment variable)")
    m.add_argument("--mqtt-tls", action="store_true", help="use TLS (implied by mqtts://)")
    m.add_argument("--mqtt-ca", type=Path, help="CA certificate file for TLS")
    m.add_argument("--mqtt-cert", type=Path, help="client certificate file for TLS")
    m.add_argument("--mqtt-key", type=Path, help="client key file for TLS")
    m.add_argument("--mqtt-insecure", action="store_true", help="TLS without certificate checks")
    m.add_argument(
        "--beacon-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="telemetry beacon period in real seconds (0: none)",
    )
    c = s.add_argument_group("control plane")
    c.add_argument(
        "--control",
        metavar="[HOST:]PORT",
        help="serve the control plane (HTTP JSON API for trainers and tests) here; loopback "
        "unless a host is given; port 0 picks a free one. The token is printed (or set it "
        "with ITP_CONTROL_TOKEN)",
    )
    c.add_argument(
        "--console",
        action="store_true",
        help="also serve the instructor console (a live web page) on the control plane; its "
        "URL, with the token in the fragment, is printed (implies --control 0 if not given)",
    )
    o = s.add_argument_group("output")
    o.add_argument(
        "--trace",
        type=Path,
        metavar="FILE",
        help="record every frame in and out (JSON lines, replayable, 0600); repeated decode "
        "errors are summarised (one line a second per link)",
    )
    o.add_argument(
        "--trace-max-bytes",
        type=trace_max_bytes,
        default=DEFAULT_TRACE_MAX_BYTES,
        metavar="BYTES",
        help="rotate the trace to FILE.1 before it would pass this size (default 64 MiB, "
        "at least 65536; 0: never)",
    )
    o.add_argument(
        "--ready-file",
        type=Path,
        metavar="FILE",
        help="write the port, key files and topics as JSON once serving",
    )
    o.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    o.add_argument("--log-json", action="store_true", help="structured (JSON) log lines")
    s.add_argument(
        "--no-stale-recovery-log",
        action="store_true",
        help="show motor-stall recoveries in the log at once (a real pump shows them "
        "only from the second interrogation after)",
    )


def trace_max_bytes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of bytes") from None
    if value != 0 and value < MIN_MAX_BYTES:
        raise argparse.ArgumentTypeError(f"must be 0 (no limit) or at least {MIN_MAX_BYTES}")
    return value


def default_state_dir(serial: int | None) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "itp-emulator" / f"pump-{serial or 1234}"


def options(args: argparse.Namespace) -> ServerOptions:
    mqtt = None
    if args.mqtt:
        password = args.mqtt_password or os.environ.get("ITP_MQTT_PASSWORD")
        try:
            mqtt = MqttSettings.from_url(
                args.mqtt,
                username=args.mqtt_username,
                password=password,
                tls=args.mqtt_tls,
                ca_file=args.mqtt_ca,
                cert_file=args.mqtt_cert,
                key_file=args.mqtt_key,
                insecure=args.mqtt_insecure,
            )
        except ValueError as exc:
            print(f"pump-emulator: error: --mqtt: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    if args.zone is not None and args.scenario is not None:
        print(
            "pump-emulator: error: --zone: a scenario sets its pump's clock itself "
            "(a clock_sync step); drop --zone or --scenario",
            file=sys.stderr,
        )
        raise SystemExit(2)
    control = None
    if args.control is not None:
        try:
            control = control_address(args.control)
        except ValueError:
            print("pump-emulator: error: --control takes [HOST:]PORT", file=sys.stderr)
            raise SystemExit(2) from None
    return ServerOptions(
        scenario=args.scenario,
        control=control,
        console=args.console,
        control_token=os.environ.get("ITP_CONTROL_TOKEN") or None,
        profile=PROFILES[args.profile] if args.profile else None,
        serial=args.pump_serial,
        catheter_volume_nl=(
            None if args.catheter_cm is None else args.catheter_cm * args.catheter_ul_per_cm
        ),
        zone=args.zone,
        speed_milli=args.speed,
        pty=not args.no_serial,
        port=args.port,
        link=args.link,
        baud=args.baud,
        mqtt=mqtt,
        beacon_interval_s=args.beacon_interval,
        trace=args.trace,
        trace_max_bytes=args.trace_max_bytes,
        stale_recovery_log=not args.no_stale_recovery_log,
    )


def served_serial(args: argparse.Namespace) -> int | None:
    """The serial `serve` is asked for: `--pump-serial`, else the serial a `--scenario` names
    in its `[pump]` table (a replacement pump with a new serial), else None (the stored
    pump's, or 1234 for a new one)."""
    if args.pump_serial is not None or args.scenario is None:
        return int(args.pump_serial) if args.pump_serial is not None else None
    scenario = load_scenario(args.scenario)
    return scenario.serial if scenario.serial_named else None


async def serve(args: argparse.Namespace) -> int:
    try:
        state_dir = args.state_dir or default_state_dir(served_serial(args))
        server = EmulatorServer(state_dir, options(args))
        await server.__aenter__()
    except (StoreError, KeyFileError, fm.SnapshotError, ScenarioError, PortError) as exc:
        print(f"pump-emulator: error: {exc}", file=sys.stderr)
        return 2
    stop = stop_on_signals()
    try:
        pump = server.device.pump
        info = {
            "pump_serial": pump.serial,
            "profile": pump.profile.name,
            "zone": pump.status().zone,
            "utc_offset_ms": pump.status().utc_offset_ms,
            "speed_factor": server.device.clock.speed_milli / 1000,
            "port": server.port_path or (args.port if args.port else None),
            "link": str(args.link) if args.link else None,
            "key_files": {r.name.lower(): str(f) for r, f in server.key_files.items()},
            "state": str(state_dir),
            "mqtt": f"{args.mqtt}" if args.mqtt else None,
            "mqtt_topics": topics(pump.serial) if args.mqtt else None,
            "trace": str(args.trace) if args.trace else None,
            "control": (server.control.url if server.control else None),
            "control_token": server.control.token if server.control else None,
            "console": server.control.console_url if args.console and server.control else None,
            "pid": os.getpid(),
        }
        banner(info)
        if args.ready_file:
            write_ready_file(args.ready_file, info)
        waiter = asyncio.create_task(stop.wait())
        closed = asyncio.create_task(server.wait_closed())
        while not stop.is_set():
            await asyncio.wait({waiter, closed}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            failure = server.failed_task()
            if failure is not None:
                logging.getLogger("emulator").error("stopping: %r", failure)
                break
        waiter.cancel()
        closed.cancel()
    finally:
        await server.aclose()
    print("pump-emulator: stopped; the pump's state is saved in", state_dir, flush=True)
    return 1 if server.failed_task() else 0


def banner(info: dict[str, object]) -> None:
    speed = info["speed_factor"]
    print(f"pump {info['pump_serial']} ({info['profile']}), time x{speed:g}")
    if info["port"]:
        print(f"serial port:   {info['port']}   (pyserial URL: {info['port']})")
        print(f"  connect:     serial://{info['port']}")
    if info["link"]:
        print(f"  link:        {info['link']}")
    keys = info["key_files"]
    assert isinstance(keys, dict)
    print(f"clinician key: {keys['clinician']}")
    print(f"patient key:   {keys['patient']}")
    if info["mqtt"]:
        print(f"mqtt:          {info['mqtt']}  topics itp/v1/{info['pump_serial']}/...")
    print(f"state:         {info['state']}")
    offset = info.get("utc_offset_ms")
    if info.get("zone") is not None and isinstance(offset, int):
        print(f"clinic clock:  {info['zone']} ({p.offset_hhmm(offset)})")
    if info["trace"]:
        print(f"trace:         {info['trace']}")
    if info["control"]:
        print(f"control:       {info['control']}  token {info['control_token']}")
    if info.get("console"):
        print(f"console:       {info['console']}")
    print("serving; Ctrl-C to stop", flush=True)
