"""One measurement of bench/fleet.py: a fleet of N pumps, or the raw publish baseline.

`run_fleet` starts `pump-emulator fleet --count N` and a beacon subscriber against the shared
broker, waits for the ready file and the warm-up, then takes over the window the fleet's CPU
share and RSS, the beacons delivered and their latency (raw and skew-corrected,
`latency_stats`), and, after SIGTERM, the fleet's own scheduling lateness from its stats file:
a `FleetResult`. `run_raw` times one sequential aiomqtt publisher beside a counting subscriber:
a `RawResult`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _fleet_children import PUBLISHER, REPO, SUBSCRIBER, Child, cpu_seconds, rss_kb
from _processes import BenchError, stop_process, tail
from _report import pct

from emulator.testing import Broker

RAW_PAYLOAD = 32
TELEMETRY = "itp/v1/+/telemetry"
RAW_TOPIC = "bench/raw"
READY_TIMEOUT_S = 60.0


def sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


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
