"""The emulator's runtime: opens a pump's memory, runs its clock, joins it to its links.

The clock task sleeps until the model's next event (or a housekeeping deadline: a session
limit, log records to write) and is woken early whenever a frame changed the program. Links
(pty, serial port, MQTT) hand received bytes to `Runtime.feed` and send what it returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import firmware_model as fm
import protocol as p

from ._clock import VirtualClock, mono_ms, wall_ms, zone_offset_ms
from ._device import ControlCode, PumpDevice
from ._keys import load_or_create_keys
from ._store import Store, StoreError
from ._trace import Trace

log = logging.getLogger("emulator")

DEFAULT_SERIAL = 1234
MAX_SLEEP_S = 3600.0
MIN_SLEEP_S = 0.001
STORE_FILE = "pump.sqlite"


def open_device(
    state_dir: Path,
    *,
    profile: fm.ProfileId | None = None,
    serial: int | None = None,
    catheter_volume_nl: int | None = None,
    zone: str | None = None,
    speed_milli: int = 1000,
    stale_recovery_log: bool = True,
    policy: p.SessionPolicy | None = None,
    wall: Callable[[], int] = wall_ms,
    monotonic_ns: Callable[[], int] = time.monotonic_ns,
    randbytes: Callable[[int], bytes] | None = None,
) -> PumpDevice:
    """The pump kept in `state_dir`, or a new one there. A stored pump resumes where it was:
    the time that passed while the emulator was down is applied at the speed it ran at.
    `catheter_volume_nl` is the implanted catheter of a new pump (default: the model's 85 cm);
    a stored pump keeps its own, and naming another one is a StoreError. `zone` (an IANA name)
    is a new pump's clinic clock, with the zone's offset at its start (logged after POWER_ON);
    a stored pump keeps the clinic clock in its memory (a programmer may have synced it), and
    naming another zone is a StoreError, checked before anything is written.

    `wall`, `monotonic_ns` and `randbytes` are injected so tests and simulations control time
    and randomness."""
    keys = load_or_create_keys(state_dir)  # makes the state directory, 0700
    store = Store(state_dir / STORE_FILE)
    try:
        saved = store.load()
        if saved is None:
            serial = DEFAULT_SERIAL if serial is None else serial
            prof = fm.ProfileId.SYNCHROMED_II_20 if profile is None else profile
            store.check_identity(serial, int(prof))
            now = wall()
            extra: dict[str, Any] = {}
            if catheter_volume_nl is not None:
                extra["catheter_volume_nl"] = catheter_volume_nl
            if zone is not None:
                extra.update(utc_offset_ms=zone_offset_ms(zone, now), zone=zone)
            pump = fm.Pump.create(prof, serial=serial, now_ms=now, **extra)
            clock = VirtualClock(now, speed_milli, monotonic_ns)
            downtime = 0
        else:
            pump = fm.restore(saved.snapshot)
            stored = fm.ProfileId(pump.profile.id)
            if serial is not None and serial != pump.serial:
                raise StoreError(
                    f"{state_dir} holds pump {pump.serial}, not {serial}: use another --state-dir"
                )
            if profile is not None and profile is not stored:
                raise StoreError(
                    f"{state_dir} holds a {stored.name} pump, not {profile.name}: "
                    "use another --state-dir"
                )
            if catheter_volume_nl is not None and catheter_volume_nl != pump.catheter_volume_nl:
                raise StoreError(
                    f"{state_dir} holds a pump with a {pump.catheter_volume_nl} nL catheter, not "
                    f"{catheter_volume_nl} nL: the catheter is set at implant (another --state-dir)"
                )
            held = pump.status()
            if zone is not None and zone != held.zone:
                raise StoreError(
                    f"{state_dir} holds a pump set to {held.zone} "
                    f"({p.offset_hhmm(held.utc_offset_ms)}), not {zone}: a stored pump keeps its "
                    "clinic clock; sync it (pump-programmer clock --sync --zone "
                    f"{zone}) or use another --state-dir"
                )
            store.check_identity(pump.serial, int(stored))
            downtime = max(0, wall() - saved.wall_ms) * saved.speed_milli // 1000
            clock = VirtualClock(saved.model_ms + downtime, speed_milli, monotonic_ns)
        device = PumpDevice(
            pump,
            keys,
            clock=clock,
            store=store,
            policy=policy,
            stale_recovery_log=stale_recovery_log,
            wall=wall,
            mono=lambda: monotonic_ns() // 1_000_000,
            randbytes=randbytes or secrets.token_bytes,
        )
        device.advance()
        device.log_control(ControlCode.STARTED, downtime)
        failure = device.flush()
        if failure is not None:
            raise StoreError(f"{store.path}: {failure}")
        return device
    except BaseException:
        store.close()
        raise


class Link(Protocol):
    name: str

    def send(self, data: bytes) -> None: ...


@dataclasses.dataclass
class Impairment:
    """A bad link, for testing programmers (the control plane sets it): each frame (or chunk of
    serial bytes) in either direction is dropped, duplicated or has one bit flipped with these
    shares; answers are delayed; `cut` loses everything."""

    drop: float = 0.0
    duplicate: float = 0.0
    corrupt: float = 0.0
    delay_ms: int = 0
    cut: bool = False

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "corrupt"):
            share = getattr(self, name)
            if not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1")
        if not isinstance(self.delay_ms, int) or not 0 <= self.delay_ms <= 60_000:
            raise ValueError("delay_ms must be 0 .. 60000")

    @property
    def active(self) -> bool:
        return bool(self.cut or self.drop or self.duplicate or self.corrupt or self.delay_ms)

    def apply(self, data: bytes, rng: random.Random) -> list[bytes]:
        """What comes out of the link for `data`: nothing, it, it twice, or it damaged."""
        if self.cut or rng.random() < self.drop:
            return []
        if data and rng.random() < self.corrupt:
            b = bytearray(data)
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            data = bytes(b)
        return [data, data] if rng.random() < self.duplicate else [data]


def _wake_up(wake: asyncio.Future[None]) -> None:
    if not wake.done():
        wake.set_result(None)


class Runtime:
    """Runs one pump: its clock task and the frames of every link joined to it."""

    def __init__(self, device: PumpDevice, *, trace: Trace | None = None) -> None:
        self.device = device
        self.trace = trace
        self._decoders: dict[str, p.FrameDecoder] = {}
        self._wake: asyncio.Future[None] | None = None  # what the sleeping clock task awaits
        self._stopped = False
        self._closed = False
        self._planned_ms = 0  # monotonic ms the clock task plans to wake at
        self.impairment = Impairment()
        self.exercise: Any = None  # (Exercise, Start): a scenario's graded exercise running
        self.exercise_trace: Any = None  # its plot's points (emulator/_exercise_plot.Trace)
        self._random: random.Random | None = None  # made when an impairment first needs it
        self._senders: dict[str, Callable[[bytes], None]] = {}
        # called after a frame changed the pump (a programmer's command): the console's streams
        self.observers: list[Callable[[Runtime], None]] = []

    @property
    def _rng(self) -> random.Random:
        """The impairment's dice (2.5 KB of state: made on first use, a fleet has 20,000)."""
        if self._random is None:
            self._random = random.Random()
        return self._random

    @property
    def serial(self) -> int:
        return self.device.pump.serial

    def note_exercise(self) -> None:
        """A point of the running exercise's plot, now (a change was made or is about to be)."""
        if self.exercise_trace is not None:
            self.device.advance()
            self.exercise_trace.note(self.device.pump)

    def poke(self) -> None:
        """Something changed: recompute when to wake up."""
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    # --- frames ---------------------------------------------------------------------------

    def register(self, link: str, send: Callable[[bytes], None]) -> None:
        """How to send on `link` later (answers held back by an impaired link)."""
        self._senders[link] = send

    def feed(self, link: str, data: bytes) -> list[bytes]:
        """Bytes received on a byte-stream link (serial): frames to send back, in order."""
        decoder = self._decoders.get(link)
        if decoder is None:
            decoder = self._decoders[link] = p.FrameDecoder()
        if not self.impairment.active:
            return self._handle(link, decoder.feed(data))
        out: list[bytes] = []
        for chunk in self.impairment.apply(data, self._rng):
            out += self._handle(link, decoder.feed(chunk))
        return self._impair_out(link, out)

    def feed_frame(self, link: str, payload: bytes) -> list[bytes]:
        """One message-oriented payload (MQTT): exactly one frame, or it is dropped."""
        if not self.impairment.active:
            return self._feed_frame(link, payload)
        out: list[bytes] = []
        for copy in self.impairment.apply(payload, self._rng):
            out += self._feed_frame(link, copy)
        return self._impair_out(link, out)

    def _impair_out(self, link: str, replies: list[bytes]) -> list[bytes]:
        imp = self.impairment
        out = [copy for r in replies for copy in imp.apply(r, self._rng)]
        send = self._senders.get(link)
        if imp.delay_ms and out and send is not None:
            loop = asyncio.get_running_loop()
            for r in out:
                loop.call_later(imp.delay_ms / 1000, send, r)
            return []
        return out

    def _feed_frame(self, link: str, payload: bytes) -> list[bytes]:
        items = p.FrameDecoder().feed(payload)
        if (
            len(items) != 1
            or not isinstance(items[0], p.Frame)
            or len(items[0].raw) != len(payload)
        ):
            self.device.stats.decode_errors += 1
            if self.trace is not None:
                self.trace.error(link, p.GarbageSkipped(len(payload)))
            return []
        return self._handle(link, items)

    def _handle(self, link: str, items: list[p.Frame | p.DecodeError]) -> list[bytes]:
        out: list[bytes] = []
        trace = self.trace
        device = self.device
        pump = device.pump
        before = pump.change_mark
        if self.exercise_trace is not None:
            self.note_exercise()  # before the change: the plot shows a step, not a slope
        for item in items:
            if trace is not None:
                if isinstance(item, p.Frame):
                    trace.frame(link, "in", item.raw)
                else:
                    trace.error(link, item)
            replies = device.receive(item)
            if trace is not None:
                for r in replies:
                    trace.frame(link, "out", r)
            out += replies
        # Wake the clock task only when its plan may have changed. A needless wake-up would run
        # the clock task before the answer is written, on the round trip's critical path.
        if device.pump is not pump or pump.change_mark != before:
            self.poke()
            self.note_exercise()
            for observe in self.observers:
                observe(self)
        else:
            due = device.next_wakeup_ms()
            if due is not None and due < self._planned_ms:
                self.poke()
        return out

    def note_out(self, link: str, data: bytes) -> None:
        """A frame the pump sent on its own (a beacon)."""
        if self.trace is not None:
            self.trace.frame(link, "out", data)

    # --- time -----------------------------------------------------------------------------

    def set_speed(self, speed_milli: int) -> None:
        self.device.advance()
        self.device.clock.set_speed(speed_milli)
        self.device.flush()
        self.poke()

    def _sleep_s(self) -> float | None:
        dev = self.device
        delays = []
        t = dev.pump.next_event_time()
        if t is not None:
            s = dev.clock.seconds_until(t)
            if s is not None:
                delays.append(s)
        hk = dev.next_wakeup_ms()
        if hk is not None:
            delays.append(max(0.0, (hk - mono_ms()) / 1000))
        return min(*delays, MAX_SLEEP_S) if delays else None

    async def run_clock(self) -> None:
        """The pump's heartbeat: sleep until something is due, then bring the model there."""
        while not self._stopped:
            self.device.tick()
            delay = self._sleep_s()
            self._planned_ms = mono_ms() + int(delay * 1000) if delay is not None else 1 << 62
            if delay is not None:
                # Everything due up to now was just applied; a floor keeps a paused clock (or an
                # event due this very millisecond) from spinning the loop.
                delay = max(delay, MIN_SLEEP_S)
            # A future and a timer, not asyncio.Event and wait_for: Python 3.11's wait_for can
            # swallow a cancellation that races with the wake-up (the clock task would never
            # end), and an Event costs ~1 KB a pump, idle, where a fleet has 20,000.
            loop = asyncio.get_running_loop()
            wake = self._wake = loop.create_future()
            timer = None if delay is None else loop.call_later(delay, _wake_up, wake)
            try:
                await wake
            finally:
                self._wake = None
                if timer is not None:
                    timer.cancel()

    def stop(self) -> None:
        """Ask the clock task to end (before cancelling it)."""
        self._stopped = True
        self.poke()

    def close(self) -> None:
        """Write the last state and close the memory (after the links stopped)."""
        if self._closed:
            return
        self._closed = self._stopped = True
        dev = self.device
        dev.advance()
        dev.log_control(ControlCode.STOPPED, 0)
        dev.security.end_all()
        dev.tick()
        dev.flush()
        if dev.store is not None:
            dev.store.close()
        if self.trace is not None:
            self.trace.close()
