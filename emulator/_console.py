"""The instructor console's server side (docs/console.md): its static files, the history of
reservoir, rate and dose the page plots, and the Server-Sent Events streams it reads (each
record's sentence and category: _console_records.py).

The page is plain HTML, CSS and JavaScript shipped in `emulator/console/` (no build step, no
network fetch beyond this server). It authenticates with the control plane's bearer token and
steers the pump through the control plane's ordinary routes; the streams only push state.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import firmware_model as fm

from . import _console_records
from ._console_records import records as records_of
from ._control_api import Call, ControlError, Route
from ._narration import Narration, as_json

if TYPE_CHECKING:
    from ._runtime import Runtime

# re-exported: the control plane's catalogue and the tests read them here
EVENT_CATEGORIES = _console_records.EVENT_CATEGORIES
describe = _console_records.describe

log = logging.getLogger("emulator.console")

TICK_S = 0.5  # how often a stream looks for changes it was not told about (time passing)
FLEET_TICK_S = 1.0
KEEPALIVE_S = 15.0
INITIAL_LOG = 1000  # records sent when a stream opens
EAGER_HISTORY = 16  # pumps whose history is kept from the start (larger fleets: once viewed)
HISTORY_MAX = 4000  # samples kept per pump; older ones are thinned out, never all dropped
LIVE_STEP_MS = 5 * fm.MS_PER_MIN  # model time between two samples taken while time runs
FILL_SAMPLES = 240  # samples taken across one jump of pump time
MIN_FILL_STEP_MS = 10 * fm.MS_PER_MIN
FINE_FILL_MS = 2 * fm.DAY_MS  # the end of a jump is sampled at every rate change as well

FILES = {
    "index.html": "text/html; charset=utf-8",
    # console.js is the page's entry module; it imports the others (one concept each)
    "console.js": "text/javascript; charset=utf-8",
    "actions.js": "text/javascript; charset=utf-8",
    "alarms.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "connection.js": "text/javascript; charset=utf-8",
    "controls.js": "text/javascript; charset=utf-8",
    "detail.js": "text/javascript; charset=utf-8",
    "dom.js": "text/javascript; charset=utf-8",
    "fleet.js": "text/javascript; charset=utf-8",
    "format.js": "text/javascript; charset=utf-8",
    "history.js": "text/javascript; charset=utf-8",
    "log.js": "text/javascript; charset=utf-8",
    "exercise.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
# The page fetches nothing from elsewhere: the browser enforces it.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

# Filter groups of the console's event log.


# --- static files --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Raw:
    """A non-JSON answer: a console file or a redirect."""

    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    status: int = 200


@cache
def console_file(name: str) -> Raw | None:
    """A file of the page (read once), or None."""
    if name not in FILES:
        return None
    try:
        body = (resources.files("emulator") / "console" / name).read_bytes()
    except FileNotFoundError:
        return None
    return Raw(
        FILES[name],
        body,
        (
            ("Cache-Control", "no-cache"),
            ("Content-Security-Policy", CSP),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ),
    )


# --- event records as a person reads them ---------------------------------------------------


# --- history ---------------------------------------------------------------------------------

# pump clock, calculated nL, true nL, rate now nL/day, delivered ng, program's mean nL/day
Sample = tuple[int, int, int, int, int, int]
# beside each sample, the ground truth of the volumes: counted by the pump (program), truly out
# of the reservoir (pumped), into the intrathecal space (patient), nL; a catheter complication
# parts them (docs/firmware_model.md section 18)
Flow = tuple[int, int, int]


def _flow(pump: fm.Pump) -> Flow:
    st = pump.status()
    return (st.program_total_nl, st.pumped_total_nl, st.patient_total_nl)


def _sample(pump: fm.Pump) -> Sample:
    st = pump.status()
    return (
        st.clock_ms,
        st.reservoir_nl,
        st.true_reservoir_nl,
        st.current_rate_nl_per_day,
        st.patient_dose_ng,
        st.daily_volume_nl,
    )


class History:
    """Samples of one pump for the plot. A new pump (a reset) starts a new history; past
    HISTORY_MAX samples, the older half is thinned out so the plot keeps its whole span."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.flows: list[Flow] = []  # one per sample
        self.generation = 0  # bumped whenever samples already sent change
        self._pump_id = 0

    def _check_pump(self, pump: fm.Pump) -> None:
        if id(pump) != self._pump_id:
            self._pump_id = id(pump)
            self.samples = []
            self.flows = []
            self.generation += 1

    def _add(self, row: Sample, pump: fm.Pump) -> None:
        self.samples.append(row)
        self.flows.append(_flow(pump))
        if len(self.samples) > HISTORY_MAX:
            half = len(self.samples) // 2
            self.samples = self.samples[:half:2] + self.samples[half:]
            self.flows = self.flows[:half:2] + self.flows[half:]
            self.generation += 1

    def note(self, pump: fm.Pump, *, force: bool = False) -> None:
        """Sample the pump now if time moved on enough, the rate changed or `force`."""
        self._check_pump(pump)
        row = _sample(pump)
        last = self.samples[-1] if self.samples else None
        if last is None:
            self._add(row, pump)
        elif row[0] > last[0]:
            if force or row[0] - last[0] >= LIVE_STEP_MS or row[3] != last[3]:
                self._add(row, pump)
        elif force and row[1:] != last[1:]:  # a step at one instant (a control action)
            self._add(row, pump)

    def fill(self, pump: fm.Pump, target: int) -> None:
        """Before a jump of pump time to model time `target`: bring the pump there in steps,
        sampling on the way: evenly, and at every rate change in the jump's last two days (so
        a flex schedule's steps are not aliased where the plot is finest). Advancing in steps
        is exactly advancing at once (the model never creates or loses a nanolitre by
        splitting an interval; the runtime relies on it)."""
        self._check_pump(pump)
        span = target - pump.now
        if span <= 0:
            return
        step = max(MIN_FILL_STEP_MS, span // FILL_SAMPLES)
        fine_from = target - FINE_FILL_MS
        due = pump.now + step
        while True:
            t = due
            if pump.now >= fine_from:
                nxt = pump.next_event_time()
                if nxt is not None and pump.now < nxt < t:
                    t = nxt
            if t >= target:
                return
            pump.advance_to(t)
            if t == due:
                self.note(pump)
                due += step
            elif self.samples and _sample(pump)[3] != self.samples[-1][3]:
                self._add(_sample(pump), pump)


# --- streams -----------------------------------------------------------------------------------


def sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    """One Server-Sent Event; JSON has no raw newline, so `data` is one line."""
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return (head + "data: " + json.dumps(data, separators=(",", ":")) + "\n\n").encode()


Write = Callable[[bytes], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class Stream:
    """An answer that keeps the connection: `run(write, left)` writes events until the client
    leaves (`left()` turns true, or a write fails) or the server closes."""

    run: Callable[[Write, Callable[[], bool]], Awaitable[None]]

    HEADERS = (
        ("Content-Type", "text/event-stream"),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
    )
    OPENING = b"retry: 2000\n\n"  # EventSource reconnects after 2 s


class _Viewer:
    """One open stream: woken by a change or the server closing; it notices its client left
    when it looks again (at the latest after a tick) or when a write fails."""

    def __init__(self, left: Callable[[], bool]) -> None:
        self.wake = asyncio.Event()
        self._left = left

    @property
    def gone(self) -> bool:
        return self._left()

    async def sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.wake.wait()
        self.wake.clear()


StateFn = Callable[..., dict[str, Any]]


class Hub:
    """The live side of the control plane: histories, and the viewers to wake on a change."""

    def __init__(self, runtimes: Mapping[int, Runtime], state: StateFn, summary: StateFn) -> None:
        self.runtimes = runtimes
        self._state = state
        self._summary = summary
        self.histories: dict[int, History] = {}
        self.narration: dict[int, Narration] = {}  # instructor notes, beside each pump
        self._viewers: set[_Viewer] = set()
        self._closing = False
        self._sampler: asyncio.Task[None] | None = None

    # --- history ---------------------------------------------------------------------------

    def history(self, rt: Runtime) -> History:
        h = self.histories.get(rt.serial)
        if h is None:
            h = self.histories[rt.serial] = History()
            rt.device.advance()
            h.note(rt.device.pump)
        return h

    def narration_of(self, serial: int) -> Narration:
        found = self.narration.get(serial)
        if found is None:
            found = self.narration[serial] = Narration()
        return found

    def start(self) -> None:
        """Keep the histories of a small number of pumps from now on, viewed or not."""
        if len(self.runtimes) <= EAGER_HISTORY:
            for rt in self.runtimes.values():
                self.history(rt)
        self._sampler = asyncio.create_task(self._sample_forever(), name="console-history")

    async def _sample_forever(self) -> None:
        while not self._closing:
            for serial, h in list(self.histories.items()):
                rt = self.runtimes[serial]
                rt.device.advance()
                h.note(rt.device.pump)
            await asyncio.sleep(TICK_S)

    def before_change(self, rt: Runtime) -> None:
        rt.note_exercise()
        h = self.histories.get(rt.serial)
        if h is not None:
            rt.device.advance()
            h.note(rt.device.pump, force=True)

    def fill_history(self, rt: Runtime, target: int) -> None:
        h = self.histories.get(rt.serial)
        if h is not None:
            h.fill(rt.device.pump, target)

    def changed(self, rt: Runtime) -> None:
        """A control action or a programmer's command changed the pump: sample it and wake
        every stream at once."""
        rt.note_exercise()
        h = self.histories.get(rt.serial)
        if h is not None:
            h.note(rt.device.pump, force=True)
        for v in self._viewers:
            v.wake.set()

    async def close(self) -> None:
        self._closing = True
        for v in self._viewers:
            v.wake.set()
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler

    # --- the two streams -------------------------------------------------------------------

    def pump_stream(self, rt: Runtime, last_event_id: str | None) -> Stream:
        try:
            resume = int(last_event_id) if last_event_id else None
        except ValueError:
            resume = None

        async def run(write: Write, left: Callable[[], bool]) -> None:
            await self._serve(write, left, lambda v: self._pump_events(rt, v, resume))

        return Stream(run)

    def fleet_stream(self) -> Stream:
        async def run(write: Write, left: Callable[[], bool]) -> None:
            await self._serve(write, left, self._fleet_events)

        return Stream(run)

    async def _serve(
        self, write: Write, left: Callable[[], bool], events: Callable[[_Viewer], Any]
    ) -> None:
        viewer = _Viewer(left)
        self._viewers.add(viewer)
        try:
            async with contextlib.aclosing(events(viewer)) as chunks:
                async for chunk in chunks:
                    if viewer.gone or self._closing:
                        break
                    await write(chunk)
        except ConnectionError:
            pass  # the client left
        finally:
            self._viewers.discard(viewer)

    async def _pump_events(self, rt: Runtime, viewer: _Viewer, resume: int | None) -> Any:
        history = self.history(rt)
        pump_id = 0
        cursor = 0
        sent_generation, sent_samples = -1, 0
        notes_generation, sent_notes = -1, 0
        last_state = ""
        quiet = 0.0
        while not (viewer.gone or self._closing):
            dev = rt.device
            dev.advance()
            pump = dev.pump
            history.note(pump)
            out = b""
            text = json.dumps(self._state(rt, events=0), separators=(",", ":"))
            if text != last_state:
                out += b"event: state\ndata: " + text.encode() + b"\n\n"
                last_state = text
            if id(pump) != pump_id:  # the first round, or the pump was replaced (a reset)
                first = max(pump.oldest_seq, pump.event_seq - INITIAL_LOG + 1)
                if pump_id == 0 and resume is not None and first <= resume <= pump.event_seq:
                    first, reset = resume + 1, False
                else:
                    reset = True
                pump_id = id(pump)
                records = pump.events(first)
                unit = pump.status().conc_unit
                out += sse(
                    "log",
                    {"reset": reset, "records": records_of(records, unit)},
                    pump.event_seq,
                )
                cursor = pump.event_seq + 1
            elif pump.event_seq >= cursor:
                records = pump.events(max(cursor, pump.oldest_seq))
                unit = pump.status().conc_unit
                out += sse(
                    "log",
                    {"reset": False, "records": records_of(records, unit)},
                    pump.event_seq,
                )
                cursor = pump.event_seq + 1
            if history.generation != sent_generation:
                out += sse(
                    "history",
                    {"reset": True, "samples": history.samples, "flows": history.flows},
                )
                sent_generation, sent_samples = history.generation, len(history.samples)
            elif len(history.samples) > sent_samples:
                out += sse(
                    "history",
                    {
                        "reset": False,
                        "samples": history.samples[sent_samples:],
                        "flows": history.flows[sent_samples:],
                    },
                )
                sent_samples = len(history.samples)
            narration = self.narration_of(rt.serial)
            due = narration.due(pump.now)
            offset = pump.clock_ms - pump.now
            if narration.generation != notes_generation:
                out += sse("narration", {"reset": True, "notes": as_json(due, offset)})
                notes_generation, sent_notes = narration.generation, len(due)
            elif len(due) > sent_notes:
                fresh = as_json(due[sent_notes:], offset)
                out += sse("narration", {"reset": False, "notes": fresh})
                sent_notes = len(due)
            if out:
                quiet = 0.0
                yield out
            elif quiet >= KEEPALIVE_S:
                quiet = 0.0
                yield b": keep-alive\n\n"
            await viewer.sleep(TICK_S)
            quiet += TICK_S

    async def _fleet_events(self, viewer: _Viewer) -> Any:
        sent: dict[int, str] = {}
        first = True
        quiet = 0.0
        while not (viewer.gone or self._closing):
            changed = []
            for serial, rt in self.runtimes.items():
                summary = self._summary(rt)
                text = json.dumps(summary, sort_keys=True)
                if sent.get(serial) != text:
                    sent[serial] = text
                    changed.append(summary)
            if first or changed:
                yield sse("pumps", {"reset": first, "pumps": changed})
                first, quiet = False, 0.0
            elif quiet >= KEEPALIVE_S:
                quiet = 0.0
                yield b": keep-alive\n\n"
            await viewer.sleep(FLEET_TICK_S)
            quiet += FLEET_TICK_S


# --- routes ----------------------------------------------------------------------------------


async def _redirect(call: Call) -> Raw:
    _served(call)
    return Raw("text/plain", b"", (("Location", "/console/"),), 301)


async def _file(call: Call) -> Raw:
    _served(call)
    found = console_file(call.params.get("file", "index.html"))
    if found is None:
        raise ControlError(404, f"no such file: {call.path}")
    return found


def _served(call: Call) -> None:
    if not call.plane.console:
        raise ControlError(404, "the console is not served: start with --console")


ROUTES = [
    Route("GET", "/console", "Redirects to /console/.", _redirect, public=True, kind="static"),
    Route(
        "GET",
        "/console/",
        "The instructor console (served with --console; the token goes in the URL fragment).",
        _file,
        public=True,
        kind="static",
    ),
    Route(
        "GET", "/console/{file}", "The console's static files.", _file, public=True, kind="static"
    ),
]
