"""The web programmer's one session with one pump: the connection and its state, the prepared
Finish screens (each committed at most once), and the trainee's activity (what was sent, which
warnings were confirmed) that a grader reads. Everything goes through the programmer library.

Lost link and UNKNOWN outcome: a request that gets no answer raises `Unreachable`; the session
shows "link lost" and the next request tries again (the library renews the session itself). A
command whose fate stays unknown (`OutcomeUnknown`) is listed as unresolved, never re-sent:
"Reconnect" opens a new connection, whose start resolves it by GET_COMMAND_STATUS from the
journal (`Pump.recovered`), exactly as `pump-programmer` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from pathlib import Path
from typing import Any

import protocol as p

from . import _web_units as u
from ._change import Change
from ._connect import connect
from ._errors import BadInput, ConfirmationNeeded, OutcomeUnknown, ProgrammerError, Unreachable
from ._pump import Pump
from ._web_view import event, status_summary, summary, verdict
from ._zone import record_details


class Gone(ProgrammerError):
    """A Finish screen that was already sent or discarded (commit exactly once)."""


class WebSession:
    def __init__(
        self,
        address: str,
        key: Path,
        *,
        journal: Path | None = None,
        timeout_s: float | None = None,
        activity: Path | None = None,
    ) -> None:
        self.address = address
        self.key = key
        self.journal = journal
        self.timeout_s = timeout_s
        self.activity_path = activity
        self.pump: Pump | None = None
        self.state = "disconnected"
        self.detail = ""
        self.unresolved: list[dict[str, str]] = []
        self.resolved: list[dict[str, str]] = []
        self.activity: list[dict[str, Any]] = []
        self._stack: contextlib.AsyncExitStack | None = None
        self._changes: dict[str, tuple[str, Change]] = {}
        self._ids = itertools.count(1)
        self._connecting = asyncio.Lock()
        self.connected_at = 0.0
        self._first: asyncio.Task[Any] | None = None
        self._first_status: asyncio.Task[p.Status] | None = None
        self._in_flight = 0  # library calls running (a poll waits for none)
        self._committing = False  # a Finish screen is being sent

    # --- connection -----------------------------------------------------------------------

    async def open(self) -> None:
        async with self._connecting:
            await self._close()
            self.state, self.detail = "connecting", f"connecting to {self.address}"
            stack = contextlib.AsyncExitStack()
            try:
                self.pump = await stack.enter_async_context(
                    connect(
                        self.address,
                        key=self.key,
                        journal=self.journal,
                        timeout_s=self.timeout_s,
                    )
                )
            except ProgrammerError as exc:
                await stack.aclose()
                self.state, self.detail = "disconnected", f"{type(exc).__name__}: {exc}"
                return
            self._stack = stack
            self.connected_at = time.monotonic()
            # the first interrogation starts at once, while the page loads (bench/
            # web_first_interrogation.py); the page's first summary is this one
            pump = self.pump
            status = asyncio.create_task(pump.status())
            self._first_status = status

            async def the_rest() -> Any:
                return await pump.interrogate(await status)

            self._first = asyncio.create_task(the_rest())
            self.state, self.detail = "connected", f"session with pump {self.pump.serial}"
            for cid, message, outcome in self.pump.recovered:
                self.unresolved = [x for x in self.unresolved if x["command_id"] != cid.hex()]
                entry = {"command_id": cid.hex(), "command": message, "outcome": outcome}
                self.resolved.append(entry)
                self._note("resolved", entry)

    async def _close(self) -> None:
        self._changes.clear()
        await self._drop_first()
        stack, self._stack, self.pump = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(ProgrammerError, OSError):
                await stack.aclose()

    async def close(self) -> None:
        async with self._connecting:
            await self._close()
            self.state = "disconnected"

    def view(self) -> dict[str, Any]:
        pump = self.pump
        return {
            "state": self.state,
            "detail": self.detail,
            "address": self.address,
            "serial": pump.serial if pump else None,
            "role": pump.role.name.lower() if pump else None,
            "counters": (
                f"{pump.handshakes} handshake(s), {pump.resends} resend(s)" if pump else None
            ),
            "speed_factor": pump.speed_factor if pump else None,
            "unresolved": self.unresolved,
            "resolved": self.resolved,
        }

    def _pump(self) -> Pump:
        if self.pump is None:
            raise Unreachable(f"not connected to the pump ({self.detail}): press Reconnect")
        return self.pump

    async def call(self, coro_fn: Any) -> Any:
        """Run one library call; a lost link or unknown outcome updates the state shown."""
        pump = self._pump()
        self._in_flight += 1
        try:
            result = await coro_fn(pump)
        except OutcomeUnknown as exc:
            self.state = "outcome unknown"
            self.detail = str(exc)
            self.unresolved.append(
                {"command_id": exc.command_id.hex(), "command": "", "outcome": "unknown"}
            )
            raise
        except Unreachable as exc:
            self.state, self.detail = "link lost", str(exc)
            raise
        finally:
            self._in_flight -= 1
        if self.state != "connected" and not self.unresolved:
            self.state, self.detail = "connected", f"session with pump {pump.serial}"
        elif self.state == "link lost":
            self.state = "outcome unknown" if self.unresolved else "connected"
        return result

    # --- reads ----------------------------------------------------------------------------

    async def _drop_first(self) -> None:
        self._first_status = None
        first, self._first = self._first, None
        if first is not None and not first.done():
            first.cancel()
        if first is not None:
            with contextlib.suppress(asyncio.CancelledError, ProgrammerError):
                await first

    async def quick(self) -> dict[str, Any]:
        """The first screen after connecting: the STATUS read at connect (the full summary
        follows from `interrogate()`); a full summary when that one was already used."""
        status = self._first_status
        if status is None:
            return await self.interrogate()
        st = await self.call(lambda pump: status)
        assert self.pump is not None and self.pump.device is not None
        return status_summary(self.pump.device, st)

    async def interrogate(self) -> dict[str, Any]:
        """The interrogation summary: the one read at connect if nothing was asked since,
        else a fresh one."""
        self._first_status = None
        first, self._first = self._first, None
        if first is not None:
            snap = await self.call(lambda pump: first)
        else:
            snap = await self.call(lambda pump: pump.interrogate())
        return summary(snap)

    async def poll(self) -> dict[str, Any]:
        """The page's light status poll: one STATUS read, the summary's rows it answers and the
        active alarms by name. Never while a Finish screen is being sent, beside another
        library call or while an outcome is unknown: then `skipped` says why and nothing is
        read."""
        if self._committing:
            return {"skipped": "a Finish screen is being sent"}
        if self.unresolved:  # the state says UNKNOWN until Reconnect resolves it
            return {"skipped": "an outcome is unknown: press Reconnect"}
        first = self._first
        if self._in_flight or (first is not None and not first.done()) or self.pump is None:
            return {"skipped": "the programmer is busy" if self.pump else self.detail}
        st = await self.call(lambda pump: pump.status())
        assert self.pump is not None and self.pump.device is not None
        out = status_summary(self.pump.device, st)
        return {"skipped": None, "rows": out["rows"], "alarms": [a["alarm"] for a in out["alarms"]]}

    async def events(self, last: int) -> list[dict[str, Any]]:
        async def read(pump: Pump) -> list[p.EventRecord]:
            return [r async for r in pump.events()]

        records = await self.call(read)
        details = record_details(records)
        return [event(r, details.get(r.seq, "")) for r in records[-last:]][::-1]

    # --- Finish screens -------------------------------------------------------------------

    async def prepare(self, kind: str, form: dict[str, Any]) -> dict[str, Any]:
        """Read the form (BadInput before anything is sent), prepare the Change, keep it."""
        await self._drop_first()
        build = _PREPARE.get(kind)
        if build is None:
            raise BadInput(f"unknown change {kind!r}: one of {', '.join(_PREPARE)}")
        change: Change = await self.call(lambda pump: build(pump, form))
        cid = f"c{next(self._ids)}"
        self._changes[cid] = (kind, change)
        return {
            "id": cid,
            "kind": kind,
            "title": change.title,
            "diff": change.diff,
            "warnings": change.warnings,
            "verdict": verdict(change.diff, change.warnings) if kind == "refill" else None,
        }

    def discard(self, cid: str) -> None:
        self._changes.pop(cid, None)

    async def commit(self, cid: str, confirm: bool) -> dict[str, Any]:
        """Send a prepared change exactly once: it leaves the table before the first send, so
        a second press (or a retry of the HTTP request) is refused, never sent again."""
        entry = self._changes.get(cid)
        if entry is None:
            raise Gone("this Finish screen was already sent or discarded: prepare it again")
        kind, change = entry
        if change.warnings and not confirm:
            raise ConfirmationNeeded(change.warnings)
        del self._changes[cid]
        record = {"kind": kind, "warnings_confirmed": change.warnings if confirm else []}
        self._committing = True
        try:
            result = await self.call(lambda pump: change.commit(confirm=confirm))
        except ProgrammerError as exc:
            self._note("failed", {**record, "error": f"{type(exc).__name__}: {exc}"})
            if isinstance(exc, OutcomeUnknown):
                self.unresolved[-1]["command"] = change.message.NAME
            raise
        finally:
            self._committing = False
        self._note("sent", record)
        version = getattr(result, "program_version", None)
        return {"sent": change.title, "program_version": version}

    async def command(self, kind: str, form: dict[str, Any]) -> dict[str, Any]:
        """A command without a Finish screen (alarms, clock): the page confirms it first."""
        await self._drop_first()
        if kind == "ack":
            bits = u.alarms(form.get("alarms"))
            await self.call(lambda pump: pump.acknowledge_alarms(bits))
            text = "acknowledged"
        elif kind == "silence":
            bits = u.alarms(form.get("alarms"))
            ms = u.minutes(form.get("minutes"), "silence for")
            await self.call(lambda pump: pump.silence_alarms(bits, ms))
            text = f"silenced for {ms // 60_000} min"
        elif kind == "clock":
            zone = str(form.get("zone") or "UTC")
            await self.call(lambda pump: pump.sync_clock(zone=zone))
            text = f"clock set to this computer's time ({zone})"
        elif kind in ("suspend", "resume"):
            await self.call(lambda pump: getattr(pump, kind)())
            text = "suspended: no delivery until resume" if kind == "suspend" else "resumed"
        else:
            raise BadInput(f"unknown command {kind!r}")
        self._note("sent", {"kind": kind, "warnings_confirmed": []})
        return {"sent": text}

    def _note(self, what: str, entry: dict[str, Any]) -> None:
        row = {"t": time.time(), "what": what, **entry}
        self.activity.append(row)
        if self.activity_path is not None:
            with self.activity_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")


# --- the forms: text as typed -> prepare_*() --------------------------------------------------


async def _dose(pump: Pump, f: dict[str, Any]) -> Change:
    return await pump.prepare_dose(u.mass(f.get("dose"), "daily dose", per_day=True))


async def _refill(pump: Pump, f: dict[str, Any]) -> Change:
    withdrawn = u.volume(f.get("withdrawn"), "aspirated (withdrawn) volume")
    added = u.volume(f.get("added"), "added volume")
    drug = u.drug(f.get("drug"), "drug")
    value, unit = u.concentration(f.get("concentration"), "concentration")
    low = u.volume(f["low_alarm"], "low-reservoir alarm") if f.get("low_alarm") else None
    return await pump.prepare_refill(
        withdrawn_nl=withdrawn,
        added_nl=added,
        drug=drug,
        conc_ng_per_ml=value,
        unit=unit,
        low_threshold_nl=low,
    )


async def _schedule(pump: Pump, f: dict[str, Any]) -> Change:
    steps = u.steps(f.get("steps"), "schedule")
    most = pump.device.max_schedule_steps if pump.device else 0
    if most and len(steps) > most:
        raise BadInput(f"schedule: this pump takes at most {most} steps, not {len(steps)}")
    return await pump.prepare_schedule(steps)


async def _bolus(pump: Pump, f: dict[str, Any]) -> Change:
    dose = u.mass(f.get("dose"), "bolus dose")
    return await pump.prepare_bolus(dose, u.minutes(f.get("minutes"), "over"))


async def _priming(pump: Pump, f: dict[str, Any]) -> Change:
    return await pump.prepare_priming()


async def _bridge(pump: Pump, f: dict[str, Any]) -> Change:
    previous, _ = u.concentration(f.get("previous"), "previous concentration")
    dose = u.mass(f.get("dose"), "daily dose", per_day=True)
    return await pump.prepare_bridge(previous, dose)


async def _patient_bolus(pump: Pump, f: dict[str, Any]) -> Change:
    enabled = bool(f.get("enabled"))
    return await pump.prepare_patient_bolus(
        enabled=enabled,
        dose_ng=u.mass(f.get("dose"), "patient bolus dose") if enabled else 0,
        duration_ms=u.minutes(f.get("minutes"), "over") if enabled else 0,
        lockout_ms=u.minutes(f.get("lockout"), "lockout") if enabled else 0,
        max_per_24h=u.count(f.get("max_per_day"), "at most a day", 1, 24) if enabled else 0,
    )


async def _suspend(pump: Pump, f: dict[str, Any]) -> Change:
    return await pump.prepare_suspend()


async def _resume(pump: Pump, f: dict[str, Any]) -> Change:
    return await pump.prepare_resume()


async def _alarm_settings(pump: Pump, f: dict[str, Any]) -> Change:
    """A field left blank keeps its setting."""
    low = u.volume(f["low_alarm"], "low-reservoir alarm") if f.get("low_alarm") else None
    crit = u.minutes(f["critical"], "critical repeat") if f.get("critical") else None
    other = u.minutes(f["noncritical"], "non-critical repeat") if f.get("noncritical") else None
    if low is None and crit is None and other is None:
        raise BadInput("alarm settings: give at least one new setting")
    return await pump.prepare_alarm_settings(
        low_threshold_nl=low, critical_repeat_ms=crit, noncritical_repeat_ms=other
    )


_PREPARE = {
    "dose": _dose,
    "refill": _refill,
    "schedule": _schedule,
    "bolus": _bolus,
    "priming": _priming,
    "bridge": _bridge,
    "patient_bolus": _patient_bolus,
    "suspend": _suspend,
    "resume": _resume,
    "alarm_settings": _alarm_settings,
}
