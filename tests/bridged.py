"""Two Mosquittos bridged with Mosquitto's own bridge, and fleet processes on each (issue 18).

Used by tests/test_bridged_brokers.py and bench/bridge.py. Broker `b` carries a bridge
connection to broker `a` (`topic itp/# both 1`: every pump topic, both ways, QoS 1;
`try_private`, so each side knows the other is a bridge: no loops, retain flags kept). A fleet
is a `pump-emulator fleet` subprocess with its own state directory (SQLite memory per pump),
so it can be killed and started again with everything it acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from emulator.testing import Broker

from .emulator_helpers import wait_ready

REPO = Path(__file__).resolve().parent.parent


def bridge_conf(remote_port: int, name: str = "b-to-a") -> str:
    return (
        f"connection {name}\n"
        f"address 127.0.0.1:{remote_port}\n"
        "topic itp/# both 1\n"
        "try_private true\n"
        "cleansession true\n"
        "notifications false\n"
        "restart_timeout 1 5\n"
        "bridge_attempt_unsubscribe false\n"
    )


def start_pair(work: Path) -> tuple[Broker, Broker]:
    """Broker a, and broker b bridged to it; returns once a message crosses both ways."""
    (work / "a").mkdir(parents=True, exist_ok=True)
    (work / "b").mkdir(parents=True, exist_ok=True)
    a = Broker(work / "a")
    a.start()
    b = Broker(work / "b", extra_conf=bridge_conf(a.port))
    b.start()
    return a, b


async def wait_bridged(a: Broker, b: Broker, timeout_s: float = 15) -> None:
    """Until a message published on each broker arrives on the other (the bridge is up)."""
    async with asyncio.timeout(timeout_s):
        for src, dst in ((a, b), (b, a)):
            async with aiomqtt.Client(dst.host, dst.port) as sub:
                await sub.subscribe("itp/v1/bridge-probe", qos=1)
                async with aiomqtt.Client(src.host, src.port) as pub:
                    while True:
                        await pub.publish("itp/v1/bridge-probe", b"probe", qos=1)
                        try:
                            async with asyncio.timeout(0.3):
                                async for _ in sub.messages:
                                    break
                            break
                        except TimeoutError:
                            continue


async def retained(broker: Broker, topic: str, want: bytes, timeout_s: float = 15) -> None:
    """Until `topic` holds the retained `want` on `broker` (asked afresh, as a new client)."""
    async with asyncio.timeout(timeout_s):
        while True:
            async with aiomqtt.Client(broker.host, broker.port) as c:
                await c.subscribe(topic, qos=1)
                try:
                    async with asyncio.timeout(0.5):
                        async for m in c.messages:
                            if m.retain and m.payload == want:
                                return
                            break
                except TimeoutError:
                    pass
            await asyncio.sleep(0.1)


@dataclass
class FleetProcess:
    """`pump-emulator fleet` in a subprocess, durable (`--state-dir`), on one broker."""

    broker: Broker
    work: Path
    name: str
    first_serial: int
    count: int
    beacon_interval_s: float = 1.0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def serials(self) -> range:
        return range(self.first_serial, self.first_serial + self.count)

    def key(self, serial: int) -> Path:
        return self.work / self.name / "state" / f"pump-{serial}" / "clinician.key"

    def start(self, timeout_s: float = 60) -> None:
        d = self.work / self.name
        d.mkdir(parents=True, exist_ok=True)
        ready = d / "ready.json"
        ready.unlink(missing_ok=True)
        cmd = [
            sys.executable, "-m", "emulator.cli", "fleet",
            "--count", str(self.count),
            "--mqtt", self.broker.url,
            "--first-serial", str(self.first_serial),
            "--name", self.name,
            "--state-dir", str(d / "state"),
            "--beacon-interval", str(self.beacon_interval_s),
            "--ready-file", str(ready),
        ]  # fmt: skip
        with (d / "fleet.log").open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )  # fmt: skip
        wait_ready(self.proc, ready, d / "fleet.log", timeout_s)

    def kill(self) -> None:
        """SIGKILL: no clean stop, so the broker publishes the fleet's last will."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
