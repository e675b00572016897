"""`pump-programmer`: the programmer's command line.

Every clinical workflow against a pump (interrogate, set-dose, schedule, bolus, refill, alarms,
log, clock, suspend, resume), plus `replay TRACE` for an emulator trace and `decode HEX` for raw
frames. Readable tables by default, `--json` for scripts. Exit codes: 0 done, 2 bad input,
3 warnings not confirmed, 4 pump unreachable, 5 wrong key, 6 refused by the pump.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from importlib import metadata
from pathlib import Path
from typing import Any

import protocol as p

from . import calc
from ._change import Change
from ._cli_frames import date_text as _date
from ._cli_frames import decode, plain, replay
from ._connect import connect
from ._errors import BadInput, KeyMismatch, ProgrammerError, Refused
from ._pump import Pump
from ._zone import LocalClock, host_zone, offset_text, record_details


def _version() -> str:
    try:
        return metadata.version("intrathecal-pump-emulator")
    except metadata.PackageNotFoundError:
        return "unknown"


# --- human units at the edge ------------------------------------------------------------------

_MASS = {"ng": 1, "mcg": calc.NG_PER_MCG, "ug": calc.NG_PER_MCG, "mg": calc.NG_PER_MG}


def mass_ng(text: str) -> int:
    """'3mg', '500mcg', '0.1 mg' -> nanograms (exact; whole ng)."""
    t = text.strip().lower().replace(" ", "").removesuffix("/day").removesuffix("/d")
    for unit in sorted(_MASS, key=len, reverse=True):
        if t.endswith(unit):
            number = t[: -len(unit)]
            break
    else:
        raise argparse.ArgumentTypeError(f"{text!r}: give a unit, e.g. 3mg or 500mcg")
    return _exact(number, _MASS[unit], text)


def volume_nl(text: str) -> int:
    """'2.5' or '2.5mL' -> nanolitres."""
    t = text.strip().lower().removesuffix("ml")
    return _exact(t, calc.NL_PER_ML, text)


def minutes_ms(text: str) -> int:
    return _exact(text.strip().lower().removesuffix("min"), 60_000, text)


def _exact(number: str, scale: int, text: str) -> int:
    try:
        value = Decimal(number) * scale
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: cannot be negative")
    if value != value.to_integral_value():
        raise argparse.ArgumentTypeError(f"{text!r}: must be >= 0 and exact to the unit")
    return int(value)


def conc(text: str) -> tuple[int, p.ConcentrationUnit]:
    """'25mg/mL' or '2000mcg/mL' -> (ng/mL, display unit)."""
    t = text.strip().lower().replace(" ", "").removesuffix("/ml")
    unit = (
        p.ConcentrationUnit.MCG_PER_ML
        if t.endswith(("mcg", "ug"))
        else (p.ConcentrationUnit.MG_PER_ML)
    )
    return mass_ng(t), unit


def schedule_step(text: str) -> tuple[int, int]:
    """'07:00=600mcg' -> (420, 600000)."""
    try:
        clock, dose = text.split("=", 1)
        hours, minutes = clock.split(":")
        minute = int(hours) * 60 + int(minutes)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a step is HH:MM=DOSE, e.g. 07:00=600mcg"
        ) from None
    return minute, mass_ng(dose)


# --- output -------------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[object]], header: Sequence[str] | None = None) -> str:
    all_rows = [[str(c) for c in r] for r in ([header] if header else []) + list(rows)]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(all_rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in all_rows
    ]
    if header:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(plain(data), indent=2) if args.json else text)


# --- commands -----------------------------------------------------------------------------


async def _interrogate(pump: Pump, args: argparse.Namespace) -> int:
    snap = await pump.interrogate()
    st = snap.status
    unit = st.concentration_unit
    mass = "mcg" if unit is p.ConcentrationUnit.MCG_PER_ML else "mg"
    scale = calc.NG_PER_MCG if mass == "mcg" else calc.NG_PER_MG
    rows = [
        ("pump", f"{snap.device.model.name} serial {snap.device.serial_number}"),
        ("pump clock", f"{_date(st.pump_time_ms)} UTC (x{pump.speed_factor:g})"),
        ("drug", f"{st.drug.name} {st.concentration_ng_per_ml / scale:g} {mass}/mL"),
        ("mode", st.mode.name + (" (suspended)" if st.suspended else "")),
        ("daily dose", f"{st.daily_dose_ng / scale:g} {mass}/day"),
        ("rate", f"{st.current_rate_nl_per_day / calc.NL_PER_ML:g} mL/day"),
        (
            "reservoir",
            f"{st.reservoir_volume_nl / calc.NL_PER_ML:g} mL "
            f"(alarm at {st.low_reservoir_threshold_nl / calc.NL_PER_ML:g} mL)",
        ),
        ("low-reservoir alarm", _date(snap.low_reservoir_at_ms)),
        ("empty", _date(snap.empty_at_ms)),
        ("last refill", _date(snap.last_refill_at_ms)),
        (
            "battery",
            f"{st.battery.name} ({st.battery_remaining_permille / 10:g} %), "
            f"replacement {_date(snap.replacement_due_at_ms)}",
        ),
        ("alarms", ", ".join(str(a.alarm.name) for a in snap.alarms) or "none"),
        ("patient bolus", "enabled" if snap.patient_bolus.enabled else "disabled"),
    ]
    if snap.local_clock is not None:
        rows.insert(2, ("local time", _local(snap.local_clock)))
        warning = snap.local_clock.warning()
        if warning:
            rows.append(("WARNING", warning))
    _out(args, snap, _table(rows))
    return 0


async def _finish(change: Change, args: argparse.Namespace) -> int:
    """The Finish screen: show old and new side by side; commit only when told to."""
    if not args.json:
        print(f"{change.title}:")
        print(_table(list(change.diff), ("setting", "now", "new")))
        for w in change.warnings:
            print(f"WARNING: {w}")
    if not args.yes:
        if args.json:
            print(json.dumps({"diff": change.diff, "warnings": change.warnings}, indent=2))
        print("not sent: add --yes to send it", file=sys.stderr)
        return 0
    result = await change.commit(confirm=args.confirm)
    _out(
        args,
        result,
        f"sent: {type(result).__name__} version {getattr(result, 'program_version', '-')}",
    )
    return 0


async def _run(args: argparse.Namespace) -> int:
    connection = args.connect or os.environ.get("ITP_CONNECT")
    key = args.key or os.environ.get("ITP_KEY_FILE")
    if not connection:
        raise BadInput("give --connect (or ITP_CONNECT), e.g. serial:///dev/pts/5")
    if not key:
        raise BadInput("give --key (or ITP_KEY_FILE): the role key file")
    async with connect(
        connection,
        key=Path(key),
        role=args.role,
        journal=args.journal,
        timeout_s=args.timeout,
        progress=status_line(quiet=args.json),
    ) as pump:
        for cid, message, outcome in pump.recovered:
            print(f"journal: {message} {cid.hex()} was {outcome}", file=sys.stderr)
        return await COMMANDS[args.command](pump, args)


def status_line(*, quiet: bool) -> Callable[[str], None] | None:
    """A one-line progress display on stderr ("connecting to ...: attempt 2 of 5"), redrawn in
    place and cleared by ""; None (nothing shown) under --json or when stderr is no terminal,
    so scripts and pipes never see it."""
    if quiet or not sys.stderr.isatty():
        return None

    def show(text: str) -> None:
        sys.stderr.write(f"\r{text}\x1b[K" if text else "\r\x1b[K")
        sys.stderr.flush()

    return show


async def _set_dose(pump: Pump, args: argparse.Namespace) -> int:
    return await _finish(await pump.prepare_dose(args.dose), args)


async def _schedule(pump: Pump, args: argparse.Namespace) -> int:
    return await _finish(await pump.prepare_schedule(args.steps), args)


async def _bolus(pump: Pump, args: argparse.Namespace) -> int:
    if args.cancel:
        _out(args, await pump.cancel_bolus(), "bolus cancelled")
        return 0
    if args.dose is None:
        raise BadInput("give the bolus dose (or --cancel)")
    change = await pump.prepare_bolus(args.dose, args.duration, then_stop=args.then_stop)
    return await _finish(change, args)


async def _refill(pump: Pump, args: argparse.Namespace) -> int:
    c = args.concentration
    change = await pump.prepare_refill(
        withdrawn_nl=args.withdrawn,
        added_nl=args.added,
        drug=p.Drug[args.drug.upper()] if args.drug else None,
        conc_ng_per_ml=c[0] if c else None,
        unit=c[1] if c else None,
        low_threshold_nl=args.low_alarm,
    )
    return await _finish(change, args)


def _alarm_bits(names: list[str]) -> p.Alarm:
    bits = p.Alarm(0)
    for n in names:
        try:
            bits |= p.Alarm[n.upper()]
        except KeyError:
            known = ", ".join(str(a.name) for a in p.Alarm)
            raise BadInput(f"unknown alarm {n!r}: one of {known}") from None
    return bits


async def _alarms(pump: Pump, args: argparse.Namespace) -> int:
    if args.action == "list":
        alarms = await pump.alarms()
        rows = [
            (a.alarm.name, a.priority.name, a.state.name, _date(a.raised_at_ms)) for a in alarms
        ]
        text = _table(rows, ("alarm", "priority", "state", "raised")) if rows else "no alarms"
        _out(args, alarms, text)
    elif args.action == "ack":
        _out(args, await pump.acknowledge_alarms(_alarm_bits(args.alarm)), "acknowledged")
    elif args.action == "silence":
        ack = await pump.silence_alarms(_alarm_bits(args.alarm), args.minutes)
        _out(args, ack, "silenced")
    else:
        tone = p.Tone.SINGLE_TONE if args.single else p.Tone.TWO_TONE
        _out(args, await pump.alarm_test(tone), f"{tone.name} sounded")
    return 0


async def _log(pump: Pump, args: argparse.Namespace) -> int:
    records = [r async for r in pump.events(args.cursor)]
    details = record_details(records)  # before --last: a zone's names follow its ZONE_SET
    if args.last:
        records = records[-args.last :]
    rows = []
    for r in records:
        try:
            kind = p.EventKind(r.kind).name
        except ValueError:
            kind = str(r.kind)  # a newer pump's record kind: shown raw
        rows.append(
            (
                str(r.seq),
                _date(r.time_ms),
                kind,
                r.source.name,
                str(r.value_a),
                str(r.value_b),
                details.get(r.seq, ""),
            )
        )
    header = ("seq", "time (UTC)", "kind", "source", "a", "b", "detail")
    _out(args, records, _table(rows, header))
    return 0


async def _clock(pump: Pump, args: argparse.Namespace) -> int:
    if args.sync:
        zone = args.zone or host_zone()
        try:
            await pump.sync_clock(zone=zone)
        except Refused as exc:  # a 1.0 pump: no local time, its schedules run on UTC
            if exc.code is not p.ErrorCode.UNKNOWN_MESSAGE:
                raise
            print("warning: a 1.0 pump keeps no time zone: clock set, schedules on UTC",
                  file=sys.stderr)  # fmt: skip
            await pump.sync_clock()
    c = await pump.clock()
    local = await pump.local_clock()
    text = f"pump clock {_date(c.pump_time_ms)} UTC, x{c.speed_factor_milli / 1000:g}"
    if local is not None:
        text += f"\nlocal time {_local(local)}"
        warning = local.warning()
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    _out(args, {**plain(c), "local_clock": plain(local)} if args.json else c, text)
    return 0


def _local(c: LocalClock) -> str:
    return f"{_date(c.local_ms)} {c.zone} ({offset_text(c.utc_offset_ms)})"


async def _suspend(pump: Pump, args: argparse.Namespace) -> int:
    _out(args, await pump.suspend(), "suspended: no delivery until resume")
    return 0


async def _resume(pump: Pump, args: argparse.Namespace) -> int:
    _out(args, await pump.resume(), "resumed")
    return 0


COMMANDS = {
    "interrogate": _interrogate,
    "set-dose": _set_dose,
    "schedule": _schedule,
    "bolus": _bolus,
    "refill": _refill,
    "alarms": _alarms,
    "log": _log,
    "clock": _clock,
    "suspend": _suspend,
    "resume": _resume,
}


async def _web(args: argparse.Namespace) -> int:
    from ._web import serve
    from ._web_session import WebSession

    connection = args.connect or os.environ.get("ITP_CONNECT")
    key = args.key or os.environ.get("ITP_KEY_FILE")
    if not connection or not key:
        raise BadInput("give --connect and --key (or ITP_CONNECT and ITP_KEY_FILE)")
    if args.role != "clinician":
        raise BadInput("the web programmer is the clinician's: --role clinician")
    session = WebSession(
        connection, Path(key), journal=args.journal, timeout_s=args.timeout, activity=args.activity
    )

    def ready(url: str) -> None:
        print(f"web programmer: open {url}", flush=True)
        if session.state != "connected":
            print(f"pump-programmer: not connected yet: {session.detail}", file=sys.stderr)

    await serve(session, port=args.port, ready=ready)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pump-programmer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--connect",
        help="connection string (or ITP_CONNECT): serial:///dev/..., "
        "a pyserial URL, mqtt://host:port/<pump-serial>",
    )
    common.add_argument("--key", help="role key file (or ITP_KEY_FILE)")
    common.add_argument("--role", default="clinician", choices=["clinician", "patient"])
    common.add_argument(
        "--journal",
        type=Path,
        help="command journal (default "
        "~/.local/state/itp-programmer/journal.sqlite or ITP_JOURNAL)",
    )
    common.add_argument(
        "--timeout",
        type=float,
        help="seconds per exchange (default: from the line rate, 2 s on networks)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    change = argparse.ArgumentParser(add_help=False, parents=[common])
    change.add_argument("--yes", action="store_true", help="send the change (else only show it)")
    change.add_argument("--confirm", action="store_true", help="confirm its warnings too")
    sub.add_parser("interrogate", parents=[common], help="read everything, one table")
    s = sub.add_parser("set-dose", parents=[change], help="continuous daily dose, e.g. 3mg")
    s.add_argument("dose", type=mass_ng)
    s = sub.add_parser("schedule", parents=[change], help="steps HH:MM=DOSE, the first 00:00")
    s.add_argument("steps", type=schedule_step, nargs="+")
    s = sub.add_parser("bolus", parents=[change], help="clinician bolus (or --cancel)")
    s.add_argument("dose", type=mass_ng, nargs="?")
    s.add_argument("--minutes", dest="duration", type=minutes_ms, default=10 * 60_000)
    s.add_argument("--then-stop", action="store_true", help="single bolus, then stopped")
    s.add_argument("--cancel", action="store_true", help="cancel the running bolus")
    s = sub.add_parser("refill", parents=[change], help="record a refill (volumes in mL)")
    s.add_argument("--withdrawn", type=volume_nl, required=True)
    s.add_argument("--added", type=volume_nl, required=True)
    s.add_argument("--drug", choices=[d.name.lower() for d in p.Drug if d.value])
    s.add_argument("--concentration", type=conc, help="e.g. 25mg/mL or 2000mcg/mL")
    s.add_argument("--low-alarm", type=volume_nl, help="low-reservoir alarm volume, mL")
    a = sub.add_parser("alarms", parents=[common], help="list, ack, silence, test")
    a.add_argument("action", choices=["list", "ack", "silence", "test"])
    a.add_argument("alarm", nargs="*", help="alarm names (ack, silence)")
    a.add_argument("--minutes", type=minutes_ms, default=60 * 60_000, help="silence duration")
    a.add_argument("--single", action="store_true", help="test the single tone")
    s = sub.add_parser("log", parents=[common], help="the event log")
    s.add_argument("--cursor", type=int, default=0)
    s.add_argument("--last", type=int, help="only the last N records")
    s = sub.add_parser("clock", parents=[common], help="read (or --sync) the pump clock")
    s.add_argument("--sync", action="store_true", help="set it to this host's clock")
    s.add_argument(
        "--zone",
        metavar="NAME",
        help="with --sync: the clinic's IANA time zone (default: this host's, from TZ or "
        "/etc/localtime, else UTC)",
    )
    sub.add_parser("suspend", parents=[common], help="stop delivery until resume")
    sub.add_parser("resume", parents=[common], help="resume the program")
    w = sub.add_parser("web", parents=[common], help="the clinician programmer on a web page")
    w.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free)")
    w.add_argument("--activity", type=Path, help="append the trainee's actions here (JSON lines)")
    r = sub.add_parser("replay", help="print an emulator trace file, decoded")
    r.add_argument("trace", type=Path)
    r.add_argument("--json", action="store_true")
    d = sub.add_parser("decode", help="decode protocol v1 frames given in hex")
    d.add_argument("hex", nargs="*", help="frame bytes in hex (default: read standard input)")
    for each in sub.choices.values():
        # `set-dose -5mg`, `refill --added -5ml`: a value starting with "-" and a digit is a
        # value (the type then says it cannot be negative), never an unknown option; argparse
        # itself only takes plain numbers ("-5") so. No option of ours starts with a digit.
        each._negative_number_matcher = re.compile(r"^-\.?\d")
    return parser


def _role_message(command: str) -> str:
    """A clinician command in a patient session: say which key it needs, not which message."""
    return (
        f"{command} needs the clinician key: this was a patient session (--role patient), "
        "and the pump changed nothing. Give the clinician key with --key (or ITP_KEY_FILE) "
        "and leave out --role."
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "decode":
            code = decode(" ".join(args.hex) if args.hex else sys.stdin.read())
        elif args.command == "web":
            code = asyncio.run(_web(args))
        elif args.command == "replay":
            code = replay(args.trace, args.json)
        else:
            code = asyncio.run(_run(args))
        sys.stdout.flush()  # a reader that left shows here, not as an error at exit
        return code
    except Refused as exc:
        if exc.code is p.ErrorCode.ROLE_FORBIDDEN and getattr(args, "role", "") == "patient":
            print(f"pump-programmer: {_role_message(args.command)}", file=sys.stderr)
        else:
            print(f"pump-programmer: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyMismatch as exc:
        hint = ""
        if getattr(args, "role", "") == "clinician":  # e.g. the patient key without --role
            hint = (
                f". {args.command} needs the clinician key; a patient key opens only a patient "
                "session (--role patient), which cannot change therapy"
            )
        print(f"pump-programmer: KeyMismatch: {exc}{hint}", file=sys.stderr)
        return exc.exit_code
    except ProgrammerError as exc:
        print(f"pump-programmer: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `pump-programmer ... | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no 2nd error at exit
        return 141  # 128 + SIGPIPE, as a shell tool killed by the pipe


if __name__ == "__main__":
    sys.exit(main())
