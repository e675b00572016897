"""`pump-emulator ctl`: the control plane of a running emulator, from the shell.

Each action (`state`, `speed`, `pause`, `resume`, `advance`, `fault`, `reservoir`, `aspirate`,
`link`, `exercise`) is one HTTP JSON call on `--url` with the bearer `--token` (or
ITP_CONTROL_URL and ITP_CONTROL_TOKEN, as printed by `serve --control`); `_request` maps an
action and its options to that call's method, path and body (`exercise --out DIR` also writes
the grade's JSON and HTML report). Without `--serial` the first pump listed is steered. The
answer is printed as JSON; the exit code is 0 for 200, 2 for 400 or missing options, 4 when the
plane cannot be reached, 5 when the token is refused, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

import firmware_model as fm

from ._cli_common import shown_after
from ._control import UNTIL


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    rs.add_argument("ml", type=_millilitres, help="mL, e.g. 12.5")
    rs._negative_number_matcher = re.compile(r"^-\.?\d")  # "-5ml": a value, said negative
    acts.add_parser("aspirate", help="the catheter access port check (CSF / dye): its finding")
    li = acts.add_parser("link", help="impair the link (no options: a clean link)")
    li.add_argument("--drop", type=float)
    li.add_argument("--duplicate", type=float)
    li.add_argument("--corrupt", type=float)
    li.add_argument("--delay-ms", type=int)
    li.add_argument("--cut", action="store_true")
    ex = acts.add_parser("exercise", help="score the running exercise (JSON; --out: + HTML)")
    ex.add_argument("--activity", help="the web programmer's --activity file (warnings counted)")
    ex.add_argument("--out", help="write grade.json and grade.html in this directory")


def ctl(args: argparse.Namespace) -> int:
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
    if args.action == "reservoir":  # checked in mL, the unit the user typed
        status, state = call("GET", f"/v1/pumps/{serial}")
        capacity = state.get("capacity_nl") if isinstance(state, dict) else None
        if status == 200 and isinstance(capacity, int) and args.ml * fm.NL_PER_ML > capacity:
            print(
                f"pump-emulator ctl: reservoir {args.ml:g} mL is more than pump {serial} holds: "
                f"its capacity is {capacity / fm.NL_PER_ML:g} mL",
                file=sys.stderr,
            )
            return 2
    with shown_after(f"pump {serial}: {args.action}..."):  # an advance over months, a reset
        try:
            status, out = call(*_request(args, f"/v1/pumps/{serial}"))
        except ValueError as exc:  # the activity file: not JSON lines
            print(f"pump-emulator ctl: {exc}", file=sys.stderr)
            return 2
    print(json.dumps(out, indent=2))
    if args.action == "exercise" and args.out and status == 200 and isinstance(out, dict):
        from ._exercise import write_grade

        for path in write_grade(out, Path(args.out)):
            print(f"wrote {path}", file=sys.stderr)
    return 0 if status == 200 else (2 if status == 400 else 1)


def _millilitres(text: str) -> float:
    try:
        value = float(text.strip().lower().removesuffix("ml"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a volume in mL") from None
    if not value >= 0:  # also NaN
        raise argparse.ArgumentTypeError(f"{text!r}: a volume cannot be negative")
    return value


def _request(args: argparse.Namespace, base: str) -> tuple[str, str, object]:
    """The call an action makes on pump `base`: method, path and JSON body (None: no body)."""
    a = args.action
    if a == "state":
        return "GET", base, None
    if a == "speed":
        return "PUT", base + "/speed", {"factor": args.factor}
    if a in ("pause", "resume"):
        return "POST", f"{base}/{a}", None
    if a == "advance":
        if args.until:
            return "POST", base + "/advance", {"until": args.until}
        ms = round((args.days or 0) * fm.DAY_MS + (args.hours or 0) * fm.MS_PER_HOUR)
        return "POST", base + "/advance", {"ms": ms}
    if a == "fault":
        if args.clear:
            return "DELETE", f"{base}/faults/{args.kind}", None
        params: dict[str, object] = {"kind": args.kind.upper()}
        for item in args.param or []:
            key, _, value = item.partition("=")
            params[key] = int(value)
        return "POST", base + "/faults", params
    if a == "reservoir":
        return "PUT", base + "/reservoir", {"true_volume_nl": round(args.ml * 1e6)}
    if a == "aspirate":
        return "POST", base + "/catheter/aspirate", None
    if a == "exercise":
        if not args.activity:
            return "GET", base + "/exercise", None
        from ._exercise import read_activity

        try:
            activity = read_activity(Path(args.activity))
        except OSError as exc:
            raise ValueError(f"cannot read {args.activity}: {exc.strerror}") from None
        return "POST", base + "/exercise", {"activity": activity}
    impairment: dict[str, object] = {}  # link
    for key in ("drop", "duplicate", "corrupt"):
        if getattr(args, key) is not None:
            impairment[key] = getattr(args, key)
    if args.delay_ms is not None:
        impairment["delay_ms"] = args.delay_ms
    if args.cut:
        impairment["cut"] = True
    return "PUT", base + "/link", impairment
