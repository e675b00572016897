"""Scale-out on two bridged Mosquittos (issue 18 item 5): the cost of crossing the bridge.

Runs the layout of tests/test_bridged_brokers.py: broker b bridged to broker a with
Mosquitto's own bridge (`topic itp/# both 1`, `try_private`), a fleet process on each
(`--fleet-size` pumps at 1 Hz, durable), then, with the programmer library, authenticated
GET_STATUS round trips to a pump of fleet a from a programmer on broker a (same broker) and
from one on broker b (across the bridge), interleaved; the beacons of fleet a counted on both
brokers for `--seconds`; and fleet a killed (SIGKILL) and restarted: the time until its last
will (`offline`) and then `online` are seen on broker b, and whether the last acknowledged
dose survived.

    .venv/bin/python bench/bridge.py            # 1000 round trips each, 200 pumps per fleet
    .venv/bin/python bench/bridge.py --quick    # smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiomqtt

import programmer
import protocol as p
from tests.bridged import FleetProcess, retained, start_pair, wait_bridged

MG = 1_000_000


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


async def count_beacons(broker_url: tuple[str, int], serials: range, seconds: float) -> int:
    n = 0
    async with aiomqtt.Client(*broker_url) as c:
        await c.subscribe("itp/v1/+/telemetry")
        try:
            async with asyncio.timeout(seconds):
                async for m in c.messages:
                    if int(str(m.topic).split("/")[2]) in serials:
                        n += 1
        except TimeoutError:
            pass
    return n


async def echo_rtt(req: tuple[str, int], echo: tuple[str, int], n: int) -> float:
    """Median ms of a bare aiomqtt QoS 1 request/echo (TCP_NODELAY): requester on `req`,
    echo on `echo`. Across the bridge this shows what the bridge's own connection costs."""
    nd = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    async with (
        aiomqtt.Client(*echo, socket_options=nd) as e,
        aiomqtt.Client(*req, socket_options=nd) as c,
    ):
        await e.subscribe("itp/v1/bench-echo/req", qos=1)
        await c.subscribe("itp/v1/bench-echo/rsp", qos=1)

        async def serve() -> None:
            with contextlib.suppress(aiomqtt.MqttError):  # the clients' exit ends it
                async for m in e.messages:
                    await e.publish("itp/v1/bench-echo/rsp", m.payload, qos=1)

        task = asyncio.create_task(serve())
        replies = c.messages.__aiter__()
        # The bridge learns the subscriptions some time after they are made (longer on a busy
        # machine): probe until an echo comes back, then drop the probes' late echoes.
        async with asyncio.timeout(60):
            while True:
                await c.publish("itp/v1/bench-echo/req", b"probe", qos=1)
                try:
                    async with asyncio.timeout(0.5):
                        await anext(replies)
                    break
                except TimeoutError:
                    continue
        await asyncio.sleep(0.5)
        while True:
            try:
                async with asyncio.timeout(0.1):
                    await anext(replies)
            except TimeoutError:
                break
        out = []
        for i in range(n):
            t = time.perf_counter()
            await c.publish("itp/v1/bench-echo/req", str(i).encode(), qos=1)
            async with asyncio.timeout(30):  # a lost echo is an error, never a hang
                while (await anext(replies)).payload != str(i).encode():
                    pass
            out.append((time.perf_counter() - t) * 1e3)
        # The echo task may not end on cancel (aiomqtt's iterator can hold it) and awaiting
        # it must never swallow our own cancellation: wait a moment, then let the clients'
        # exit end it.
        task.cancel()
        await asyncio.wait({task}, timeout=1)
    return statistics.median(out)


async def run(work: Path, n: int, size: int, seconds: float) -> int:
    a, b = start_pair(work)
    fa = FleetProcess(a, work, "fa", 500_000, size)
    fb = FleetProcess(b, work, "fb", 600_000, size)
    try:
        await wait_bridged(a, b)
        ha, hb = (a.host, a.port), (b.host, b.port)
        echo_same = await echo_rtt(ha, ha, max(20, n // 5))
        echo_across = await echo_rtt(hb, ha, max(20, n // 5))
        fa.start()
        fb.start()
        await retained(b, "itp/v1/fleet/fa/status", b"online")
        serial = fa.first_serial
        key = fa.key(serial)
        async with (
            programmer.connect(f"{a.url}/{serial}", key=key, journal=work / "j1") as near,
            programmer.connect(f"{b.url}/{serial}", key=key, journal=work / "j2") as far,
        ):
            await near.status()  # past the power-on self test (BUSY is waited out)
            refill = await near.prepare_refill(
                withdrawn_nl=0, added_nl=20_000_000, drug=p.Drug.MORPHINE, conc_ng_per_ml=25 * MG
            )
            await refill.commit()
            times: dict[str, list[float]] = {"same broker": [], "across the bridge": []}
            for i in range(n + n // 10):
                for name, pump in (("same broker", near), ("across the bridge", far)):
                    t = time.perf_counter()
                    await pump.status()
                    if i >= n // 10:
                        times[name].append((time.perf_counter() - t) * 1e6)
            version = (await far.status()).program_version
            ack = await far.send_command(
                p.SetContinuousDose(
                    command_id=uuid.uuid4().bytes,
                    expected_program_version=version,
                    dose_ng_per_day=6_000_000,
                    confirm_soft_limit=False,
                )
            )
        on_a, on_b = await asyncio.gather(
            count_beacons((a.host, a.port), fa.serials, seconds),
            count_beacons((b.host, b.port), fa.serials, seconds),
        )
        t0 = time.monotonic()
        fa.kill()
        await retained(b, "itp/v1/fleet/fa/status", b"offline", timeout_s=60)
        t_will = time.monotonic() - t0
        fa.start()
        await retained(b, "itp/v1/fleet/fa/status", b"online", timeout_s=60)
        t_back = time.monotonic() - t0
        async with programmer.connect(f"{b.url}/{serial}", key=key, journal=work / "j2") as far:
            st = await far.status()
        kept = st.daily_dose_ng == 6_000_000 and st.program_version == ack.program_version
    finally:
        fa.stop()
        fb.stop()
        b.stop()
        a.stop()
    print(f"{'GET_STATUS round trip':<24}{'median µs':>11}{'p99 µs':>11}{'n':>7}")
    for name, xs in times.items():
        print(f"{name:<24}{statistics.median(xs):>11,.0f}{pct(xs, 0.99):>11,.0f}{len(xs):>7}")
    ratio = statistics.median(times["across the bridge"]) / statistics.median(times["same broker"])
    print(
        f"\nacross the bridge / same broker: {ratio:.2f}x (the bridge adds a broker hop each way)"
    )
    print(
        f"bare aiomqtt QoS 1 echo: {echo_same:.2f} ms on one broker, {echo_across:.2f} ms "
        f"across the bridge ({echo_across / echo_same:.1f}x)"
    )
    print(
        f"fleet a beacons in {seconds:g} s: {on_a} on broker a, {on_b} on broker b "
        f"({on_b / max(1, on_a):.1%} crossed)"
    )
    print(
        f"fleet a killed: last will seen on broker b after {t_will:.2f} s; "
        f"restarted and online there after {t_back:.2f} s"
    )
    print(f"the last acknowledged dose after the restart: {'kept' if kept else 'LOST'}")
    return 0 if kept else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=1000, help="round trips per row (1000)")
    ap.add_argument("--fleet-size", type=int, default=200, help="pumps per fleet (200)")
    ap.add_argument("--seconds", type=float, default=5.0, help="beacon count window (5)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 50 round trips, 5 pumps")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.fleet_size, args.seconds = 50, 5, 2.0
    print(
        f"bench/bridge.py: two bridged Mosquittos, {args.fleet_size} pumps per fleet, "
        f"{args.n} round trips per row\n"
    )
    with tempfile.TemporaryDirectory(prefix="itp-bridge-") as tmp:
        return asyncio.run(run(Path(tmp), args.n, args.fleet_size, args.seconds))


if __name__ == "__main__":
    raise SystemExit(main())
