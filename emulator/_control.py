"""The control plane: an HTTP JSON API for trainers and test code, separate from the pump's
telemetry and unreachable through it (docs/emulator.md section 12).

A small HTTP/1.1 server on asyncio (no dependency), loopback by default, with a bearer token.
Every route is declared once in `ROUTES` with its JSON-schema request body: the same table
validates requests and generates the OpenAPI document served at `/openapi.json`. Every change
is applied at the current model time, logged as a CONTROL record (`source` CONTROL) and
committed before the answer. The same server streams live state as Server-Sent Events and, with
`console=True`, serves the instructor console's static page (emulator/_console.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import re
import secrets
import urllib.parse
from collections.abc import Mapping
from typing import Any

import firmware_model as fm

from ._clock import MAX_SPEED_MILLI
from ._console import Hub, Raw, Stream, console_file
from ._device import ControlCode
from ._runtime import Impairment, Runtime

log = logging.getLogger("emulator.control")

MAX_HEADER = 16 * 1024
MAX_BODY = 64 * 1024
MAX_ADVANCE_MS = 10 * 365 * fm.DAY_MS
MAX_STEPS = 1_000_000  # events stepped through looking for the next alarm


class ControlError(Exception):
    """A refused control request: HTTP status and a message that says what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _int(lo: int, hi: int, doc: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": lo, "maximum": hi, "description": doc}


def _share(doc: str) -> dict[str, Any]:
    return {"type": "number", "minimum": 0, "maximum": 1, "description": doc}


FAULTS: dict[str, type] = {
    "MOTOR_STALL": fm.MotorStall,
    "CATHETER_OCCLUSION": fm.CatheterOcclusion,
    "CATHETER_LEAK": fm.CatheterLeak,
    "POCKET_FILL": fm.PocketFill,
    "CRITICAL_MEMORY_ERROR": fm.CriticalMemoryError,
    "NONCRITICAL_MEMORY_ERROR": fm.NoncriticalMemoryError,
    "MRI_EXPOSURE": fm.MriExposure,
    "DELIVERY_INACCURACY": fm.DeliveryInaccuracy,
    "PREMATURE_ERI": fm.PrematureEri,
    "PREMATURE_EOS": fm.PrematureEos,
    "LOW_BATTERY_RESET": fm.LowBatteryReset,
}
_FAULT_PARAMS: dict[str, dict[str, Any]] = {
    "recover_after_ms": _int(0, MAX_ADVANCE_MS, "MOTOR_STALL: recovers by itself after this"),
    "share_ppm": _int(0, 1_000_000, "CATHETER_LEAK: share of the flow lost, ppm"),
    "volume_nl": _int(0, 100_000_000, "POCKET_FILL: volume of the next refill that misses"),
    "duration_ms": _int(0, fm.DAY_MS, "MRI_EXPOSURE: scan duration"),
    "recovery_delay_ms": _int(0, MAX_ADVANCE_MS, "MRI_EXPOSURE: delay before recovery"),
    "error_ppm": _int(-500_000, 145_000, "DELIVERY_INACCURACY: + over, - under-delivery, ppm"),
}
UNTIL = ("next-event", "next-alarm", "low-reservoir", "empty", "replacement-due")
# Battery faults end only with a new pump (clear_fault refuses them): the console confirms them.
IRREVERSIBLE_FAULTS = ("PREMATURE_ERI", "PREMATURE_EOS", "LOW_BATTERY_RESET")


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    path: str  # with {serial} and {kind} placeholders
    summary: str
    body: dict[str, Any] | None = None  # JSON schema of the request body
    public: bool = False
    kind: str = "json"  # "json" answer, "stream" (text/event-stream) or "static" (console file)
    query: tuple[tuple[str, str], ...] = ()  # (name, description) of query parameters

    @property
    def regex(self) -> re.Pattern[str]:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path)
        return re.compile(f"^{pattern}$")


def _object(required: list[str], **props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


ROUTES = [
    Route("GET", "/openapi.json", "This document.", public=True),
    Route("GET", "/v1/pumps", "The pumps this emulator runs."),
    Route(
        "GET",
        "/v1/pumps/{serial}",
        "The whole pump: true and calculated reservoir, program, alarms, battery, faults, "
        "clock, speed, link impairment and the newest event-log records.",
    ),
    Route(
        "GET",
        "/v1/pumps/{serial}/events",
        "Event-log records from ?cursor= (default: oldest kept), at most ?limit= (default 100).",
        query=(("cursor", "first seq wanted"), ("limit", "at most this many, 1 .. 4096")),
    ),
    Route(
        "PUT",
        "/v1/pumps/{serial}/speed",
        "Set the speed factor (0 pauses). Pump time never jumps when the speed changes.",
        _object(["factor"], factor={"type": "number", "minimum": 0, "maximum": 1_000_000}),
    ),
    Route("POST", "/v1/pumps/{serial}/pause", "Stop pump time (speed factor 0)."),
    Route("POST", "/v1/pumps/{serial}/resume", "Restart pump time at the speed before the pause."),
    Route(
        "POST",
        "/v1/pumps/{serial}/advance",
        "Move pump time forward by `ms`, or `until` the next event of a kind. Delivery, "
        "alarms and battery follow exactly as if the time had passed.",
        {
            "type": "object",
            "properties": {
                "ms": _int(1, MAX_ADVANCE_MS, "how far"),
                "until": {"type": "string", "enum": list(UNTIL)},
            },
            "additionalProperties": False,
            "minProperties": 1,
            "maxProperties": 1,
        },
    ),
    Route(
        "POST",
        "/v1/pumps/{serial}/faults",
        "Inject a fault with its real consequence (firmware_model faults).",
        _object(
            ["kind"],
            kind={"type": "string", "enum": sorted(FAULTS)},
            **_FAULT_PARAMS,
        ),
    ),
    Route(
        "DELETE",
        "/v1/pumps/{serial}/faults/{kind}",
        "End a fault (motor recovers, occlusion repaired, ...). Battery faults cannot end.",
    ),
    Route(
        "PUT",
        "/v1/pumps/{serial}/reservoir",
        "Set what is truly in the reservoir; the pump's calculated volume is left alone.",
        _object(["true_volume_nl"], true_volume_nl=_int(0, 100_000_000, "nL")),
    ),
    Route(
        "POST",
        "/v1/pumps/{serial}/reset",
        "Replace the pump by a new one in a scenario's starting state (its time-0 steps): "
        "same serial and keys, a fresh memory; open sessions end.",
        _object(["scenario"], scenario={"type": "string", "description": "built-in name"}),
    ),
    Route("GET", "/v1/pumps/{serial}/link", "The link impairment in force."),
    Route(
        "PUT",
        "/v1/pumps/{serial}/link",
        "Impair the link for programmer tests: shares of frames dropped, duplicated or "
        "corrupted in each direction, answers delayed, or the link cut.",
        _object(
            [],
            drop=_share("share of frames lost"),
            duplicate=_share("share of frames delivered twice"),
            corrupt=_share("share of frames with one bit flipped"),
            delay_ms=_int(0, 60_000, "answers held back this long"),
            cut={"type": "boolean", "description": "lose everything"},
        ),
    ),
    Route(
        "GET",
        "/v1/catalogue",
        "Fixed facts a client shows: fault kinds with their parameters, the alarm catalogue "
        "(priority, tone, what clears it), event-log kinds, training scenarios, limits.",
    ),
    Route(
        "GET",
        "/v1/stream",
        "Server-Sent Events: every pump's summary (`pumps`), then the summaries that changed. "
        "The token may also be given as ?access_token= (EventSource cannot send headers).",
        kind="stream",
        query=(("access_token", "the bearer token, for clients that cannot send headers"),),
    ),
    Route(
        "GET",
        "/v1/pumps/{serial}/stream",
        "Server-Sent Events: the pump's state (`state`, as GET /v1/pumps/{serial} without "
        "records), new event-log records (`log`, id = newest seq) and samples of reservoir, "
        "rate and dose (`history`), pushed when they change. Last-Event-ID resumes the log.",
        kind="stream",
        query=(("access_token", "the bearer token, for clients that cannot send headers"),),
    ),
    Route("GET", "/console", "Redirects to /console/.", public=True, kind="static"),
    Route(
        "GET",
        "/console/",
        "The instructor console (served with --console; the token goes in the URL fragment).",
        public=True,
        kind="static",
    ),
    Route("GET", "/console/{file}", "The console's static files.", public=True, kind="static"),
]


def validate(schema: Mapping[str, Any], value: Any, where: str = "body") -> None:
    """The subset of JSON Schema the routes use; raises ControlError(400) naming the field."""
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise ControlError(400, f"{where} must be a JSON object")
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(props))
            if extra:
                raise ControlError(400, f"{where}: unknown field(s) {', '.join(extra)}")
        for name in schema.get("required", []):
            if name not in value:
                raise ControlError(400, f"{where}: missing field {name}")
        if not schema.get("minProperties", 0) <= len(value) <= schema.get("maxProperties", 99):
            raise ControlError(400, f"{where}: give exactly one of {', '.join(props)}")
        for name, v in value.items():
            validate(props[name], v, f"{where}.{name}")
        return
    if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        raise ControlError(400, f"{where} must be an integer")
    if kind == "number" and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise ControlError(400, f"{where} must be a number")
    if kind == "boolean" and not isinstance(value, bool):
        raise ControlError(400, f"{where} must be true or false")
    if kind == "string" and not isinstance(value, str):
        raise ControlError(400, f"{where} must be a string")
    if "enum" in schema and value not in schema["enum"]:
        raise ControlError(400, f"{where} must be one of {', '.join(schema['enum'])}")
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ControlError(400, f"{where} must be {lo} .. {hi}")


_CONTENT: dict[str, dict[str, Any]] = {
    "json": {"application/json": {}},
    "stream": {"text/event-stream": {}},
    "static": {"text/html": {}, "text/javascript": {}, "text/css": {}},
}


def openapi() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for r in ROUTES:
        op: dict[str, Any] = {
            "summary": r.summary,
            "responses": {
                "200": {"description": "done", "content": _CONTENT[r.kind]},
                "400": {"description": "bad input: nothing changed"},
                "401": {"description": "missing or wrong bearer token"},
                "404": {"description": "no such pump or fault"},
                "409": {"description": "refused in the pump's current state"},
            },
            "parameters": [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in re.findall(r"\{(\w+)\}", r.path)
            ]
            + [
                {"name": n, "in": "query", "description": d, "schema": {"type": "string"}}
                for n, d in r.query
            ],
        }
        if r.path == "/console":
            op["responses"]["301"] = {"description": "moved to /console/"}
        if r.public:
            op["security"] = []
        if r.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": r.body}},
            }
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "itp emulator control plane", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


def catalogue() -> dict[str, Any]:
    """GET /v1/catalogue: what a client needs to offer the actions and explain the state."""
    from ._console import EVENT_CATEGORIES
    from ._scenario import builtin_scenarios, load_scenario

    faults = {}
    for kind, cls in sorted(FAULTS.items()):
        params = {}
        for f in dataclasses.fields(cls):
            default = None if f.default is dataclasses.MISSING else f.default
            params[f.name] = {**_FAULT_PARAMS[f.name], "default": default}
        faults[kind] = {
            "description": " ".join((cls.__doc__ or "").replace("`", "").split()),
            "params": params,
            "irreversible": kind in IRREVERSIBLE_FAULTS,
        }
    alarms = {
        spec.alarm.name: {
            "critical": spec.critical,
            "priority": spec.priority.name,
            "tone": spec.tone.name,
            "stops_delivery": spec.stops_delivery,
            "latching": spec.latching,
            "cleared_by": spec.cleared_by.value,
            "description": spec.description,
        }
        for spec in fm.CATALOGUE.values()
    }
    return {
        "faults": faults,
        "alarms": alarms,
        "until": list(UNTIL),
        "max_speed_factor": MAX_SPEED_MILLI // 1000,
        "max_advance_ms": MAX_ADVANCE_MS,
        "scenarios": [{"name": n, "title": load_scenario(n).name} for n in builtin_scenarios()],
        "event_categories": EVENT_CATEGORIES,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, fm.Alarm | fm.Capability):
        return [m.name for m in type(value) if m.value and m in value]
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "name") and hasattr(value, "value") and not isinstance(value, type):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, frozenset | set):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class ControlPlane:
    """Serves the control API for the runtimes it is given (one per pump); with `console`, also
    the instructor console's page."""

    def __init__(
        self, runtimes: Mapping[int, Runtime], token: str | None = None, *, console: bool = False
    ) -> None:
        self.runtimes = runtimes
        self.token = token or secrets.token_urlsafe(24)
        self.console = console
        self._server: asyncio.Server | None = None
        self._paused_speed: dict[int, int] = {}
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self.hub = Hub(runtimes, state, _summary)
        self.address: tuple[str, int] = ("", 0)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    @property
    def console_url(self) -> str:
        """The page, with the token in the fragment (never sent to the server or logged)."""
        return f"{self.url}/console/#token={urllib.parse.quote(self.token, safe='')}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._connection, host, port)
        sock = self._server.sockets[0].getsockname()
        self.address = (sock[0], sock[1])
        if self.console:
            self.hub.start()
            for rt in self.runtimes.values():  # programmer commands reach the page at once
                rt.observers.append(self.hub.changed)
        return self.address

    async def close(self) -> None:
        for rt in self.runtimes.values():
            if self.hub.changed in rt.observers:
                rt.observers.remove(self.hub.changed)
        await self.hub.close()  # ends the event streams
        if self._server is not None:
            self._server.close()
            # Idle keep-alive connections (a browser keeps some) would outlive the server.
            for writer in list(self._connections.values()):
                writer.close()
            if self._connections:
                await asyncio.wait(list(self._connections), timeout=5)
            await self._server.wait_closed()

    # --- HTTP ---------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    await self._reply(writer, 431, {"error": "request header too large"}, False)
                    return
                if len(head) > MAX_HEADER:
                    await self._reply(writer, 431, {"error": "request header too large"}, False)
                    return
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, _version = lines[0].split(" ", 2)
                except ValueError:
                    await self._reply(writer, 400, {"error": "malformed request line"}, False)
                    return
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                try:
                    length = int(headers.get("content-length", "0"))
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_BODY:
                    await self._reply(writer, 413, {"error": "body too large or bad length"}, False)
                    return
                body = await reader.readexactly(length) if length else b""
                status, payload = await self.handle(method, target, headers, body)
                if isinstance(payload, Stream):  # the connection is the stream's until it ends
                    writer.write(payload.head())
                    await writer.drain()
                    await payload.run(reader, writer)
                    return
                keep = headers.get("connection", "").lower() != "close"
                await self._reply(writer, status, payload, keep)
                if not keep:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self._connections.pop(task, None)
            writer.close()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, status: int, payload: Any, keep: bool) -> None:
        if isinstance(payload, Raw):
            data, ctype, extra = payload.body, payload.content_type, payload.header_lines()
        else:
            data, ctype, extra = json.dumps(payload).encode(), "application/json", ""
        reason = {200: "OK", 301: "Moved Permanently", 400: "Bad Request", 401: "Unauthorized",
                  404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
                  413: "Payload Too Large", 431: "Request Header Fields Too Large",
                  }.get(status, "Error")  # fmt: skip
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n{extra}"
            f"Content-Length: {len(data)}\r\nConnection: {'keep-alive' if keep else 'close'}"
            "\r\n\r\n"
        )
        writer.write(head.encode() + data)
        await writer.drain()

    async def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Any]:
        """One request: (HTTP status, JSON payload). Refusals change nothing."""
        path, _, query_text = target.partition("?")
        query = dict(q.split("=", 1) for q in query_text.split("&") if "=" in q)
        try:
            route, params = self._route(method, path)
            if route.kind == "static":
                return self._static(path, params)
            if not route.public:
                self._authorize(headers, query if route.kind == "stream" else None)
            value: Any = None
            if route.body is not None:
                try:
                    value = json.loads(body or b"null")
                except ValueError:
                    raise ControlError(400, "the body must be JSON") from None
                validate(route.body, value)
            elif body:
                raise ControlError(400, "this request takes no body")
            if route.path == "/openapi.json":
                return 200, openapi()
            if route.path == "/v1/pumps":
                return 200, [_summary(r) for r in self.runtimes.values()]
            if route.path == "/v1/catalogue":
                return 200, catalogue()
            if route.path == "/v1/stream":
                return 200, self.hub.fleet_stream()
            runtime = self._runtime(params["serial"])
            if route.kind == "stream":
                return 200, self.hub.pump_stream(runtime, headers.get("last-event-id"))
            handler = HANDLERS[(route.method, route.path)]
            if route.method != "GET":
                self.hub.before_change(runtime)  # the plot shows a step, not a slope
            return 200, await handler(self, runtime, params, value, query)
        except ControlError as exc:
            return exc.status, {"error": exc.message}

    def _static(self, path: str, params: Mapping[str, str]) -> tuple[int, Any]:
        if not self.console:
            raise ControlError(404, "the console is not served: start with --console")
        if path == "/console":
            return 301, Raw("text/plain", b"", (("Location", "/console/"),))
        found = console_file(params.get("file", "index.html"))
        if found is None:
            raise ControlError(404, f"no such file: {path}")
        return 200, found

    def _route(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = []
        for r in ROUTES:
            m = r.regex.match(path)
            if m:
                if r.method == method:
                    return r, m.groupdict()
                allowed.append(r.method)
        if allowed:
            raise ControlError(405, f"{method} {path}: use {', '.join(allowed)}")
        raise ControlError(404, f"no such resource: {path} (see /openapi.json)")

    def _authorize(self, headers: Mapping[str, str], query: Mapping[str, str] | None) -> None:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if not auth and query is not None and "access_token" in query:
            # Streams only: a browser's EventSource cannot send an Authorization header.
            scheme, token = "bearer", urllib.parse.unquote(query["access_token"])
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.encode(), self.token.encode()
        ):
            raise ControlError(401, "missing or wrong bearer token (printed at start)")

    def _runtime(self, serial: str) -> Runtime:
        try:
            return self.runtimes[int(serial)]
        except (ValueError, KeyError):
            raise ControlError(404, f"no pump {serial} here (GET /v1/pumps)") from None

    # --- actions ------------------------------------------------------------------------------

    def _done(self, rt: Runtime, code: int | None = None, b: int = 0) -> dict[str, Any]:
        dev = rt.device
        if code is not None:
            dev.log_control(code, b)
        failure = dev.flush()
        if failure is not None:
            raise ControlError(409, failure)
        rt.poke()
        self.hub.changed(rt)
        return state(rt, events=0)


def _summary(rt: Runtime) -> dict[str, Any]:
    """A pump at a glance (GET /v1/pumps and the fleet stream)."""
    dev = rt.device
    dev.advance()
    pump = dev.pump
    st = pump.status()
    alarms = pump.alarms()
    top = alarms[0] if alarms else None
    due = st.low_reservoir_at_ms
    return {
        "serial": pump.serial,
        "profile": pump.profile.name,
        "speed_factor": dev.clock.speed_milli / 1000,
        "active_alarms": _jsonable(pump.active_alarms),
        "paused": dev.clock.speed_milli == 0,
        "clock_ms": st.clock_ms,
        "mode": st.mode.name,
        "drug": st.drug.name,
        "reservoir_nl": st.reservoir_nl,
        "capacity_nl": pump.profile.reservoir_nl,
        "low_reservoir_at_ms": due,
        "days_to_refill": None if due is None else round((due - st.clock_ms) / fm.DAY_MS, 1),
        "top_alarm": None
        if top is None
        else {
            "alarm": top.alarm.name,
            "critical": top.critical,
            "priority": top.priority.name,
            "state": top.state.name,
        },
        "battery": st.battery.name,
        "faults": _jsonable(st.faults),
        "sessions": len(dev.security.sessions),
    }


def state(rt: Runtime, *, events: int = 20) -> dict[str, Any]:
    dev = rt.device
    dev.advance()
    pump = dev.pump
    st = pump.status()
    off = pump.clock_ms - pump.now
    used, lockout = pump.bolus_window()
    upcoming = pump.next_event_time()
    return {
        "serial": pump.serial,
        "profile": pump.profile.name,
        "speed_factor": dev.clock.speed_milli / 1000,
        "paused": dev.clock.speed_milli == 0,
        "capacity_nl": pump.profile.reservoir_nl,
        "empty_threshold_nl": pump.profile.empty_threshold_nl,
        "status": _jsonable(st),
        "program": {
            "version": pump.program_version,
            "dose_ng_per_day": pump.program_dose_ng_per_day,
            "schedule": [list(s) for s in pump.schedule],
            "bolus": _jsonable(pump.bolus),
            "bridge_ends_at_ms": pump.bridge_ends_at_ms,
            "patient_bolus": _jsonable(pump.patient_bolus),
            "patient_bolus_window": {
                "used_24h": used,
                "lockout_ends_at_ms": lockout + off if lockout else None,
            },
        },
        "alarms": [
            {**_jsonable(a), "tone": fm.CATALOGUE[a.alarm].tone.name} for a in pump.alarms()
        ],
        "alarm_settings": list(pump.alarm_settings),
        "last_tone": _jsonable(pump.last_tone),
        "tones_sounded": pump.tones_sounded,
        "next_event_at_ms": None if upcoming is None else upcoming + off,
        "link": dataclasses.asdict(rt.impairment),
        "sessions": len(dev.security.sessions),
        "event_seq": pump.event_seq,
        "events": _jsonable(pump.events(max(0, pump.event_seq - events + 1)))[-events:]
        if events
        else [],
    }


async def _get_state(cp: ControlPlane, rt: Runtime, params: Any, body: Any, q: Any) -> Any:
    return state(rt)


async def _get_events(cp: ControlPlane, rt: Runtime, params: Any, body: Any, q: Any) -> Any:
    try:
        cursor = int(q.get("cursor", "0"))
        limit = int(q.get("limit", "100"))
    except ValueError:
        raise ControlError(400, "cursor and limit must be integers") from None
    if cursor < 0 or not 1 <= limit <= 4096:
        raise ControlError(400, "cursor must be >= 0 and limit 1 .. 4096")
    rt.device.advance()
    return _jsonable(rt.device.pump.events(cursor, limit))


async def _put_speed(cp: ControlPlane, rt: Runtime, params: Any, body: Any, q: Any) -> Any:
    milli = round(body["factor"] * 1000)
    if not 0 <= milli <= MAX_SPEED_MILLI:
        raise ControlError(400, "factor must be 0 .. 1000000")
    rt.set_speed(milli)
    return cp._done(rt, ControlCode.SPEED, milli)


async def _pause(cp: ControlPlane, rt: Runtime, params: Any, body: Any, q: Any) -> Any:
    speed = rt.device.clock.speed_milli
    if speed == 0:
        raise ControlError(409, "pump time is already paused")
    cp._paused_speed[rt.serial] = speed
    rt.set_speed(0)
    return cp._done(rt, ControlCode.SPEED, 0)


async def _resume(cp: ControlPlane, rt: Runtime, params: Any, body: Any, q: Any) -> Any:
    if rt.device.clock.speed_milli != 0:
        raise ControlError(409, "pump time is not paused")
    speed = cp._paused_speed.pop(rt.serial, 1000)
    rt.set_speed(speed)
    return cp._done(rt, ControlCode.SPEED, speed)


def _target(rt: Runtime, until: str) -> int:
    """Model time of the next event of a kind (ControlError 409 if none comes)."""
    pump = rt.device.pump
    off = pump.clock_ms - pump.now
    st = pump.status()
    if until == "next-event":
        t = pump.next_event_time()
    elif until == "low-reservoir":
        t = None if st.low_reservoir_at_ms is None else st.low_reservoir_at_ms - off
    elif until == "empty":
        t = None if st.empty_at_ms is None else st.empty_at_ms - off
    elif until == "replacement-due":
        t = None if st.eri_at_ms is None else st.eri_at_ms - off
    else:
        t = None
    if t is None:
        raise ControlError(409, f"no {until} is coming: nothing to advance to")
    return max(t, pump.now)


async def _advance(cp: ControlPlane, rt: Runtime, params: Any, body: Any, q: Any) -> Any:
    dev = rt.device
    dev.advance()
    start = dev.pump.now
    if "ms" in body:
        target = start + body["ms"]
    elif body["until"] == "next-alarm":
        target = _next_alarm(rt, start)
    else:
        target = _target(rt, body["until"])
    if target - start > MAX_ADVANCE_MS:
        raise ControlError(409, "that is more than 10 years ahead")
    cp.hub.fill_history(rt, target)
    dev.clock.jump_to(target)
    dev.advance()
    return cp._done(rt, ControlCode.ADVANCE, dev.pump.now - start)


def _next_alarm(rt: Runtime, start: int) -> int:
    """Step a copy of the model event by event to the next newly raised alarm."""
    probe = fm.restore(fm.snapshot(rt.device.pump))
    before = probe.active_alarms
    for _ in range(MAX_STEPS):
        t = probe.next_event_time()
        if t is None or t - start > MAX_ADVANCE_MS:
            break
        probe.advance_to(max(t, probe.now))
        if probe.active_alarms & ~before:
            return probe.now
        before = probe.active_alarms
        if t <= probe.now:  # an event due now that changed nothing: step past it
            probe.advance_to(probe.now + 1)
    raise ControlError(409, "no alarm is coming within 10 years")


async def _inject(cp: ControlPlane, rt: Runtime, params: Any, body: Any, q: Any) -> Any:
    cls = FAULTS[body["kind"]]
    names = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(body) - names - {"kind"})
    if extra:
        raise ControlError(400, f"{body['kind']} takes no {', '.join(extra)}")
    missing = sorted(
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in body and f.default is dataclasses.MISSING
    )
    if missing:
        raise ControlError(400, f"{body['kind']} needs {', '.join(missing)}")
    rt.device.advance()
    try:
        rt.device.pump.inject(cls(**{k: v for k, v in body.items() if k != "kind"}))
    except fm.Rejected as exc:
        raise ControlError(409, exc.detail) from None
    except ValueError as exc:
        raise ControlError(400, str(exc)) from None
    return cp._done(rt)


async def _clear(cp: ControlPlane, rt: Runtime, params: Any, body: Any, q: Any) -> Any:
    try:
        kind = fm.FaultKind[params["kind"].upper()]
    except KeyError:
        raise ControlError(404, f"no fault kind {params['kind']}") from None
    rt.device.advance()
    try:
        rt.device.pump.clear_fault(kind)
    except fm.Rejected as exc:
        raise ControlError(409, exc.detail) from None
    return cp._done(rt)


async def _reservoir(cp: ControlPlane, rt: Runtime, params: Any, body: Any, q: Any) -> Any:
    rt.device.advance()
    try:
        rt.device.pump.set_true_reservoir(body["true_volume_nl"])
    except ValueError as exc:
        raise ControlError(400, str(exc)) from None
    return cp._done(rt)


async def _reset(cp: ControlPlane, rt: Runtime, params: Any, body: Any, q: Any) -> Any:
    from ._scenario import ScenarioError, builtin_scenarios, load_scenario, starting_pump

    name = body["scenario"]
    if name not in builtin_scenarios():
        raise ControlError(404, f"no scenario {name!r}: one of {', '.join(builtin_scenarios())}")
    dev = rt.device
    dev.advance()
    try:
        pump = starting_pump(load_scenario(name), now_ms=dev.pump.now, serial=dev.pump.serial)
    except ScenarioError as exc:
        raise ControlError(409, str(exc)) from None
    dev.clock.jump_to(pump.now)
    failure = dev.replace_pump(pump)
    if failure is not None:
        raise ControlError(409, failure)
    return cp._done(rt, ControlCode.RESET, 0)


async def _get_link(cp: ControlPlane, rt: Runtime, params: Any, body: Any, q: Any) -> Any:
    return dataclasses.asdict(rt.impairment)


async def _put_link(cp: ControlPlane, rt: Runtime, params: Any, body: Any, q: Any) -> Any:
    try:
        rt.impairment = Impairment(**body)
    except (TypeError, ValueError) as exc:
        raise ControlError(400, str(exc)) from None
    b = int(rt.impairment.drop * 1_000_000)
    cp._done(rt, ControlCode.LINK, -1 if rt.impairment.cut else b)
    return dataclasses.asdict(rt.impairment)


HANDLERS: dict[tuple[str, str], Any] = {
    ("GET", "/v1/pumps/{serial}"): _get_state,
    ("GET", "/v1/pumps/{serial}/events"): _get_events,
    ("PUT", "/v1/pumps/{serial}/speed"): _put_speed,
    ("POST", "/v1/pumps/{serial}/pause"): _pause,
    ("POST", "/v1/pumps/{serial}/resume"): _resume,
    ("POST", "/v1/pumps/{serial}/advance"): _advance,
    ("POST", "/v1/pumps/{serial}/faults"): _inject,
    ("DELETE", "/v1/pumps/{serial}/faults/{kind}"): _clear,
    ("PUT", "/v1/pumps/{serial}/reservoir"): _reservoir,
    ("POST", "/v1/pumps/{serial}/reset"): _reset,
    ("GET", "/v1/pumps/{serial}/link"): _get_link,
    ("PUT", "/v1/pumps/{serial}/link"): _put_link,
}
