"""The helper processes of bench/fleet.py and what it reads of a process from /proc.

`SUBSCRIBER` (beacon delivery latency, or a plain count for the baseline) and `PUBLISHER` (the
raw aiomqtt publish baseline) are `python -c` scripts that share nothing with the bench;
`Child` runs one and speaks lines with it on stdin/stdout, bounded in time. `cpu_seconds` and
`rss_kb` read a process's CPU time (all its threads) and resident memory from /proc.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from _processes import BenchError, stop_process, tail

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The subscriber (`python -c`, cwd = the repository, so `protocol` and the emulator's lean MQTT 5
# client `WireClient` import: on aiomqtt it cost ~65 us a message, 1.3 cores for 20,000 beacons
# a second, and measured itself rather than the fleet). It subscribes, says
# "ready", reads one line "START END" (time.monotonic() values; CLOCK_MONOTONIC is system-wide on
# Linux, so they mean the same in both processes) and counts what it receives in [START, END).
# Mode "beacons": decode every payload, keep (serial, receive wall ms - pump_time_ms).
# Mode "raw": count, and keep the first and last receive times.
SUBSCRIBER = """
import asyncio, json, sys, threading, time
import protocol as p
from emulator._mqtt_conn import WireClient

host, port, topic, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
st = {"start": float("inf"), "end": float("-inf"), "received": 0, "bad": 0,
      "first": None, "last": None}
samples = []
beacon_id = p.TelemetryBeacon.MSG_ID

def on_publish(m):
    wall = time.time() * 1000.0
    mono = time.monotonic()
    if mode == "beacons":
        frames = [f for f in p.FrameDecoder().feed(m.payload) if isinstance(f, p.Frame)]
        msg = frames[0].decode() if len(frames) == 1 else None
        if not st["start"] <= mono < st["end"]:
            return
        if frames and frames[0].msg_id == beacon_id and isinstance(msg, p.TelemetryBeacon):
            samples.append((frames[0].pump_id, round(wall - msg.pump_time_ms, 3)))
        else:
            st["bad"] += 1
    elif not st["start"] <= mono < st["end"]:
        return
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

    async with WireClient(host, port, identifier=f"bench-sub-{time.time_ns()}",
                          will_topic="bench/subscriber/will") as c:
        c.on_publish = on_publish
        await c.subscribe(topic, 0, retain_as_published=False)
        threading.Thread(target=read_window, daemon=True).start()
        print("ready", flush=True)
        line = await asyncio.wait_for(window, 600)
        if not line.strip():
            return  # the bench went away
        st["start"], st["end"] = map(float, line.split())
        done, _ = await asyncio.wait({c.closed}, timeout=max(0.0, st["end"] - time.monotonic()))
        if done:
            c.closed.result()  # the connection broke: raise it
            raise RuntimeError("the subscription ended early")
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
