"""`pump-emulator`: the emulator's command line.

`serve` runs one emulated pump on a virtual serial port (and MQTT) until Ctrl-C, with
`--console` an instructor's web page of it (docs/console.md). `demo` shows protocol v1 at work
in memory: a handshake, a sealed command, and the pump refusing a replay and a forgery, with
every frame printed in hex.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import sys
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import firmware_model as fm
import protocol as p

from ._clock import MAX_SPEED_MILLI
from ._control import UNTIL, ControlPlane
from ._fleet import Fleet
from ._keys import KeyFileError
from ._mqtt import MqttSettings, topics
from ._scenario import (
    ScenarioError,
    builtin_scenarios,
    load_scenario,
    run_scenario,
    write_report,
)
from ._server import EmulatorServer, ServerOptions
from ._store import StoreError


def _version() -> str:
    try:
        return metadata.version("intrathecal-pump-emulator")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"


def _show(direction: str, data: bytes) -> None:
    (frame,) = p.FrameDecoder().feed(data)
    assert isinstance(frame, p.Frame)
    sealed = "sealed" if frame.authenticated else "plain"
    print(f"{direction} {p.MESSAGES[frame.msg_id].NAME} ({len(data)} bytes, {sealed})")
    print(f"    {data.hex()}")


def demo(pump_id: int) -> int:
    keys = {role: p.SecretKey(secrets.token_bytes(32)) for role in p.Role}
    pump = p.PumpSecurity(pump_id, keys, secrets.token_bytes)
    host = p.HostSecurity(pump_id, p.Role.CLINICIAN, keys[p.Role.CLINICIAN], secrets.token_bytes)
    to_pump, to_host = p.FrameDecoder(), p.FrameDecoder()
    now_ms = 0

    def pump_rx(data: bytes) -> p.Inbound:
        _show("host -> pump", data)
        (frame,) = to_pump.feed(data)
        assert isinstance(frame, p.Frame)
        return pump.receive(frame, now_ms)

    def host_rx(data: bytes) -> p.HostEvent:
        _show("pump -> host", data)
        (frame,) = to_host.feed(data)
        assert isinstance(frame, p.Frame)
        return host.receive(frame)

    print(f"pump {pump_id}, clinician key {keys[p.Role.CLINICIAN]} (fresh, random)\n")
    challenge = pump_rx(host.hello(seq=1))
    assert isinstance(challenge, p.Reply)
    confirm = host_rx(challenge.data)
    assert isinstance(confirm, p.Send)
    ready = pump_rx(confirm.data)
    assert isinstance(ready, p.Reply)
    host_rx(ready.data)
    print("\nsession established; set a continuous dose of 0.5 mg/day:")
    command = p.SetContinuousDose(
        command_id=secrets.token_bytes(16),
        expected_program_version=0,
        dose_ng_per_day=500_000,
        confirm_soft_limit=False,
    )
    sealed = host.seal(command, seq=3)
    request = pump_rx(sealed)
    assert isinstance(request, p.Request)
    print(f"    pump accepted: {request.message}")
    ack = p.CommandAck(command.command_id, duplicate=False, program_version=1, event_seq=1)
    host_rx(pump.reply(request, ack))
    print("\nan attacker replays the captured frame:")
    replay = pump_rx(sealed)
    assert isinstance(replay, p.Rejected)
    print(f"    refused: {replay.error!r} (no reply sent)")
    print("\nan attacker edits the dose, uses a fresh counter and recomputes the CRC:")
    forged = bytearray(sealed)
    forged[18:22] = (2).to_bytes(4, "little")
    forged[42] ^= 0x40
    body = bytes(forged[:-2])
    forged_frame = body + p.frame_crc(body, p.SetContinuousDose.SEED).to_bytes(2, "little")
    forgery = pump_rx(forged_frame)
    assert isinstance(forgery, p.Rejected)
    print(f"    refused: {forgery.error!r}")
    print("\nthe protocol is documented in docs/protocol.md; `pump-emulator serve` runs a pump.")
    return 0


PROFILES = {
    "synchromed-ii-20": fm.ProfileId.SYNCHROMED_II_20,
    "synchromed-ii-40": fm.ProfileId.SYNCHROMED_II_40,
    "prometra-ii-20": fm.ProfileId.PROMETRA_II_20,
    "prometra-ii-40": fm.ProfileId.PROMETRA_II_40,
    "constant-flow": fm.ProfileId.CONSTANT_FLOW,
}


def _default_state_dir(serial: int | None) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "itp-emulator" / f"pump-{serial or 1234}"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj = {
            "t": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj)


def _setup_logging(level: str, as_json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter()
        if as_json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _speed_milli(text: str) -> int:
    try:
        value = round(float(text) * 1000)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= MAX_SPEED_MILLI:
        raise argparse.ArgumentTypeError(f"the speed factor must be 0 .. {MAX_SPEED_MILLI // 1000}")
    return value


def _serial_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < p.BROADCAST_PUMP_ID:
        raise argparse.ArgumentTypeError("the pump serial number must be 1 .. 4294967294")
    return value


def _options(args: argparse.Namespace) -> ServerOptions:
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
    control = None
    if args.control is not None:
        host, _, port = args.control.rpartition(":")
        try:
            control = (host or "127.0.0.1", int(port))
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
        speed_milli=args.speed,
        pty=not args.no_serial,
        port=args.port,
        link=args.link,
        baud=args.baud,
        mqtt=mqtt,
        beacon_interval_s=args.beacon_interval,
        trace=args.trace,
        stale_recovery_log=not args.no_stale_recovery_log,
    )


async def _serve(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or _default_state_dir(args.pump_serial)
    server = EmulatorServer(state_dir, _options(args))
    try:
        await server.__aenter__()
    except (StoreError, KeyFileError, fm.SnapshotError, ScenarioError) as exc:
        print(f"pump-emulator: error: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        pump = server.device.pump
        info = {
            "pump_serial": pump.serial,
            "profile": pump.profile.name,
            "speed_factor": server.device.clock.speed_milli / 1000,
            "port": server.port_path or (args.port if args.port else None),
            "link": str(args.link) if args.link else None,
            "key_files": {r.name.lower(): str(f) for r, f in server.key_files.items()},
            "state": str(state_dir),
            "mqtt": f"{args.mqtt}" if args.mqtt else None,
            "mqtt_topics": topics(pump.serial) if args.mqtt else None,
            "trace": str(args.trace) if args.trace else None,
            "control": (
                f"http://{server.control.address[0]}:{server.control.address[1]}"
                if server.control
                else None
            ),
            "control_token": server.control.token if server.control else None,
            "console": server.control.console_url if args.console and server.control else None,
            "pid": os.getpid(),
        }
        _banner(info)
        if args.ready_file:
            tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
            tmp.write_text(json.dumps(info))
            tmp.replace(args.ready_file)
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


def _banner(info: dict[str, object]) -> None:
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
    if info["trace"]:
        print(f"trace:         {info['trace']}")
    if info["control"]:
        print(f"control:       {info['control']}  token {info['control_token']}")
    if info.get("console"):
        print(f"console:       {info['console']}")
    print("serving; Ctrl-C to stop", flush=True)


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    s.add_argument("--pump-serial", type=_serial_number, help="pump serial number (default 1234)")
    s.add_argument("--state-dir", type=Path, help="where the pump's memory and keys live")
    s.add_argument(
        "--scenario",
        metavar="FILE_OR_NAME",
        help="start from a scenario's starting state (replaces the stored pump)",
    )
    s.add_argument(
        "--speed",
        type=_speed_milli,
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
        help="record every frame in and out (JSON lines, replayable)",
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


def _ctl(args: argparse.Namespace) -> int:
    """`pump-emulator ctl ...`: the control plane from the shell."""
    url = (args.url or os.environ.get("ITP_CONTROL_URL") or "").rstrip("/")
    token = args.token or os.environ.get("ITP_CONTROL_TOKEN")
    if not url or not token:
        print("pump-emulator ctl: give --url and --token (or ITP_CONTROL_URL and "
              "ITP_CONTROL_TOKEN), as printed by serve --control", file=sys.stderr)  # fmt: skip
        return 2

    def call(method: str, path: str, body: object = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    serial = args.serial
    if serial is None:
        try:
            status, pumps = call("GET", "/v1/pumps")
        except OSError as exc:
            print(f"pump-emulator ctl: cannot reach {url}: {exc}", file=sys.stderr)
            return 4
        if status != 200 or not isinstance(pumps, list) or not pumps:
            print(f"pump-emulator ctl: {pumps}", file=sys.stderr)
            return 4 if status != 401 else 5
        serial = pumps[0]["serial"]
    base = f"/v1/pumps/{serial}"
    a = args.action
    if a == "state":
        status, out = call("GET", base)
    elif a == "speed":
        status, out = call("PUT", base + "/speed", {"factor": args.factor})
    elif a in ("pause", "resume"):
        status, out = call("POST", f"{base}/{a}")
    elif a == "advance":
        if args.until:
            body: dict[str, object] = {"until": args.until}
        else:
            ms = round((args.days or 0) * fm.DAY_MS + (args.hours or 0) * fm.MS_PER_HOUR)
            body = {"ms": ms}
        status, out = call("POST", base + "/advance", body)
    elif a == "fault":
        if args.clear:
            status, out = call("DELETE", f"{base}/faults/{args.kind}")
        else:
            params: dict[str, object] = {"kind": args.kind.upper()}
            for item in args.param or []:
                key, _, value = item.partition("=")
                params[key] = int(value)
            status, out = call("POST", base + "/faults", params)
    elif a == "reservoir":
        status, out = call("PUT", base + "/reservoir", {"true_volume_nl": round(args.ml * 1e6)})
    else:  # link
        impairment: dict[str, object] = {}
        for key in ("drop", "duplicate", "corrupt"):
            if getattr(args, key) is not None:
                impairment[key] = getattr(args, key)
        if args.delay_ms is not None:
            impairment["delay_ms"] = args.delay_ms
        if args.cut:
            impairment["cut"] = True
        status, out = call("PUT", base + "/link", impairment)
    print(json.dumps(out, indent=2))
    return 0 if status == 200 else (2 if status == 400 else 1)


def _scenario(args: argparse.Namespace) -> int:
    """`pump-emulator scenario list|run`: the training scenarios, headless at full speed."""
    if args.scenario_command == "list":
        for name in builtin_scenarios():
            scn = load_scenario(name)
            print(f"{name:32} {scn.name}")
        return 0
    try:
        scn = load_scenario(args.file)
    except ScenarioError as exc:
        print(f"pump-emulator scenario: {exc}", file=sys.stderr)
        return 2

    def progress(share: float) -> None:
        if sys.stderr.isatty():
            filled = int(share * 30)
            print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {share:4.0%}", end="", file=sys.stderr)

    try:
        report = run_scenario(scn, progress=progress)
        out = args.out or Path(f"scenario-{Path(str(args.file)).stem}")
        written = write_report(report, out, plot=not args.no_plot)
    except ScenarioError as exc:
        print(f"\npump-emulator scenario: {exc}", file=sys.stderr)
        return 2
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"{scn.name}: {'PASSED' if report.passed else 'FAILED'}")
    for r in report.results:
        print(f"  [{'ok' if r['passed'] else 'FAIL'}] {r['detail']}")
    print("report: " + ", ".join(str(w) for w in written))
    return 0 if report.passed else 1


async def _fleet(args: argparse.Namespace) -> int:
    try:
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
        )
    except (ValueError, StoreError, KeyFileError) as exc:
        print(f"pump-emulator fleet: error: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await fleet.start()
    control = None
    if args.control is not None or args.console:
        host, _, port = (args.control or "0").rpartition(":")
        control = ControlPlane(
            fleet.runtimes, os.environ.get("ITP_CONTROL_TOKEN") or None, console=args.console
        )
        await control.start(host or "127.0.0.1", int(port))
    info = {
        "pid": os.getpid(),
        "pumps": args.count,
        "first_serial": args.first_serial,
        "mqtt": args.mqtt,
        "fleet_status_topic": f"itp/v1/fleet/{args.name}/status",
        "keys_dir": str(args.keys_dir) if args.keys_dir else None,
        "control": f"http://{control.address[0]}:{control.address[1]}" if control else None,
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
        tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(args.ready_file)
    await stop.wait()
    stats = fleet.stats()
    if control is not None:
        await control.close()
    await fleet.close()
    if args.stats_file:
        args.stats_file.write_text(json.dumps(stats))
    print(f"fleet {args.name}: stopped; {stats['beacons_sent']} beacons, "
          f"lateness p99 {stats['lateness_ms_p99']} ms", flush=True)  # fmt: skip
    return 0


def _add_fleet(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    f = sub.add_parser("fleet", help="run N pumps in one process on one MQTT connection")
    f.add_argument("--count", type=int, required=True, help="how many pumps")
    f.add_argument("--mqtt", required=True, metavar="URL", help="mqtt://host:port (or mqtts://)")
    f.add_argument("--mqtt-username")
    f.add_argument("--mqtt-password", help="(or ITP_MQTT_PASSWORD)")
    f.add_argument("--first-serial", type=_serial_number, default=100_000)
    f.add_argument("--profile", choices=sorted(PROFILES), default="synchromed-ii-20")
    f.add_argument("--speed", type=_speed_milli, default=1000, metavar="FACTOR")
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


def _add_scenario(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("scenario", help="run a training scenario headless (or list them)")
    acts = s.add_subparsers(dest="scenario_command", required=True)
    acts.add_parser("list", help="the built-in training scenarios")
    r = acts.add_parser("run", help="run one at full speed, check it, write its report")
    r.add_argument("file", help="a scenario TOML file or a built-in scenario's name")
    r.add_argument("--out", type=Path, help="report directory (default scenario-NAME)")
    r.add_argument("--no-plot", action="store_true", help="JSON summary only")


def _add_ctl(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("ctl", help="steer a running emulator through its control plane")
    c.add_argument("--url", help="control plane URL (or ITP_CONTROL_URL)")
    c.add_argument("--token", help="bearer token (or ITP_CONTROL_TOKEN)")
    c.add_argument("--serial", type=int, help="which pump (default: the first)")
    acts = c.add_subparsers(dest="action", required=True)
    acts.add_parser("state", help="the whole pump state as JSON")
    sp = acts.add_parser("speed", help="set the speed factor (0 pauses)")
    sp.add_argument("factor", type=float)
    acts.add_parser("pause", help="stop pump time")
    acts.add_parser("resume", help="restart pump time")
    ad = acts.add_parser("advance", help="move pump time forward")
    ad.add_argument("--days", type=float)
    ad.add_argument("--hours", type=float)
    ad.add_argument("--until", choices=list(UNTIL))
    fa = acts.add_parser("fault", help="inject (or --clear) a fault")
    fa.add_argument("kind", help="e.g. motor_stall, catheter_occlusion, pocket_fill")
    fa.add_argument("--param", action="append", help="KEY=INT, e.g. volume_nl=2000000")
    fa.add_argument("--clear", action="store_true")
    rs = acts.add_parser("reservoir", help="set the true reservoir volume, mL")
    rs.add_argument("ml", type=float)
    li = acts.add_parser("link", help="impair the link (no options: a clean link)")
    li.add_argument("--drop", type=float)
    li.add_argument("--duplicate", type=float)
    li.add_argument("--corrupt", type=float)
    li.add_argument("--delay-ms", type=int)
    li.add_argument("--cut", action="store_true")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pump-emulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_serve(sub)
    _add_ctl(sub)
    _add_scenario(sub)
    _add_fleet(sub)
    d = sub.add_parser("demo", help="walk through a protocol v1 session in memory")
    d.add_argument("--pump-serial", type=int, default=1234, help="pump serial number (pump id)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        if args.baud is not None and args.baud <= 0:
            parser.error("--baud must be > 0")
        _setup_logging(args.log_level, args.log_json)
        return asyncio.run(_serve(args))
    if args.command == "ctl":
        return _ctl(args)
    if args.command == "scenario":
        return _scenario(args)
    if args.command == "fleet":
        _setup_logging(args.log_level, False)
        return asyncio.run(_fleet(args))
    if args.command == "demo":
        if not 0 < args.pump_serial < p.BROADCAST_PUMP_ID:
            parser.error("--pump-serial must be 1..4294967294")
        return demo(args.pump_serial)
    return 2  # pragma: no cover - argparse enforces the choices


if __name__ == "__main__":
    sys.exit(main())
