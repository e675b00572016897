"""A fleet: N emulated pumps in one process, one event loop and one MQTT connection.

Each pump has its own serial number, role keys, model, sessions, clock task and telemetry; an
idle pump's clock task sleeps until its model's next event, so it costs no CPU in between.
One client subscribes to `itp/v1/+/cmd` (MQTT 5, retain-as-published) and routes each frame
to its pump by the serial in the topic; one scheduler publishes every pump's beacon at its
interval, the pumps spread evenly over the interval. One connection has one last will: the
fleet's own `itp/v1/fleet/<name>/status` says `offline` when the process dies (each pump's
retained `status` says `online` while the fleet serves; it is set `offline` on a clean stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt

import firmware_model as fm
import protocol as p

from ._clock import VirtualClock, wall_ms
from ._device import PumpDevice
from ._keys import load_or_create_keys
from ._mqtt import (
    MqttSettings,
    pump_client,
    reconnecting,
    serve_command,
    subscribe_commands,
    topics,
)
from ._runtime import Runtime, open_device

log = logging.getLogger("emulator.fleet")


class Fleet:
    """N pumps, serials `first_serial`, `first_serial + 1`, ..."""

    def __init__(
        self,
        count: int,
        mqtt: MqttSettings,
        *,
        first_serial: int = 100_000,
        profile: fm.ProfileId = fm.ProfileId.SYNCHROMED_II_20,
        speed_milli: int = 1000,
        beacon_interval_s: float = 1.0,
        keys_dir: Path | None = None,
        state_dir: Path | None = None,
        name: str = "fleet",
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if not 1 <= count <= 100_000:
            raise ValueError("count must be 1 .. 100000")
        self.mqtt = mqtt
        self.name = name
        self.beacon_interval_s = beacon_interval_s
        self.runtimes: dict[int, Runtime] = {}
        for i in range(count):
            serial = first_serial + i
            # Each pump's clock starts at the wall clock of its own creation: building a big
            # fleet takes a while, and one start time for all would leave the last pumps'
            # clocks behind (found by bench/fleet.py).
            now = wall_ms()
            if state_dir is not None:  # durable pumps: one SQLite file each
                device = open_device(
                    state_dir / f"pump-{serial}", profile=profile, serial=serial,
                    speed_milli=speed_milli,
                )  # fmt: skip
            else:  # ephemeral pumps: keys on disk for programmers, state in memory
                keys = (
                    load_or_create_keys(keys_dir / f"pump-{serial}")
                    if keys_dir is not None
                    else {r: p.SecretKey(secrets.token_bytes(32)) for r in p.Role}
                )
                pump = fm.Pump.create(profile, serial=serial, now_ms=now)
                device = PumpDevice(pump, keys, clock=VirtualClock(now, speed_milli))
            self.runtimes[serial] = Runtime(device)
            if progress is not None and (i + 1 == count or (i + 1) % 100 == 0):
                progress(f"starting pumps: {i + 1} of {count}")
        if progress is not None:
            progress("")
        self.connected = asyncio.Event()
        self.connections = 0
        self._closing = False  # set by close(): no `online` may follow its `offline`s
        self.beacons_sent = 0
        self.lateness_ms: list[float] = []  # beacon publish time minus its schedule
        self._client: aiomqtt.Client | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # --- running ------------------------------------------------------------------------------

    async def start(self) -> None:
        for rt in self.runtimes.values():
            self._tasks.append(asyncio.create_task(rt.run_clock()))
        self._tasks.append(asyncio.create_task(self._mqtt_loop()))

    async def close(self) -> None:
        self._closing = True
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                # Handed to paho without awaiting each (as beacons are): awaited one by one,
                # 20,000 pumps took over a minute to stop on a busy machine. They leave in
                # order on the one connection, so the fleet's QoS 1 `offline`, awaited last,
                # is acknowledged after the broker has taken every pump's.
                for i, serial in enumerate(self.runtimes):
                    client._client.publish(topics(serial)["status"], b"offline", qos=0, retain=True)
                    if i % 256 == 255:
                        await asyncio.sleep(0)  # let the socket drain
                await client.publish(self._fleet_status, b"offline", qos=1, retain=True)
        for rt in self.runtimes.values():
            rt.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for rt in self.runtimes.values():
            rt.close()

    @property
    def _fleet_status(self) -> str:
        return f"itp/v1/fleet/{self.name}/status"

    def _on_state(self, client: aiomqtt.Client | None) -> None:
        self._client = client
        if client is None:
            self.connected.clear()

    async def _mqtt_loop(self) -> None:
        def connect() -> aiomqtt.Client:
            return pump_client(
                self.mqtt,
                f"itp-fleet-{self.name}",
                self._fleet_status,
                timeout=10,
                max_inflight_messages=1000,
            )

        await reconnecting(connect, self._serve, self._on_state, "fleet mqtt")

    async def _serve(self, client: aiomqtt.Client) -> None:
        client.pending_calls_threshold = 10_000
        await subscribe_commands(client, "itp/v1/+/cmd")
        # close() may run meanwhile: an `online` queued after its `offline`s would stick
        if not self._closing:
            await client.publish(self._fleet_status, b"online", qos=1, retain=True)
        for serial in self.runtimes:
            if self._closing:
                break
            await client.publish(topics(serial)["status"], b"online", qos=0, retain=True)
        self.connections += 1
        self.connected.set()
        beacons = asyncio.create_task(self._beacons(client))
        try:
            async for message in client.messages:
                parts = str(message.topic).split("/")
                try:
                    rt = self.runtimes[int(parts[2])]
                except (IndexError, ValueError, KeyError):
                    continue  # another fleet's or pump's command
                await serve_command(rt, client, message, "mqtt")
        finally:
            beacons.cancel()

    async def _beacons(self, client: aiomqtt.Client) -> None:
        """Every pump's beacon each interval, spread evenly over it (a heap of due times)."""
        interval = self.beacon_interval_s
        if interval <= 0:
            return
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = len(self.runtimes)
        heap = [(start + interval * i / n, serial) for i, serial in enumerate(self.runtimes)]
        heapq.heapify(heap)
        while heap:
            due, serial = heap[0]
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
                continue
            heapq.heapreplace(heap, (due + interval, serial))
            rt = self.runtimes[serial]
            frame = rt.device.beacon()
            self.lateness_ms.append((loop.time() - due) * 1000)
            if len(self.lateness_ms) > 1_000_000:
                del self.lateness_ms[:500_000]
            client._client.publish(topics(serial)["telemetry"], frame, qos=0)
            self.beacons_sent += 1
            if self.beacons_sent % 64 == 0:
                await asyncio.sleep(0)  # let the network and the pumps run

    def stats(self) -> dict[str, Any]:
        late = sorted(self.lateness_ms)

        def pct(q: float) -> float:
            return round(late[min(len(late) - 1, int(q * len(late)))], 3) if late else 0.0

        return {
            "pumps": len(self.runtimes),
            "beacons_sent": self.beacons_sent,
            "lateness_ms_p50": pct(0.50),
            "lateness_ms_p99": pct(0.99),
            "lateness_ms_max": late[-1] if late else 0.0,
            "connections": self.connections,
            "time": time.time(),
        }
