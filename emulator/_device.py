"""The pump on the wire: decoded frames in, model commands and durable commits, frames out.

Theory of operation
-------------------
`PumpDevice.receive(item)` takes what the stream decoder produced (a CRC-valid `Frame` or a
`DecodeError`) and returns the frames to send back. It is synchronous and does no I/O except
through its `Store`, so the whole behaviour on the wire is testable without a port or a broker.

1. Framing failures are silent (docs/protocol.md section 10), except an unknown message id or an
   unsupported major version addressed to this pump, which are answered.
2. `PumpSecurity` runs the session pipeline (direction, address, session, replay window, tag,
   schema, role). Its refusals change nothing; security-relevant ones are logged as SECURITY
   records, coalesced per error code (`a` = ErrorCode, `b` = frames refused) so that a flood of
   forged frames cannot push therapy records out of the bounded log. A pending count is written
   (dated at the first frame it counts) before any other record, so the log stays in the order
   things happened: before a session's record, a command's, or what the model does by itself.
3. Before a request is handled the model is advanced to the current model time.
4. Reads answer from the model. Commands follow section 8: a command id seen before returns the
   recorded result (`duplicate = 1`) or `IDEMPOTENCY_MISMATCH`; a new one is applied to the
   model, and the model snapshot, its new log records and the command record are committed in
   one SQLite transaction before the answer is built. If the commit fails the model is put back
   to the last committed state and the answer is `STORAGE_FAILURE`: nothing was applied.
   Refusals are recorded too, except `PROGRAM_VERSION_MISMATCH` and `BUSY`, which a retry with
   the same id may pass.

This module is the device: frames in and out, sessions, the exactly-once journal and the pump's
memory. What a read answers is built in _device_reads.py (`READS`, one builder per read
request), how a command message becomes a model call and its result an answer in
_device_commands.py (`apply_message`, re-exported here for the simulations).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

import firmware_model as fm
import protocol as p

from ._clock import VirtualClock, mono_ms, wall_ms
from ._device_commands import Result, apply_message, command_response
from ._device_reads import READS, U32
from ._store import MAX_COMMANDS, CommandRecord, Store

__all__ = [
    "BEACON_FRAMES",
    "CHECKPOINT_MS",
    "LOG_FLUSH_MS",
    "TRANSIENT",
    "VERSION_REPLY_INTERVAL_MS",
    "ControlCode",
    "DeviceStats",
    "PumpDevice",
    "apply_message",  # from _device_commands.py, imported from here by tests/simulation.py
]

log = logging.getLogger("emulator.device")

_Snapshot = tuple[dict[str, Any], list[fm.Event]]  # model snapshot (without log), and the log

TRANSIENT = frozenset({fm.Reason.PROGRAM_VERSION_MISMATCH, fm.Reason.BUSY})
LOG_FLUSH_MS = 1_000  # log records of sessions and security events reach the disk within this
CHECKPOINT_MS = 60_000  # telemetry battery use reaches the disk within this
VERSION_REPLY_INTERVAL_MS = 1_000  # at most one UNSUPPORTED_VERSION answer per second
# A beacon's frame from its field values (the fleet keeps each pump's header and CRC register)
BEACON_FRAMES = p.FixedFrames(p.TelemetryBeacon, from_pump=True)


class ControlCode:
    """`a` of the CONTROL records the runtime writes (b is given with each)."""

    STARTED = 1  # b: model ms applied for the time the emulator was down
    STOPPED = 2  # b: 0
    SPEED = 3  # b: the new speed factor x1000 (0: paused)
    ADVANCE = 4  # b: model ms the control plane moved time forward
    LINK = 5  # b: share of frames dropped, ppm (-1: link cut)
    RESET = 6  # the pump was replaced by a scenario's starting state


@dataclasses.dataclass
class DeviceStats:
    frames_in: int = 0
    frames_out: int = 0
    decode_errors: int = 0
    refused: int = 0
    commands_applied: int = 0
    commands_rejected: int = 0
    duplicates: int = 0
    commits: int = 0
    storage_failures: int = 0


_THERAPY = p.CommandKind.THERAPY
_COMMAND = p.CommandKind.COMMAND


class PumpDevice:
    """One emulated pump as seen through its telemetry: model, sessions, exactly-once, memory."""

    def __init__(
        self,
        pump: fm.Pump,
        keys: Mapping[p.Role, p.SecretKey],
        *,
        clock: VirtualClock,
        store: Store | None = None,
        randbytes: Callable[[int], bytes] = secrets.token_bytes,
        mono: Callable[[], int] = mono_ms,
        wall: Callable[[], int] = wall_ms,
        policy: p.SessionPolicy | None = None,
        stale_recovery_log: bool = True,
    ) -> None:
        self.pump = pump
        self.clock = clock
        self.store = store
        self.security = p.PumpSecurity(pump.serial, keys, randbytes, policy)
        self.stale_recovery_log = stale_recovery_log
        self.stats = DeviceStats()
        self._mono = mono
        self._wall = wall
        self._commands: dict[bytes, CommandRecord] = {}
        if store is not None:
            self._commands = {r.command_id: r for r in store.commands()}
        # refused frames not yet in the log: code -> [count, pump clock of the first]
        self._security_pending: dict[p.ErrorCode, list[int]] = {}
        # records logged from outside the model and not yet committed (kept across a rollback)
        self._external: list[tuple[fm.EventKind, fm.Source, int, int]] = []
        self._log_dirty_since: int | None = None
        self._last_checkpoint = mono()
        self._telemetry_dirty = False
        self._telemetry_pending = 0
        self._version_reply_at = -VERSION_REPLY_INTERVAL_MS
        # "Stale log until the next read" (domain.md 2.1): a motor-recovery record becomes
        # readable at the second session opened after it was written.
        self._published_upto = pump.event_seq
        self._mark = pump.event_seq
        # The last committed state, to go back to should a commit fail or the model raise.
        # Without a store nothing is written, so it is taken only before a command applies:
        # a fleet of 20,000 idle pumps would keep 20,000 snapshots (~6 KB each) for nothing.
        self._good = self._capture() if store is not None else None
        self.beacon_counter = 0

    # --- time -----------------------------------------------------------------------------

    def advance(self, *, writing: bool = False) -> None:
        """Bring the model to the current model time. `writing`: the caller is about to make
        the model write records (the control plane's faults): pending counts go first."""
        now = self.clock.now()
        if self._security_pending:
            due = self.pump.next_event_time()
            if writing or (due is not None and due <= now):
                self._drain_security()  # the model will log: the refusals came before
        if now > self.pump.now:
            self.pump.advance_to(now)

    def next_wakeup_ms(self) -> int | None:
        """Monotonic ms by which `tick()` must run for housekeeping (None: only model events).
        (Asked after every frame: the earliest of up to three deadlines, without a list.)"""
        due = None if self._log_dirty_since is None else self._log_dirty_since + LOG_FLUSH_MS
        if self._telemetry_dirty:
            checkpoint = self._last_checkpoint + CHECKPOINT_MS
            if due is None or checkpoint < due:
                due = checkpoint
        if self.security.session_count:
            limits = self._mono() + 1_000  # session idle and lifetime limits
            if due is None or limits < due:
                due = limits
        return due

    def tick(self) -> None:
        """Advance the model, end expired sessions, write pending log records when due."""
        self.advance()
        self._charge_telemetry()
        now = self._mono()
        self.security.expire(now)
        self._log_sessions_ended()
        log_due = self._log_dirty_since is not None and now - self._log_dirty_since >= LOG_FLUSH_MS
        checkpoint_due = self._telemetry_dirty and now - self._last_checkpoint >= CHECKPOINT_MS
        if log_due or checkpoint_due:
            self.flush()

    # --- frames in, frames out ------------------------------------------------------------

    def receive(self, item: p.Frame | p.DecodeError) -> list[bytes]:
        if isinstance(item, p.DecodeError):
            self.stats.decode_errors += 1
            return self._decode_error(item)
        self.stats.frames_in += 1
        self.advance()
        now = self._mono()
        inbound = self.security.receive(item, now)
        out: list[bytes] = []
        if isinstance(inbound, p.Rejected):
            self.stats.refused += 1
            if inbound.security_event:
                code = inbound.error.code
                log.info("refused %s frame: %s", inbound.frame.msg_id, code.name)
                self._count_security(code)
            if inbound.reply is not None:
                out.append(inbound.reply)
        elif isinstance(inbound, p.Reply):
            out.append(inbound.data)
            if inbound.what == "session_ready" and inbound.session is not None:
                log.info(
                    "session %08x opened (%s)",
                    inbound.session.session_id,
                    inbound.session.role.name.lower(),
                )
                self._published_upto, self._mark = self._mark, self.pump.event_seq
                self._log_external(
                    fm.EventKind.SESSION_OPENED,
                    int(inbound.session.role),
                    inbound.session.session_id,
                )
        else:
            out.append(self._request(inbound))
        ended = self.security.drain_ended()  # _log_sessions_ended, without a call per frame
        if ended:
            self._log_ended(ended)
        if out:
            # Telemetry costs battery; it is charged to the model in batches (at the next tick
            # or commit, within a second while a session is open), not frame by frame.
            self.stats.frames_out += len(out)
            self._telemetry_pending += len(out)
            self._telemetry_dirty = True
        return out

    def _charge_telemetry(self) -> None:
        if self._telemetry_pending:
            self._drain_security()  # the battery may log a milestone
            self.pump.note_telemetry(self._telemetry_pending)
            self._telemetry_pending = 0

    def refuse_retained(self) -> None:
        """A command frame arrived as a retained MQTT message: dropped, logged as a replay."""
        self.stats.refused += 1
        self._count_security(p.ErrorCode.REPLAYED)

    def _count_security(self, code: p.ErrorCode) -> None:
        """One more refused frame; a SECURITY record per code is written within a second, or
        before the next record of anything else."""
        pending = self._security_pending.get(code)
        if pending is None:
            self._security_pending[code] = [1, self.pump.clock_ms]
        else:
            pending[0] += 1
        if self._log_dirty_since is None:
            self._log_dirty_since = self._mono()

    def beacon_values(self) -> tuple[int, int, int, bool, fm.Alarm, fm.BatteryState]:
        """The next TELEMETRY_BEACON's fields, in declaration order, as the model has them now
        (the beacon counter incremented): `BEACON_FRAMES.tail(crc, *values)`."""
        now, pump = self.clock.now(), self.pump
        if self._security_pending or now <= pump.now:
            self.advance()  # refusals to log first, should the model log too; or no time passed
            state = pump.beacon_state()
        else:  # the model is brought to now only when something happens by then
            state = pump.beacon_state_at(now)
        self.beacon_counter = counter = (self.beacon_counter + 1) & U32
        clock_ms, delivering, alarms, battery = state
        return counter, clock_ms, self.clock.speed_milli, delivering, alarms, battery

    def beacon(self) -> bytes:
        """The next TELEMETRY_BEACON frame."""
        return BEACON_FRAMES.encode(self.pump.serial, *self.beacon_values())

    def _decode_error(self, err: p.DecodeError) -> list[bytes]:
        serial = self.pump.serial
        if isinstance(err, p.UnknownMessage) and err.pump_id in (serial, p.BROADCAST_PUMP_ID):
            msg = p.Error(
                code=p.ErrorCode.UNKNOWN_MESSAGE,
                request_msg_id=err.msg_id,
                command_id=bytes(16),
                detail=f"message id 0x{err.msg_id:04X} is not in protocol "
                f"{p.PROTOCOL_MAJOR}.{p.PROTOCOL_MINOR}: read DEVICE_INFO",
            )
            return [p.encode_frame(msg, pump_id=serial, seq=err.seq, from_pump=True)]
        if isinstance(err, p.UnsupportedVersion):
            now = self._mono()
            if now - self._version_reply_at < VERSION_REPLY_INTERVAL_MS:
                return []
            self._version_reply_at = now
            msg = p.Error(
                code=p.ErrorCode.UNSUPPORTED_VERSION,
                request_msg_id=0,
                command_id=bytes(16),
                detail=f"this pump speaks protocol major version {p.PROTOCOL_MAJOR}",
            )
            return [p.encode_frame(msg, pump_id=serial, seq=0, from_pump=True)]
        return []

    # --- requests -------------------------------------------------------------------------

    def _request(self, req: p.Request) -> bytes:
        msg = req.message
        kind = type(msg).KIND
        if kind is _THERAPY or kind is _COMMAND:  # module globals: no enum class lookup
            return self._command(req)
        return self.security.reply(req, self._read(msg))

    def _read(self, msg: p.Message) -> p.Message:
        build = READS.get(type(msg))
        if build is None:  # pragma: no cover
            raise AssertionError(f"no handler for {type(msg).__name__}")
        return build(self, msg)

    # --- commands: exactly once -----------------------------------------------------------

    def _command(self, req: p.Request) -> bytes:
        msg: Any = req.message
        cid: bytes = msg.command_id
        digest = hashlib.sha256(req.frame.msg_id.to_bytes(2, "little") + req.frame.payload)
        request_hash = digest.digest()[:16]
        rec = self._commands.get(cid)
        if rec is not None:
            if rec.request_hash != request_hash or rec.msg_id != req.frame.msg_id:
                return self.security.error(
                    req,
                    p.ErrorCode.IDEMPOTENCY_MISMATCH,
                    "this command id was already used for another command: use a fresh id "
                    "for every new command and reuse it only for retries",
                )
            self.stats.duplicates += 1
            if rec.state == p.CommandState.REJECTED:
                return self.security.error(req, p.ErrorCode(rec.error_code), rec.detail)
            original = p.MESSAGES_BY_NAME[type(msg).RESPONSES[0]]._decode(rec.response)
            return self.security.reply(req, dataclasses.replace(original, duplicate=True))
        self._drain_security()  # the command's records come after the refusals before it
        if self._good is None:  # no store: this is the state to go back to (it holds the
            self._good = self._capture()  # records logged since the last command)
            self._external.clear()
        try:
            result = self._apply(msg)
        except fm.Rejected as exc:
            code = p.ErrorCode(int(exc.reason))
            record = None
            if exc.reason not in TRANSIENT:
                record = CommandRecord(
                    cid, req.frame.msg_id, request_hash, p.CommandState.REJECTED, code,
                    exc.detail, 0, 0, b"",
                )  # fmt: skip
            failure = self._commit(record)
            if failure is not None:
                return self.security.error(req, p.ErrorCode.STORAGE_FAILURE, failure)
            self.stats.commands_rejected += 1
            return self.security.error(req, code, exc.detail)
        except Exception:  # a model bug: answer INTERNAL, keep the last committed state
            log.exception("command %s failed inside the model", type(msg).__name__)
            self._rollback()
            return self.security.error(
                req, p.ErrorCode.INTERNAL, "internal error: nothing was applied; report it"
            )
        response = command_response(msg, result)
        record = CommandRecord(
            cid, req.frame.msg_id, request_hash, p.CommandState.APPLIED, 0, "",
            result.program_version if hasattr(result, "program_version")
            else self.pump.program_version,
            result.event_seq, response._encode(),
        )  # fmt: skip
        failure = self._commit(record)
        if failure is not None:
            return self.security.error(req, p.ErrorCode.STORAGE_FAILURE, failure)
        self.stats.commands_applied += 1
        return self.security.reply(req, response)

    def _apply(self, msg: Any) -> Result:
        return apply_message(self.pump, msg)

    # --- memory ---------------------------------------------------------------------------

    def _capture(self) -> _Snapshot:
        """The state to go back to if a commit fails: snapshot (without log) and log."""
        return fm.snapshot(self.pump, include_events=False), list(self.pump.events())

    def _rollback(self) -> None:
        """Back to the last committed state. Session, security and control records written
        since are not the failed command's: they are logged again (at the current time)."""
        assert self._good is not None  # taken with every commit, or before a command applies
        snap, events = self._good
        data = {**snap, "state": {**snap["state"], "events": fm.encode_events(events)}}
        self.pump = fm.restore(data)
        self.advance()
        for kind, source, a, b in self._external:
            self.pump.log_external(kind, source, a, b)
        if self._external and self._log_dirty_since is None:
            self._log_dirty_since = self._mono()

    def _log_external(self, kind: fm.EventKind, a: int, b: int) -> None:
        self._drain_security()
        source = fm.Source.CONTROL if kind is fm.EventKind.CONTROL else fm.Source.PROGRAMMER
        self.pump.log_external(kind, source, a, b)
        self._external.append((kind, source, a, b))
        if self._log_dirty_since is None:
            self._log_dirty_since = self._mono()

    def _log_sessions_ended(self) -> None:
        self._log_ended(self.security.drain_ended())

    def _log_ended(self, ended: list[tuple[p.SessionInfo, p.SessionEndReason]]) -> None:
        for info, reason in ended:
            log.info("session %08x ended (%s)", info.session_id, reason.name.lower())
            self._log_external(fm.EventKind.SESSION_CLOSED, int(reason), info.session_id)

    def _drain_security(self) -> None:
        """Write the pending counts, oldest first, each dated at the first frame it counts
        (clamped into the log's order should the pump clock have been set back meanwhile)."""
        if not self._security_pending:
            return
        pending, self._security_pending = self._security_pending, {}
        src = fm.Source.PROGRAMMER
        for code, (count, first_ms) in sorted(pending.items(), key=lambda kv: (kv[1][1], kv[0])):
            events = self.pump.events(self.pump.event_seq)
            newest = events[-1].time_ms if events else first_ms
            at = min(max(first_ms, newest), self.pump.clock_ms)
            self.pump.log_external(fm.EventKind.SECURITY, src, int(code), count, time_ms=at)
            self._external.append((fm.EventKind.SECURITY, src, int(code), count))

    def replace_pump(self, pump: fm.Pump) -> str | None:
        """A new pump takes this one's place (a trainer's reset): same serial and keys, a fresh
        memory; open sessions end. Returns an error text if it could not be stored."""
        if pump.serial != self.pump.serial:
            raise ValueError("the new pump must have the same serial number")
        self.security.end_all()
        self.security.drain_ended()  # they belonged to the old pump's log
        if self.store is not None:
            try:
                self.store.reset(int(pump.profile.id))
            except (sqlite3.Error, OSError) as exc:
                return f"the pump's memory could not be reset: {exc}"
        self.pump = pump
        self._commands.clear()
        self._security_pending.clear()
        self._external.clear()
        self._published_upto = self._mark = pump.event_seq
        self.advance()
        return self._commit(None)

    def log_control(self, code: int, b: int = 0) -> None:
        """A CONTROL record (runtime start and stop, and the control plane's actions)."""
        self._log_external(fm.EventKind.CONTROL, code, b)

    def flush(self) -> str | None:
        """Commit pending log records and the telemetry count. Returns an error text or None."""
        return self._commit(None)

    def _commit(self, command: CommandRecord | None) -> str | None:
        self._drain_security()
        self._charge_telemetry()
        store = self.store
        good = None
        if store is not None:
            good = self._capture()
            try:
                store.commit(
                    good[0],
                    self.pump.events(max(store.persisted_seq + 1, self.pump.oldest_seq)),
                    self.pump.oldest_seq,
                    self.pump.now,
                    self._wall(),
                    self.clock.speed_milli,
                    command,
                )
            except (sqlite3.Error, OSError) as exc:
                # An error after the transaction committed (the disk has it) is a success: the
                # command record decides, so the answer never says "not applied" wrongly.
                if command is None or not store.command_recorded(command.command_id):
                    self.stats.storage_failures += 1
                    log.error("could not persist the pump state: %s", exc)
                    self._rollback()
                    return f"the pump could not store the change ({type(exc).__name__}); "\
                        "nothing was applied: retry with the same command id"  # fmt: skip
                log.warning("an error after the commit (%s): the change is stored", exc)
            self.stats.commits += 1
        if command is not None:
            self._commands[command.command_id] = command
            if len(self._commands) > MAX_COMMANDS:
                del self._commands[next(iter(self._commands))]
        self._good = good
        self._external.clear()
        self._log_dirty_since = None
        self._telemetry_dirty = False
        self._last_checkpoint = self._mono()
        return None
