"""`pump-emulator fleet --ready-file` is written only once the fleet is connected to its broker
and subscribed to every pump's command topic: a script that waits for the file can command any
pump at once. While the broker is not there, no ready file."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import protocol as p
from emulator._mqtt_conn import WireClient
from emulator.testing import Broker

from .emulator_helpers import wait_ready

PUMPS = 600  # more than one SUBSCRIBE packet of filters (500 each)
FIRST = 910_000


def _wait_for_text(log: Path, text: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"no {text!r} in: {log.read_text()}"
        time.sleep(0.05)


async def _answer_to_an_unauthenticated_hello(broker: Broker, serial: int) -> bytes:
    """A HELLO to the last pump right after the ready file: the fleet must be subscribed to
    its `cmd` topic already (a command published before the SUBACK would be lost)."""
    got: asyncio.Queue[bytes] = asyncio.Queue()
    async with WireClient(
        broker.host, broker.port, identifier="t-ready-host", will_topic="t/ready/w"
    ) as c:
        c.on_publish = lambda m: got.put_nowait(m.payload)
        await c.subscribe(f"itp/v1/{serial}/rsp", 1, retain_as_published=True)
        sec = p.HostSecurity(serial, p.Role.CLINICIAN, p.SecretKey(bytes(32)), bytes, host_id=7)
        await c.publish(f"itp/v1/{serial}/cmd", sec.hello(seq=1), qos=1)
        async with asyncio.timeout(10):
            return await got.get()


def test_the_ready_file_waits_for_the_broker_and_the_subscriptions(tmp_path: Path) -> None:
    broker = Broker(tmp_path)  # its port is chosen, nothing listens there yet
    ready, log = tmp_path / "ready.json", tmp_path / "fleet.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", "fleet", "--count", str(PUMPS),
             "--first-serial", str(FIRST), "--mqtt", broker.url, "--ready-file", str(ready),
             "--log-level", "warning"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        # The fleet is up and has tried the broker (and failed): still no ready file.
        _wait_for_text(log, "fleet mqtt:", proc, 60)
        assert not ready.exists()
        broker.start()
        info = wait_ready(proc, ready, log, timeout_s=60)
        assert info["pumps"] == PUMPS
        answer = asyncio.run(_answer_to_an_unauthenticated_hello(broker, FIRST + PUMPS - 1))
        (frame,) = p.FrameDecoder().feed(answer)
        assert isinstance(frame, p.Frame) and frame.pump_id == FIRST + PUMPS - 1
        assert isinstance(frame.decode(), p.Challenge)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        finally:
            broker.stop()


def test_a_fleet_stopped_before_it_connects_writes_no_ready_file(tmp_path: Path) -> None:
    broker = Broker(tmp_path)  # never started
    ready, log = tmp_path / "ready.json", tmp_path / "fleet.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", "fleet", "--count", "3",
             "--mqtt", broker.url, "--ready-file", str(ready)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_for_text(log, "fleet mqtt:", proc, 60)
        proc.terminate()
        assert proc.wait(30) == 0
        assert not ready.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
