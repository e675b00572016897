"""The emulator's memory (RSS) under an MQTT flood of its command topic (issue 19 item 13).

Starts a private mosquitto and `pump-emulator serve --mqtt` (as bench/roundtrip.py does), then
publishes, QoS 1 with up to 1000 in flight, `--count` unauthenticated GET_DEVICE_INFO requests
(each answered by the pump) and `--count` 600-byte garbage payloads (each dropped) on its cmd
topic, and prints the pump process's VmRSS before, after each flood and 5 s later.

Before the lean MQTT path (aiomqtt's unbounded incoming queue filled while every answer
awaited its PUBACK) 20,000 requests took RSS from 37 MB to 97 MB, the garbage to 185 MB, and it
stayed there; the pump now answers each command inside the read callback, and the answers
waiting for the broker are capped (`_mqtt_conn.MAX_QUEUED`).

    .venv/bin/python bench/mqtt_flood.py            # 20,000 of each
    .venv/bin/python bench/mqtt_flood.py --quick    # smoke test: 500 of each
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiomqtt
from _roundtrip_emulator import SERIAL, broker, emulator, state_parent

import protocol as p

WINDOW = 500


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def flood(port: int, payloads: list[bytes]) -> None:
    async with aiomqtt.Client("127.0.0.1", port, max_inflight_messages=1000) as c:
        for i in range(0, len(payloads), WINDOW):
            await asyncio.gather(
                *(c.publish(f"itp/v1/{SERIAL}/cmd", x, qos=1) for x in payloads[i : i + WINDOW])
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--count", type=int, default=20_000, help="messages per flood (20000)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 500 of each, no wait")
    ap.add_argument("--broker", default="/usr/sbin/mosquitto", help="the mosquitto binary")
    args = ap.parse_args(argv)
    count = 500 if args.quick else args.count
    logging.disable(logging.WARNING)  # aiomqtt warns of every pending publish past 10
    if not Path(args.broker).exists():
        print(f"{args.broker} not found: nothing measured")
        return 1
    print(f"bench/mqtt_flood.py: pump RSS under {count:,}-message MQTT floods\n")
    with tempfile.TemporaryDirectory(prefix="itp-flood-") as tmp:
        work = Path(tmp)
        with broker(args.broker, work) as port, emulator(state_parent(None), port) as emu:
            emu.wait_post()
            pid = emu.proc.pid
            host = p.HostSecurity(SERIAL, p.Role.CLINICIAN, emu.key, os.urandom)
            requests = [host.plain(p.GetDeviceInfo(), seq=i % 65_000) for i in range(count)]
            garbage = [os.urandom(600) for _ in range(count)]
            rows = [("at start", rss_mb(pid))]
            started = time.monotonic()
            asyncio.run(flood(port, requests))
            rows.append((f"after {count:,} answered requests", rss_mb(pid)))
            asyncio.run(flood(port, garbage))
            rows.append((f"after {count:,} garbage payloads", rss_mb(pid)))
            took = time.monotonic() - started
            if not args.quick:
                time.sleep(5)
                rows.append(("5 s later", rss_mb(pid)))
    for what, mb in rows:
        print(f"  {what:<36} {mb:8.1f} MB")
    print(f"\nfloods took {took:.1f} s; RSS grew {rows[-1][1] - rows[0][1]:+.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
