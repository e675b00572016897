"""The MQTT rows of bench/roundtrip.py: the aiomqtt echo floor and the emulator's round trips.

`mqtt_echo` is the floor (an aiomqtt client in a `python -c` process republishing every payload
of `bench/req` on `bench/rsp`, QoS 1, TCP_NODELAY); `mqtt_rows` runs it beside the emulator
started with `--mqtt` and times floor, status and therapy interleaved with the client of
`tests/e2e_client.py` (`Client` over `MqttTransport`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
from _processes import BenchError, stop_process, tail
from _roundtrip_emulator import (
    DOSES,
    FRAME_BYTES,
    NODELAY,
    POST_S,
    READY_TIMEOUT_S,
    REFILL,
    SERIAL,
    Emulator,
)
from _roundtrip_timing import ainterleaved

import protocol as p
from tests.e2e_client import Client, MqttTransport, PumpError

# The echo process of the floor (run with `python -c`, so it shares nothing with us).
MQTT_ECHO = """
import asyncio, socket, sys
import aiomqtt

async def main(host, port):
    opts = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    async with aiomqtt.Client(host, port, socket_options=opts) as c:
        await c.subscribe("bench/req", qos=1)
        print("ready", flush=True)
        async for m in c.messages:
            await c.publish("bench/rsp", m.payload, qos=1)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


@contextlib.asynccontextmanager
async def mqtt_echo(port: int, work: Path) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """A bare aiomqtt echo in a separate process; yields one 40-byte QoS 1 round trip."""
    log = work / "mqtt-echo.log"
    with log.open("wb") as err:
        echo = subprocess.Popen(
            [sys.executable, "-c", MQTT_ECHO, "127.0.0.1", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    try:
        assert echo.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(echo.stdout.readline), 15)
        if line.strip() != b"ready":
            raise BenchError(f"the MQTT echo did not start:\n{tail(log)}")
        async with aiomqtt.Client("127.0.0.1", port, socket_options=[NODELAY]) as c:
            await c.subscribe("bench/rsp", qos=1)
            messages = c.messages.__aiter__()
            counter = 0

            async def once() -> None:
                nonlocal counter
                counter += 1
                payload = counter.to_bytes(8, "little") + bytes(FRAME_BYTES - 8)
                await c.publish("bench/req", payload, qos=1)
                m = await anext(messages)
                if m.payload != payload:
                    raise BenchError("the MQTT echo returned another payload")

            async with asyncio.timeout(10):  # a first exchange, bounded: is the echo there?
                await once()
            yield once
    finally:
        stop_process(echo)
        if echo.stdout is not None:
            echo.stdout.close()


async def wait_online(port: int) -> None:
    """The emulator announces `online` (retained) after subscribing to its command topic."""
    async with (
        asyncio.timeout(READY_TIMEOUT_S),
        aiomqtt.Client("127.0.0.1", port, socket_options=[NODELAY]) as c,
    ):
        await c.subscribe(f"itp/v1/{SERIAL}/status", qos=1)
        async for m in c.messages:
            if m.payload == b"online":
                return


async def mqtt_rows(
    emu: Emulator, port: int, work: Path, n: int, n_therapy: int, warmup: int, rounds: int
) -> dict[str, Any]:
    async with mqtt_echo(port, work) as floor:
        await wait_online(port)
        transport = await MqttTransport("127.0.0.1", port, SERIAL).open()
        try:
            client = Client(transport, SERIAL, p.Role.CLINICIAN, emu.key)
            await client.handshake()
            await client.status()
            await asyncio.sleep(max(0.0, emu.started + POST_S - time.monotonic()))
            while True:
                try:
                    await client.command(p.RecordRefill, **REFILL)
                    break
                except PumpError as exc:
                    if exc.code is not p.ErrorCode.BUSY:
                        raise
                    await asyncio.sleep(0.05)
            await client.command(p.SetContinuousDose, dose_ng_per_day=DOSES[1])
            doses = itertools.cycle(DOSES)

            async def therapy() -> None:
                dose = next(doses)
                await client.command(p.SetContinuousDose, dose_ng_per_day=dose)

            samples = await ainterleaved(
                {
                    "mqtt floor": (floor, n, warmup),
                    "mqtt status": (client.status, n, warmup),
                    "mqtt therapy": (therapy, n_therapy, max(1, warmup // 10)),
                },
                rounds,
            )
            st = await client.status()
            if st.daily_dose_ng not in DOSES:
                raise BenchError(f"the pump's dose is {st.daily_dose_ng}")
            return samples
        finally:
            await transport.close()
