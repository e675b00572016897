"""Round-trip latency of the emulator on its two links, beside raw floors measured in the same run.

What it measures (microseconds per request/response, lower is better), six rows:

1. pty floor     a bare pseudo-terminal echo: `os.openpty()` (slave set raw at once), a separate
                 process blocking-reads the master and writes every byte back; the client
                 writes a 40-byte payload (the size of a sealed GET_STATUS) on the slave with
                 `os.write` and blocking-reads until 40 bytes came back.
2. pty status    `pump-emulator serve` in a subprocess, a clinician session on its pty, one
                 authenticated GET_STATUS per round trip: seal, write, read until the frame
                 with the same seq arrives, verify it (`HostSecurity.receive`) and decode STATUS.
                 Client: a blocking one written here on `protocol.HostSecurity` and
                 `protocol.FrameDecoder` (os.write/os.read on the pty opened raw), so the client
                 adds as little as possible.
3. pty therapy   the same session, SET_CONTINUOUS_DOSE with a fresh uuid4 command id each time
                 and the program version of the previous ack: includes the pump's durable
                 SQLite commit (WAL, synchronous=FULL, so an fsync) before it answers.
4. mqtt floor    a private mosquitto on a free loopback port; an echo client in a separate
                 process subscribes to `bench/req` and republishes each payload on `bench/rsp`;
                 the client publishes a 40-byte payload and awaits the echo (aiomqtt, QoS 1,
                 TCP_NODELAY on both clients, as the emulator uses; MQTT 3.1.1, aiomqtt's
                 default, where the emulator speaks MQTT 5: the same packets on the wire).
5. mqtt status   the emulator started with `--mqtt`; client `tests/e2e_client.py` (`Client` over
                 `MqttTransport`, asyncio + aiomqtt), GET_STATUS as in row 2.
6. mqtt therapy  SET_CONTINUOUS_DOSE as in row 3, over MQTT.

Every emulator run gets a fresh state directory (its pump is new: 2 s power-on self test, then a
refill of morphine and one dose before anything is timed); it is created on a real disk (not
tmpfs, where fsync costs nothing) and removed afterwards. The three rows of a link run side by
side (echo process and emulator both up) and are timed interleaved, as bench/codec.py does: in
`--rounds` rounds, each timing a share of every row in an order rotated each round, so drift
(CPU frequency, a neighbour's load) hits floor and emulator alike. Each row is preceded by
warm-up round trips that are not counted; this process's garbage collector is off while timing.

Run (from the repository root):

    .venv/bin/python bench/roundtrip.py            # 2000 status / 300 therapy round trips
    .venv/bin/python bench/roundtrip.py --quick    # smoke test, a few seconds
    .venv/bin/python bench/roundtrip.py --json     # the table, then the results as JSON

How to read the output: median and p99 (nearest rank; with --quick's 30 therapy round trips the
p99 is the maximum) of each series in microseconds, then the ratios of the median to the floor
of the same link: `pty status / floor` (target <= 3x, median <= 120 µs on a quiet machine),
`mqtt status / floor` (target <= 1.2x, p99 <= 1.3x) and `mqtt therapy / floor` (<= 2x), with
PASS or MISS, and the pty therapy row beside them (issue 18).
Targets are reported, never enforced: the script exits 0 whatever the numbers (1 only if
something could not be measured). The MQTT rows need `/usr/sbin/mosquitto` (or `--broker`);
`--no-mqtt` skips them.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.e2e_client

import aiomqtt
from _processes import BenchError, terminate
from _report import finish, header, print_notes, verdict
from _roundtrip_emulator import broker, emulator, fs_type, state_parent
from _roundtrip_mqtt import mqtt_rows
from _roundtrip_pty import pty_rows
from _roundtrip_timing import Series

import protocol as p
from tests.e2e_client import PumpError

PTY_STATUS_TARGET_X = 3.0  # issue 18: pty status <= 3x its floor, median <= 120 µs (quiet)
PTY_STATUS_TARGET_US = 120.0
MQTT_STATUS_TARGET_X = 1.2  # issue 18: mqtt status <= 1.2x its floor, p99 <= 1.3x,
MQTT_STATUS_P99_TARGET_X = 1.3
MQTT_THERAPY_TARGET_X = 2.0  # therapy (a durable commit included) <= 2x the floor
ROWS = ("pty floor", "pty status", "pty therapy", "mqtt floor", "mqtt status", "mqtt therapy")


# --- report -------------------------------------------------------------------------------------


def report(results: dict[str, Series], notes: list[str]) -> dict[str, Any]:
    head = (
        f"{'round trip':<14} {'median µs':>10} {'p99 µs':>10} {'min µs':>9} {'max µs':>10} {'n':>6}"
    )
    print("\n" + head + "   client")
    print("-" * (len(head) + 12))
    for row in ROWS:
        s = results.get(row)
        if s is None:
            print(f"{row:<14} {'n/a':>10}")
            continue
        print(
            f"{row:<14} {s.median_us:>10,.1f} {s.p99_us:>10,.1f} {s.min_us:>9,.1f} "
            f"{s.max_us:>10,.1f} {s.n:>6}   {s.client}"
        )
    ratios: dict[str, Any] = {}

    def ratio(name: str, num: str, den: str) -> float | None:
        if num not in results or den not in results:
            return None
        a, b = results[num], results[den]
        value = a.median_us / b.median_us
        ratios[name] = {"median": value, "p99": a.p99_us / b.p99_us}
        return value

    print("\nratios of medians (p99 ratio in brackets):")
    for link in ("pty", "mqtt"):
        status = ratio(f"{link} status / floor", f"{link} status", f"{link} floor")
        therapy = ratio(f"{link} therapy / floor", f"{link} therapy", f"{link} floor")
        extra = ratio(f"{link} therapy / status", f"{link} therapy", f"{link} status")
        if status is None:
            print(f"  {link}: not measured")
            continue
        s = results[f"{link} status"]
        if link == "pty":
            ok = status <= PTY_STATUS_TARGET_X and s.median_us <= PTY_STATUS_TARGET_US
            target = (
                f"target <= {PTY_STATUS_TARGET_X:g}x and median <= {PTY_STATUS_TARGET_US:g} µs: "
                f"{verdict(ok)}"
            )
        else:
            p99 = ratios[f"{link} status / floor"]["p99"]
            ok = status <= MQTT_STATUS_TARGET_X and p99 <= MQTT_STATUS_P99_TARGET_X
            target = (
                f"target <= {MQTT_STATUS_TARGET_X:g}x, p99 <= {MQTT_STATUS_P99_TARGET_X:g}x: "
                f"{verdict(ok)}"
            )
        ratios[f"{link} status / floor"]["target_met"] = ok
        r = ratios
        print(
            f"  {link} status / floor  = {status:6.2f}x "
            f"[{r[f'{link} status / floor']['p99']:.2f}x]  ({target})"
        )
        assert therapy is not None and extra is not None
        goal = (
            f"target <= {MQTT_THERAPY_TARGET_X:g}x: {verdict(therapy <= MQTT_THERAPY_TARGET_X)}"
            if link == "mqtt"
            else "no target"
        )
        print(
            f"  {link} therapy / floor = {therapy:6.2f}x "
            f"[{r[f'{link} therapy / floor']['p99']:.2f}x]  "
            f"(therapy / status = {extra:.2f}x; a durable SQLite commit per command, {goal})"
        )
    print_notes(notes)
    return ratios


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=2000, help="round trips per floor/status row (2000)")
    ap.add_argument("--n-therapy", type=int, default=300, help="round trips per therapy row (300)")
    ap.add_argument(
        "--warmup",
        type=int,
        default=200,
        help="untimed round trips before each floor/status series (200; therapy: a tenth)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=10,
        help="the rows of a link are timed interleaved in this many rounds (10)",
    )
    ap.add_argument("--quick", action="store_true", help="smoke test: 200 status, 30 therapy")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    ap.add_argument(
        "--state-dir",
        type=Path,
        help="where the emulator's temporary state directories go (default: the temp dir if "
        "it is on a real disk, else bench/); each is removed afterwards",
    )
    ap.add_argument("--broker", default="/usr/sbin/mosquitto", help="the mosquitto binary")
    ap.add_argument("--no-mqtt", action="store_true", help="skip the MQTT rows")
    ap.add_argument("--no-pty", action="store_true", help="skip the pty rows")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.n_therapy, args.warmup, args.rounds = 200, 30, 50, 5
    if args.n < 1 or args.n_therapy < 1 or args.warmup < 0 or args.rounds < 1:
        ap.error("--n, --n-therapy and --rounds must be >= 1, --warmup >= 0")
    return args


def run(args: argparse.Namespace, results: dict[str, Series], notes: list[str]) -> None:
    parent = state_parent(args.state_dir)
    kind = fs_type(parent)
    print(f"emulator state: fresh directories under {parent} ({kind}), removed afterwards")
    if kind in ("tmpfs", "ramfs"):
        notes.append(f"{parent} is {kind}: the therapy rows do not include a real fsync")
    n, nt, w, rounds = args.n, args.n_therapy, args.warmup, args.rounds
    clients = {
        "pty floor": "python -c echo process, blocking",
        "pty status": "blocking os.read/os.write + HostSecurity (this file)",
        "mqtt floor": "aiomqtt echo process, QoS 1",
        "mqtt status": "tests/e2e_client.py Client + MqttTransport (asyncio)",
    }
    clients["pty therapy"] = clients["pty status"]
    clients["mqtt therapy"] = clients["mqtt status"]
    if not args.no_pty:
        for row, samples in pty_rows(parent, n, nt, w, rounds).items():
            results[row] = Series.of(row, clients[row], samples)
    if args.no_mqtt:
        return
    if not Path(args.broker).exists():
        notes.append(f"{args.broker} not found: the MQTT rows are skipped")
        return
    with (
        tempfile.TemporaryDirectory(prefix="itp-bench-") as tmp,
        broker(args.broker, Path(tmp)) as port,
        emulator(parent, port) as emu,
    ):
        rows = asyncio.run(mqtt_rows(emu, port, Path(tmp), n, nt, w, rounds))
    for row, samples in rows.items():
        results[row] = Series.of(row, clients[row], samples)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, terminate)
    header("bench/roundtrip.py: emulator round trips on pty and MQTT vs raw floors")
    print(
        f"status rows: {args.n} round trips, therapy rows: {args.n_therapy}, "
        f"warm-up {args.warmup} (therapy {max(1, args.warmup // 10)}), "
        f"interleaved in {args.rounds} rounds"
    )
    results: dict[str, Series] = {}
    notes: list[str] = []
    failed = None
    try:
        run(args, results, notes)
    except (
        BenchError,
        PumpError,
        p.ProtocolError,
        TimeoutError,
        OSError,
        aiomqtt.MqttError,
    ) as exc:
        failed = f"{type(exc).__name__}: {exc}"
    except KeyboardInterrupt:
        print("\ninterrupted; subprocesses stopped, state directories removed", file=sys.stderr)
        return 130
    ratios = report(results, notes)
    doc = {"results": {k: asdict(v) for k, v in results.items()}, "ratios": ratios}
    return finish(doc if args.json else None, failed)


if __name__ == "__main__":
    sys.exit(main())
