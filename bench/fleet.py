"""Fleet mode under load: N emulated pumps beaconing at 1 Hz from one process on one MQTT link.

For each fleet size N (default 100, 1000 and 5000 pumps) `pump-emulator fleet --count N` runs
against a private mosquitto (one broker for the whole run, `emulator.testing.Broker`); every
pump publishes a TELEMETRY_BEACON each second on `itp/v1/<serial>/telemetry` (QoS 0), the pumps
spread evenly over the second. After its ready file appears the fleet warms up (2 s), then over
a measuring window (10 s; --quick 3 s) the bench takes:

1. CPU share    (utime + stime) of the fleet process over the window, from /proc/<pid>/stat,
                divided by the wall time: 1.0 is one full core (all its threads together).
2. memory       VmRSS (/proc/<pid>/status) at the end of the window; per pump (RSS / N, which
                includes the interpreter's own ~35 MB, so it is inflated at small N) and
                the marginal per pump between consecutive sizes (the better number).
3. delivery     a subscriber in a separate process (`python -c`, aiomqtt, TCP_NODELAY, QoS 0 on
                `itp/v1/+/telemetry`) decodes each payload (`FrameDecoder().feed`, `.decode()`
                to a TelemetryBeacon) and takes receive wall time (ms) - `pump_time_ms`: the
                delivery latency publish -> broker -> subscriber (at speed 1 the pump clock is
                the wall clock). Beacons received in the window / window = delivered per s
                (expected: N). Also shown skew-corrected (see below).
4. scheduling   the fleet's own lateness of each beacon's publish behind its schedule, p50/p99
                from its stats file written on SIGTERM. It covers the fleet's whole life
                (warm-up and the first second included), not only the window.

"beacon lateness p99" is reported as scheduling p99 and delivery p99 side by side; their sum is
an upper bound of the p99 of schedule -> subscriber. Target: 1,000 pumps at 1 Hz on one core
(CPU share < 1.0) with that bound under 100 ms, printed as PASS or MISS.

Clock skew: each pump's clock is anchored at the fleet's start time but starts counting when
that pump is built, so pump k's clock lags the wall clock by the time it took to build pumps
0..k-1 (0.1 to 0.15 ms per pump here). Raw delivery latency includes that lag. The skew-corrected
latency subtracts each pump's own lag estimate, its smallest latency in the window minus the
smallest of all pumps (this assumes every pump got at least one beacon through at the best
delivery time seen). The verdict is printed for both.

Baseline, same run and broker: one separate process publishing 32-byte messages at QoS 0 with
sequential `await client.publish(...)` for 2 s (--quick 1 s), while a separate subscriber
counts what arrives. Printed: publishes per second (and deliveries per second), and the ratio of
fleet beacons delivered per second at the largest N to that raw publish rate.

Run (from the repository root):

    .venv/bin/python bench/fleet.py              # N = 100, 1000, 5000; 10 s windows (~45 s)
    .venv/bin/python bench/fleet.py --quick      # N = 50, 200; 3 s windows (smoke test)
    .venv/bin/python bench/fleet.py --json       # the tables, then the results as JSON

Targets are reported, never enforced: the script exits 0 whatever the numbers (1 only if
something could not be measured). Needs `/usr/sbin/mosquitto`. Everything the bench starts
(fleet, subscribers, publisher, broker) shares this machine's CPUs, so on a small machine the
subscriber's and the broker's CPU use (shown below the table) compete with the fleet's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for emulator.testing

from emulator.testing import Broker

REPO = Path(__file__).resolve().parent.parent
COUNTS = (100, 1000, 5000)
QUICK_COUNTS = (50, 200)
WINDOW_S, QUICK_WINDOW_S = 10.0, 3.0
WARMUP_S = 2.0
RAW_S, QUICK_RAW_S = 2.0, 1.0
RAW_PAYLOAD = 32
TELEMETRY = "itp/v1/+/telemetry"
RAW_TOPIC = "bench/raw"
READY_TIMEOUT_S = 60.0
TARGET_PUMPS = 1000
TARGET_CPU = 1.0
TARGET_P99_MS = 100.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The subscriber (`python -c`, cwd = the repository, so `protocol` imports). It subscribes, says
# "ready", reads one line "START END" (time.monotonic() values; CLOCK_MONOTONIC is system-wide on
# Linux, so they mean the same in both processes) and counts what it receives in [START, END).
# Mode "beacons": decode every payload, keep (serial, receive wall ms - pump_time_ms).
# Mode "raw": count, and keep the first and last receive times.
SUBSCRIBER = """
import asyncio, json, socket, sys, threading, time
import aiomqtt
import protocol as p

host, port, topic, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
st = {"start": float("inf"), "end": float("-inf"), "received": 0, "bad": 0,
      "first": None, "last": None}
samples = []

async def consume(c):
    beacon_id = p.TelemetryBeacon.MSG_ID
    async for m in c.messages:
        wall = time.time() * 1000.0
        mono = time.monotonic()
        if mode == "beacons":
            frames = [f for f in p.FrameDecoder().feed(m.payload) if isinstance(f, p.Frame)]
            msg = frames[0].decode() if len(frames) == 1 else None
            if not st["start"] <= mono < st["end"]:
                continue
            if frames and frames[0].msg_id == beacon_id and isinstance(msg, p.TelemetryBeacon):
                samples.append((frames[0].pump_id, round(wall - msg.pump_time_ms, 3)))
            else:
                st["bad"] += 1
        elif not st["start"] <= mono < st["end"]:
            continue
        st["received"] += 1
        if st["first"] is None:
            st["first"] = mono
        st["last"] = mono

async def main():
    loop = asyncio.get_running_loop()
    window = loop.create_future()

    def read_window():
        line = sys.stdin.readline()
        loop.call_soon_threadsafe(lambda: window.done() or window.set_result(line))

    opts = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    async with aiomqtt.Client(host, port, socket_options=opts) as c:
        await c.subscribe(topic, qos=0)
        consumer = asyncio.create_task(consume(c))
        threading.Thread(target=read_window, daemon=True).start()
        print("ready", flush=True)
        line = await asyncio.wait_for(window, 600)
        if not line.strip():
            return  # the bench went away
        st["start"], st["end"] = map(float, line.split())
        done, _ = await asyncio.wait({consumer}, timeout=max(0.0, st["end"] - time.monotonic()))
        if done:
            consumer.result()  # the connection broke: raise it
            raise RuntimeError("the subscription ended early")
        consumer.cancel()
        try:
            await consumer
        except asyncio.CancelledError:
            pass
    print(json.dumps({**st, "samples": samples}), flush=True)

asyncio.run(main())
"""

# The raw publisher: connects, says "ready", waits for "go", then publishes 32-byte messages at
# QoS 0 with sequential awaits for SECONDS and prints how many and how long.
PUBLISHER = """
import asyncio, json, socket, sys, time
import aiomqtt

host, port, topic, seconds, size = (
    sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))

async def main():
    payload = bytes(size)
    opts = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    async with aiomqtt.Client(host, port, socket_options=opts) as c:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return
        clock = time.perf_counter
        n = 0
        t0 = clock()
        end = t0 + seconds
        while clock() < end:
            await c.publish(topic, payload, qos=0)
            n += 1
        elapsed = clock() - t0
        await asyncio.sleep(0.2)  # let the last packets leave before the disconnect
    print(json.dumps({"sent": n, "elapsed_s": elapsed}), flush=True)

asyncio.run(main())
"""


class BenchError(Exception):
    """Something could not be measured (a process did not start or died, an answer was wrong)."""


# --- processes ----------------------------------------------------------------------------------


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


def stop_process(proc: subprocess.Popen[Any] | None, *, grace_s: float = 5.0) -> None:
    """SIGTERM, wait; SIGKILL if it does not go."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Child:
    """A `python -c` helper process speaking lines on stdin/stdout, stderr to a log file."""

    def __init__(self, name: str, script: str, args: Sequence[str], log: Path) -> None:
        self.name = name
        self.log = log
        self._buf = b""
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", script, *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=REPO,
                bufsize=0,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def line(self, timeout_s: float) -> str:
        """The next line it prints (read from the pipe's fd with select: bounded in time)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.name}: nothing in {timeout_s:g} s:\n{tail(self.log)}")
            readable, _, _ = select.select([fd], [], [], min(left, 0.5))
            if readable:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    code = self.proc.wait()
                    raise BenchError(f"{self.name} exited ({code}):\n{tail(self.log)}")
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def expect_ready(self, timeout_s: float = 30.0) -> None:
        line = self.line(timeout_s)
        if line.strip() != "ready":
            raise BenchError(f"{self.name} said {line!r}:\n{tail(self.log)}")

    def stop(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        stop_process(self.proc)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError as exc:
        raise BenchError(f"process {pid} is gone: {exc}") from None
    fields = stat.rpartition(")")[2].split()  # after "(comm)": state is fields[0], utime [11]
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int:
    """VmRSS of a process in kB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for process {pid}")


def sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (q in 0..100)."""
    if not values:
        return float("nan")
    rank = max(1, -(-int(q * len(values)) // 100))
    return values[min(rank, len(values)) - 1]


# --- results ------------------------------------------------------------------------------------


@dataclass
class FleetResult:
    pumps: int
    startup_s: float  # launch until the ready file
    window_s: float
    cpu_share: float
    rss_mb: float
    rss_per_pump_kb: float
    delivered: int
    delivered_per_s: float
    expected_per_s: float
    pumps_heard: int
    bad_payloads: int
    delivery_p50_ms: float
    delivery_p99_ms: float
    delivery_max_ms: float
    corrected_p50_ms: float
    corrected_p99_ms: float
    clock_skew_ms: float  # largest per-pump clock lag estimate
    sched_p50_ms: float
    sched_p99_ms: float
    sched_max_ms: float
    beacons_sent: int
    subscriber_cpu_share: float
    broker_cpu_share: float
    marginal_kb_per_pump: float | None = None
    fleet_stats: dict[str, Any] = field(default_factory=dict)

    @property
    def bound_p99_ms(self) -> float:
        return self.sched_p99_ms + self.delivery_p99_ms

    @property
    def corrected_bound_p99_ms(self) -> float:
        return self.sched_p99_ms + self.corrected_p99_ms


@dataclass
class RawResult:
    seconds: float
    published: int
    publish_per_s: float
    delivered: int
    delivered_per_s: float  # between the first and the last delivery
    publisher_cpu_share: float
    subscriber_cpu_share: float
    broker_cpu_share: float


def latency_stats(samples: list[list[float]]) -> dict[str, float]:
    """Raw and skew-corrected delivery latency from (serial, latency ms) pairs."""
    if not samples:
        raise BenchError("the subscriber received no beacon in the window")
    raw = sorted(lat for _, lat in samples)
    floor: dict[int, float] = {}
    for serial, lat in samples:
        s = int(serial)
        if lat < floor.get(s, float("inf")):
            floor[s] = lat
    best = min(floor.values())
    corrected = sorted(lat - (floor[int(serial)] - best) for serial, lat in samples)
    return {
        "delivery_p50_ms": pct(raw, 50),
        "delivery_p99_ms": pct(raw, 99),
        "delivery_max_ms": raw[-1],
        "corrected_p50_ms": pct(corrected, 50),
        "corrected_p99_ms": pct(corrected, 99),
        "clock_skew_ms": max(floor.values()) - best,
        "pumps_heard": len(floor),
    }


# --- measurements -------------------------------------------------------------------------------


def wait_ready(proc: subprocess.Popen[bytes], ready: Path, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready.exists():
        if proc.poll() is not None:
            raise BenchError(f"the fleet exited ({proc.returncode}):\n{tail(log)}")
        if time.monotonic() > deadline:
            raise BenchError(
                f"the fleet wrote no ready file in {READY_TIMEOUT_S:g} s:\n{tail(log)}"
            )
        time.sleep(0.01)
    info: dict[str, Any] = json.loads(ready.read_text())
    return info


def run_fleet(n: int, broker: Broker, work: Path, warmup_s: float, window_s: float) -> FleetResult:
    d = work / f"fleet-{n}"
    d.mkdir()
    ready, stats_file, log = d / "ready.json", d / "stats.json", d / "fleet.log"
    broker_pid = broker.proc.pid if broker.proc is not None else None
    cmd = [sys.executable, "-m", "emulator.cli", "fleet", "--count", str(n)]
    cmd += ["--mqtt", broker.url, "--ready-file", str(ready), "--stats-file", str(stats_file)]
    cmd += ["--beacon-interval", "1", "--log-level", "warning"]
    fleet: subprocess.Popen[bytes] | None = None
    sub: Child | None = None
    try:
        launched = time.monotonic()
        with log.open("wb") as out:
            fleet = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
            )
        sub = Child(
            f"subscriber (N={n})",
            SUBSCRIBER,
            [broker.host, str(broker.port), TELEMETRY, "beacons"],
            d / "subscriber.log",
        )
        info = wait_ready(fleet, ready, log)
        t_ready = time.monotonic()
        if info.get("pumps") != n:
            raise BenchError(f"the fleet serves {info.get('pumps')} pumps, not {n}")
        pid = int(info["pid"])
        if pid != fleet.pid:
            raise BenchError(f"the ready file names pid {pid}, the fleet is {fleet.pid}")
        sub.expect_ready()
        start = max(t_ready + warmup_s, time.monotonic() + 0.2)
        end = start + window_s
        sub.send(f"{start!r} {end!r}")
        sleep_until(start)
        w0 = time.monotonic()
        c0, s0 = cpu_seconds(pid), cpu_seconds(sub.pid)
        b0 = cpu_seconds(broker_pid) if broker_pid else 0.0
        sleep_until(end)
        w1 = time.monotonic()
        c1, s1 = cpu_seconds(pid), cpu_seconds(sub.pid)
        b1 = cpu_seconds(broker_pid) if broker_pid else 0.0
        rss = rss_kb(pid)
        wall = w1 - w0
        got = json.loads(sub.line(60.0))
        if fleet.poll() is not None:
            raise BenchError(f"the fleet exited ({fleet.returncode}):\n{tail(log)}")
        fleet.send_signal(signal.SIGTERM)
        try:
            code = fleet.wait(60)
        except subprocess.TimeoutExpired:
            raise BenchError(f"the fleet did not stop on SIGTERM:\n{tail(log)}") from None
        if code != 0:
            raise BenchError(f"the fleet stopped with {code}:\n{tail(log)}")
        if not stats_file.exists():
            raise BenchError(f"the fleet wrote no stats file:\n{tail(log)}")
        stats = json.loads(stats_file.read_text())
        lat = latency_stats(got["samples"])
        return FleetResult(
            pumps=n,
            startup_s=t_ready - launched,
            window_s=wall,
            cpu_share=(c1 - c0) / wall,
            rss_mb=rss / 1024,
            rss_per_pump_kb=rss / n,
            delivered=int(got["received"]),
            delivered_per_s=got["received"] / window_s,
            expected_per_s=float(n),
            pumps_heard=int(lat.pop("pumps_heard")),
            bad_payloads=int(got["bad"]),
            **lat,
            sched_p50_ms=float(stats["lateness_ms_p50"]),
            sched_p99_ms=float(stats["lateness_ms_p99"]),
            sched_max_ms=float(stats["lateness_ms_max"]),
            beacons_sent=int(stats["beacons_sent"]),
            subscriber_cpu_share=(s1 - s0) / wall,
            broker_cpu_share=(b1 - b0) / wall,
            fleet_stats=stats,
        )
    finally:
        if sub is not None:
            sub.stop()
        stop_process(fleet)


def run_raw(broker: Broker, work: Path, seconds: float) -> RawResult:
    d = work / "raw"
    d.mkdir()
    broker_pid = broker.proc.pid if broker.proc is not None else None
    sub: Child | None = None
    pub: Child | None = None
    try:
        sub = Child(
            "raw subscriber",
            SUBSCRIBER,
            [broker.host, str(broker.port), RAW_TOPIC, "raw"],
            d / "subscriber.log",
        )
        pub = Child(
            "raw publisher",
            PUBLISHER,
            [broker.host, str(broker.port), RAW_TOPIC, repr(seconds), str(RAW_PAYLOAD)],
            d / "publisher.log",
        )
        sub.expect_ready()
        pub.expect_ready()
        start = time.monotonic()
        drain = 1.0  # deliveries still arriving after the publisher stopped count too
        sub.send(f"{start!r} {start + seconds + drain!r}")
        c0 = [cpu_seconds(pub.pid), cpu_seconds(sub.pid)]
        b0 = cpu_seconds(broker_pid) if broker_pid else 0.0
        pub.send("go")
        sent = json.loads(pub.line(seconds + 30))
        w1 = time.monotonic()
        c1 = [cpu_seconds(pub.pid), cpu_seconds(sub.pid)]
        b1 = cpu_seconds(broker_pid) if broker_pid else 0.0
        got = json.loads(sub.line(seconds + 30))
        wall = w1 - start
        span = (got["last"] - got["first"]) if got["first"] is not None else 0.0
        return RawResult(
            seconds=float(sent["elapsed_s"]),
            published=int(sent["sent"]),
            publish_per_s=sent["sent"] / sent["elapsed_s"],
            delivered=int(got["received"]),
            delivered_per_s=got["received"] / span if span > 0 else 0.0,
            publisher_cpu_share=(c1[0] - c0[0]) / wall,
            subscriber_cpu_share=(c1[1] - c0[1]) / wall,
            broker_cpu_share=(b1 - b0) / wall,
        )
    finally:
        for child in (pub, sub):
            if child is not None:
                child.stop()


# --- report -------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(fleets: list[FleetResult], raw: RawResult | None, notes: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    head = (
        f"{'pumps':>6} {'CPU':>6} {'RSS MB':>7} {'RSS/pump':>9} {'marginal':>9} "
        f"{'delivered/s':>12} {'expected/s':>11} {'deliv p50':>10} {'deliv p99':>10} "
        f"{'sched p99':>10}"
    )
    units = (
        f"{'':>6} {'cores':>6} {'':>7} {'KB':>9} {'KB/pump':>9} {'':>12} {'':>11} "
        f"{'ms':>10} {'ms':>10} {'ms':>10}"
    )
    print("\n" + head)
    print(units)
    print("-" * len(head))
    for r in fleets:
        marginal = "-" if r.marginal_kb_per_pump is None else f"{r.marginal_kb_per_pump:,.1f}"
        print(
            f"{r.pumps:>6,} {r.cpu_share:>6.3f} {r.rss_mb:>7.1f} {r.rss_per_pump_kb:>9,.1f} "
            f"{marginal:>9} {r.delivered_per_s:>12,.1f} {r.expected_per_s:>11,.0f} "
            f"{r.delivery_p50_ms:>10.1f} {r.delivery_p99_ms:>10.1f} {r.sched_p99_ms:>10.2f}"
        )
    if fleets:
        print(
            "\ndelivery latency against the pumps' clocks (raw) and skew-corrected; beacon "
            "lateness p99 = scheduling p99 + delivery p99 (upper bound):"
        )
        head2 = (
            f"{'pumps':>6} {'skew ms':>8} {'corr p50':>9} {'corr p99':>9} {'sched p50':>10} "
            f"{'sched max':>10} {'bound raw':>10} {'bound corr':>11} {'heard':>6} "
            f"{'sub CPU':>8} {'broker CPU':>11} {'startup s':>10}"
        )
        print(head2)
        print("-" * len(head2))
        for r in fleets:
            print(
                f"{r.pumps:>6,} {r.clock_skew_ms:>8.1f} {r.corrected_p50_ms:>9.1f} "
                f"{r.corrected_p99_ms:>9.1f} {r.sched_p50_ms:>10.2f} {r.sched_max_ms:>10.1f} "
                f"{r.bound_p99_ms:>10.1f} {r.corrected_bound_p99_ms:>11.1f} "
                f"{r.pumps_heard:>6,} {r.subscriber_cpu_share:>8.3f} "
                f"{r.broker_cpu_share:>11.3f} {r.startup_s:>10.2f}"
            )
    print()
    if raw is not None:
        print(
            f"baseline: raw aiomqtt publish, {RAW_PAYLOAD}-byte QoS 0, sequential awaits, "
            f"{raw.seconds:.1f} s: {raw.publish_per_s:,.0f} msg/s published "
            f"({raw.delivered:,} of {raw.published:,} delivered, {raw.delivered_per_s:,.0f}/s; "
            f"CPU publisher {raw.publisher_cpu_share:.2f}, subscriber "
            f"{raw.subscriber_cpu_share:.2f}, broker {raw.broker_cpu_share:.2f})"
        )
    else:
        print("baseline: not measured")
    if raw is not None and fleets and raw.publish_per_s > 0:
        big = max(fleets, key=lambda r: r.pumps)
        ratio = big.delivered_per_s / raw.publish_per_s
        summary["ratio_fleet_delivered_to_raw_publish"] = ratio
        summary["ratio_pumps"] = big.pumps
        print(
            f"fleet beacons delivered/s at N={big.pumps:,} / raw publish rate = "
            f"{big.delivered_per_s:,.0f} / {raw.publish_per_s:,.0f} = {ratio:.3f}"
        )
    target = next((r for r in fleets if r.pumps == TARGET_PUMPS), None)
    if target is None:
        print(
            f"target ({TARGET_PUMPS:,} pumps at 1 Hz on one core, p99 lateness < "
            f"{TARGET_P99_MS:g} ms): N={TARGET_PUMPS:,} not run"
        )
    else:
        cpu_ok = target.cpu_share < TARGET_CPU
        raw_ok = cpu_ok and target.bound_p99_ms < TARGET_P99_MS
        corr_ok = cpu_ok and target.corrected_bound_p99_ms < TARGET_P99_MS
        summary["target"] = {
            "pumps": TARGET_PUMPS,
            "cpu_share": target.cpu_share,
            "bound_p99_ms": target.bound_p99_ms,
            "corrected_bound_p99_ms": target.corrected_bound_p99_ms,
            "met": raw_ok,
            "met_skew_corrected": corr_ok,
        }
        print(
            f"target: {TARGET_PUMPS:,} pumps at 1 Hz on one core (CPU < {TARGET_CPU:g}) with "
            f"p99 lateness < {TARGET_P99_MS:g} ms: {verdict(raw_ok)}  (CPU "
            f"{target.cpu_share:.3f}; scheduling p99 {target.sched_p99_ms:.2f} ms + delivery "
            f"p99 {target.delivery_p99_ms:.1f} ms = {target.bound_p99_ms:.1f} ms)"
        )
        print(
            f"        the same with skew-corrected delivery: {verdict(corr_ok)}  (scheduling "
            f"p99 {target.sched_p99_ms:.2f} ms + delivery p99 {target.corrected_p99_ms:.1f} ms "
            f"= {target.corrected_bound_p99_ms:.1f} ms)"
        )
    for r in fleets:
        if r.delivered_per_s < 0.98 * r.expected_per_s:
            notes.append(
                f"N={r.pumps:,}: {r.delivered_per_s:,.0f} beacons/s delivered of "
                f"{r.expected_per_s:,.0f} expected"
            )
        if r.pumps_heard < r.pumps:
            notes.append(f"N={r.pumps:,}: only {r.pumps_heard:,} pumps heard in the window")
        if r.bad_payloads:
            notes.append(f"N={r.pumps:,}: {r.bad_payloads} payloads were not one beacon frame")
    if notes:
        print()
        for note in notes:
            print(f"note: {note}")
    return summary


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument(
        "--counts",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        help="fleet sizes, comma-separated (default 100,1000,5000; --quick 50,200)",
    )
    ap.add_argument("--window", type=float, help="measuring window, s (10; --quick 3)")
    ap.add_argument("--warmup", type=float, default=WARMUP_S, help="after ready, s (2)")
    ap.add_argument("--raw-seconds", type=float, help="raw publish baseline, s (2; --quick 1)")
    ap.add_argument("--quick", action="store_true", help="smoke test: N = 50, 200; 3 s windows")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    ap.add_argument("--no-baseline", action="store_true", help="skip the raw publish baseline")
    args = ap.parse_args(argv)
    if args.counts is None:
        args.counts = QUICK_COUNTS if args.quick else COUNTS
    if args.window is None:
        args.window = QUICK_WINDOW_S if args.quick else WINDOW_S
    if args.raw_seconds is None:
        args.raw_seconds = QUICK_RAW_S if args.quick else RAW_S
    if any(not 1 <= n <= 100_000 for n in args.counts):
        ap.error("--counts must be 1 .. 100000 each")
    if args.window <= 0 or args.warmup < 0 or args.raw_seconds <= 0:
        ap.error("--window and --raw-seconds must be > 0, --warmup >= 0")
    args.counts = tuple(sorted(set(args.counts)))
    return args


def run(
    args: argparse.Namespace, fleets: list[FleetResult], raws: list[RawResult], work: Path
) -> None:
    broker = Broker(work)
    try:
        broker.start()
        print(f"broker: mosquitto on {broker.url}")
        if not args.no_baseline:
            raws.append(run_raw(broker, work, args.raw_seconds))
            print(f"  raw baseline: {raws[0].publish_per_s:,.0f} publishes/s", flush=True)
        for n in args.counts:
            r = run_fleet(n, broker, work, args.warmup, args.window)
            if fleets:
                prev = fleets[-1]
                r.marginal_kb_per_pump = (r.rss_mb - prev.rss_mb) * 1024 / (n - prev.pumps)
            fleets.append(r)
            print(
                f"  N={n:,}: CPU {r.cpu_share:.3f}, {r.delivered_per_s:,.0f} beacons/s, "
                f"delivery p99 {r.delivery_p99_ms:.1f} ms",
                flush=True,
            )
    finally:
        broker.stop()


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds the finally blocks: nothing leaks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    print("bench/fleet.py: N emulated pumps at 1 Hz in one fleet process, one MQTT connection")
    print(f"python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    print(
        f"fleet sizes {', '.join(f'{n:,}' for n in args.counts)}; warm-up {args.warmup:g} s, "
        f"window {args.window:g} s; raw baseline {args.raw_seconds:g} s"
    )
    fleets: list[FleetResult] = []
    raws: list[RawResult] = []
    notes: list[str] = []
    failed = None
    work = Path(tempfile.mkdtemp(prefix="itp-fleet-bench-"))
    try:
        run(args, fleets, raws, work)
    except (BenchError, OSError, RuntimeError, ValueError, KeyError) as exc:
        failed = f"{type(exc).__name__}: {exc}"
    except KeyboardInterrupt:
        print("\ninterrupted; subprocesses stopped, temp files removed", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = report(fleets, raws[0] if raws else None, notes)
    if args.json:
        out = []
        for r in fleets:
            d = asdict(r)
            d["bound_p99_ms"] = r.bound_p99_ms
            d["corrected_bound_p99_ms"] = r.corrected_bound_p99_ms
            out.append(d)
        print(
            json.dumps(
                {
                    "fleets": out,
                    "baseline": asdict(raws[0]) if raws else None,
                    "summary": summary,
                    "error": failed,
                },
                indent=2,
            )
        )
    if failed:
        print(f"\nFAILED: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
