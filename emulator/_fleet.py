"""A fleet: N emulated pumps in one process, one event loop and one MQTT connection.

Each pump has its own serial number, role keys, model, sessions, clock task and telemetry; an
idle pump's clock task sleeps until its model's next event, so it costs no CPU in between.
The connection is the lean `WireClient` (`_mqtt_conn.py`): it subscribes to each pump's own
`itp/v1/<serial>/cmd` (MQTT 5, retain-as-published, 500 filters a SUBSCRIBE packet), so a
command reaches only the fleet that serves its pump, and answers each command inside the read
callback. One scheduler sends every pump's beacon each interval, the pumps spread evenly over
it: every beacon due by a tick is encoded from the pump's precomputed topic bytes and the
model's few beacon fields, and they leave in one socket write. One connection has one last
will: the fleet's own `itp/v1/fleet/<name>/status` says `offline` when the process dies (each
pump's retained `status` says `online` while the fleet serves; it is set `offline` on a clean
stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt

import firmware_model as fm
import protocol as p

from . import _mqtt_wire as w
from ._clock import VirtualClock, wall_ms
from ._device import BEACON_FRAMES, PumpDevice
from ._keys import load_or_create_keys
from ._mqtt import MqttSettings, answer_command, reconnecting, wire_client
from ._mqtt_conn import WireClient
from ._mqtt_wire import Publish
from ._runtime import Runtime, open_device

log = logging.getLogger("emulator.fleet")

LINK = "mqtt"
TICK_S = 0.002  # the beacon scheduler wakes at most this often; due beacons leave together
BOOT_WAIT_MAX_S = 3.0  # connect after the pumps' self tests, but never wait longer than this


def _status(serial: int) -> str:
    return f"itp/v1/{serial}/status"


def _telemetry_head(serial: int) -> bytes:
    """A QoS 0 PUBLISH on the pump's telemetry topic after its remaining length: the topic
    and an empty property list (MQTT 5, 3.3.2); the beacon frame follows."""
    topic = f"itp/v1/{serial}/telemetry".encode()
    return len(topic).to_bytes(2, "big") + topic + b"\x00"


def _beacon_head(serial: int) -> tuple[bytes, int]:
    """Everything of a pump's beacon packet before the beacon's fields, and the frame's CRC
    register there: the PUBLISH's fixed header and `_telemetry_head`, then the frame header
    (`BEACON_FRAMES.header`). A beacon packet is this and
    `BEACON_FRAMES.tail(crc, *device.beacon_values())`."""
    head = _telemetry_head(serial)
    frame_head, crc = BEACON_FRAMES.header(serial)
    return b"\x30" + w.varint(len(head) + BEACON_FRAMES.frame_size) + head + frame_head, crc


class Lateness:
    """How late each beacon left behind its schedule: a histogram of 0.1 ms buckets up to
    10 s (later ones count in the last), so a fleet's memory does not grow with its beacons."""

    BUCKET_MS = 0.1
    BUCKETS = 100_000

    def __init__(self) -> None:
        self.counts = [0] * (self.BUCKETS + 1)
        self.total = 0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        i = int(ms * 10.0) if ms > 0 else 0
        self.counts[i if i < self.BUCKETS else self.BUCKETS] += 1
        self.total += 1
        self.max_ms = max(self.max_ms, ms)

    def percentile(self, q: float) -> float:
        """The upper edge of the bucket holding the q-quantile (ms; 0 with no beacon)."""
        if not self.total:
            return 0.0
        rank = min(self.total - 1, int(q * self.total))
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen > rank:
                return min((i + 1) * self.BUCKET_MS, self.max_ms)
        return self.max_ms  # pragma: no cover - the counts add up to total


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
        # One time base for every pump: model time = the wall clock at the fleet's start plus
        # the monotonic time since, speed applied. Each pump's clock reads the wall clock
        # however long building the others takes (20,000 pumps: seconds), and however long
        # a garbage collection pauses in the middle of one (pumps read the wall clock and
        # then the monotonic clock apart once lagged by a collection's 0.5 s).
        wall0, mono0 = wall_ms(), time.monotonic_ns()
        collecting = gc.isenabled()
        gc.disable()  # building makes only live objects: collections would cost seconds
        try:
            self._build(count, first_serial, profile, speed_milli, keys_dir, state_dir,
                        (wall0, mono0), progress)  # fmt: skip
        finally:
            if collecting:
                gc.enable()
        self.connected = asyncio.Event()
        self.connections = 0
        self._closing = False  # set by close(): no `online` may follow its `offline`s
        self.beacons_sent = 0
        self.lateness = Lateness()  # beacon publish time minus its schedule
        self._client: WireClient | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def _build(
        self,
        count: int,
        first_serial: int,
        profile: fm.ProfileId,
        speed_milli: int,
        keys_dir: Path | None,
        state_dir: Path | None,
        anchor: tuple[int, int],
        progress: Callable[[str], None] | None,
    ) -> None:
        wall0, mono0 = anchor
        for i in range(count):
            serial = first_serial + i
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
                clock = VirtualClock(wall0, speed_milli, anchor_ns=mono0)
                pump = fm.Pump.create(profile, serial=serial, now_ms=clock.now())
                device = PumpDevice(pump, keys, clock=clock)
            rt = self.runtimes[serial] = Runtime(device)
            rt.register(LINK, functools.partial(self._send_later, serial))
            if progress is not None and (i + 1 == count or (i + 1) % 100 == 0):
                progress(f"starting pumps: {i + 1} of {count}")
        if progress is not None:
            progress("")

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
                # Every pump's `offline` in one write, then the fleet's QoS 1 `offline`: they
                # leave in order on the one connection, so its PUBACK comes after the broker
                # has taken every pump's.
                with client.corked():
                    for serial in self.runtimes:
                        client.publish_nowait(_status(serial), b"offline", qos=0, retain=True)
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

    def _on_state(self, client: WireClient | None) -> None:
        self._client = client
        if client is None:
            self.connected.clear()

    def _connect(self) -> WireClient:
        return wire_client(self.mqtt, f"itp-fleet-{self.name}", self._fleet_status, timeout_s=10)

    def _booting_s(self) -> float:
        """Real seconds until the last pump's power-on self test ends (0 if all are done)."""
        waits = (
            rt.device.clock.seconds_until(rt.device.pump.self_test_ends_at)
            for rt in self.runtimes.values()
        )
        return max((w for w in waits if w is not None), default=0.0)

    async def _mqtt_loop(self) -> None:
        # Connect once every pump has finished its self test (2 s after it was made; they
        # would answer BUSY until then): 20,000 clock tasks waking at its end together cost
        # about a second of CPU, which must not fall in the first seconds of beacons.
        booting = min(self._booting_s(), BOOT_WAIT_MAX_S)  # a slowed clock: not for ever
        if booting > 0:
            await asyncio.sleep(booting + 0.1)
        await reconnecting(self._connect, self._serve, self._on_state, "fleet mqtt")

    async def _serve(self, client: WireClient) -> None:
        client.on_publish = self._command
        client.max_queued = max(client.max_queued, 4 * len(self.runtimes))
        # one filter per pump: a command reaches only the fleet process that serves its pump
        await client.subscribe_many(
            [f"itp/v1/{serial}/cmd" for serial in self.runtimes], 1, retain_as_published=True
        )
        # close() may run meanwhile: an `online` queued after its `offline`s would stick
        if not self._closing:
            await client.publish(self._fleet_status, b"online", qos=1, retain=True)
            with client.corked():
                for serial in self.runtimes:
                    client.publish_nowait(_status(serial), b"online", qos=0, retain=True)
        self.connections += 1
        self.connected.set()
        beacons = asyncio.create_task(self._beacons(client))
        try:
            await client.closed
        finally:
            beacons.cancel()

    def _command(self, message: Publish) -> None:
        """One command frame (inside the read callback, as `MqttLink._command`): answered on its
        pump's rsp topic, or, published retained, refused, logged as a replay and cleared."""
        client = self._client
        parts = message.topic.split("/")
        if client is None or len(parts) != 4 or parts[3] != "cmd" or not parts[2].isdigit():
            return
        rt = self.runtimes.get(int(parts[2]))
        if rt is None or not message.payload:
            return  # another fleet's or pump's command; empty: a retained one cleared
        answer_command(client, rt, message, LINK)

    def _send_later(self, serial: int, data: bytes) -> None:
        """An answer an impaired link held back: publish it when its time comes."""
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):  # lost with the connection
                client.publish_nowait(f"itp/v1/{serial}/rsp", data, qos=1)

    async def _beacons(self, client: WireClient) -> None:
        """Every pump's beacon each interval, pump i of n at `i/n` of it. Each tick sends all
        beacons due by then in one write. A pump's packet is its precomputed head (PUBLISH
        header, topic, frame header) and the tail `BEACON_FRAMES.tail` packs from the model's
        beacon fields when it is due (protocol/_fixed_frames.py: the generic encoder's bytes)."""
        interval = self.beacon_interval_s
        if interval <= 0:
            return
        loop = asyncio.get_running_loop()
        pumps = [(rt.device, *_beacon_head(serial)) for serial, rt in self.runtimes.items()]
        n = len(pumps)
        step = interval / n
        tail = BEACON_FRAMES.tail
        note_late = self.lateness.add
        start = loop.time()
        sent_before = self.beacons_sent
        k = 0  # beacons sent on this connection; the next is pumps[k % n], due start + k*step
        while True:
            now = loop.time()
            out = bytearray()
            first = k
            while start + k * step <= now:
                device, head, crc = pumps[k % n]
                out += head
                out += tail(crc, *device.beacon_values())
                k += 1
            if out:
                client.send_encoded(bytes(out))
                sent = loop.time() - start
                for i in range(first, k):
                    note_late((sent - i * step) * 1000.0)
                self.beacons_sent = sent_before + k
            await asyncio.sleep(max(TICK_S, start + k * step - loop.time()))

    def stats(self) -> dict[str, Any]:
        late = self.lateness
        return {
            "pumps": len(self.runtimes),
            "beacons_sent": self.beacons_sent,
            "lateness_ms_p50": round(late.percentile(0.50), 3),
            "lateness_ms_p99": round(late.percentile(0.99), 3),
            "lateness_ms_max": late.max_ms,
            "connections": self.connections,
            "time": time.time(),
        }
