"""An async programmer session with one pump: handshake, sealed requests, retries, workflows.

Theory of operation
-------------------
`connect()` opens the link, asks the pump who it is (plain GET_DEVICE_INFO: serial number and
speed factor), runs the handshake, then resolves the journal's unfinished commands for this
pump with GET_COMMAND_STATUS. Every request is sealed with a fresh seq and counter and answered
by the frame with the same seq (a late answer to an earlier attempt of the same request counts
too). Only sealed frames of our session that pass its checks (tag, replay window) are
answers: a plain ERROR about a sealed request is counted and ignored (anyone on the line can
forge one), and so is a replayed or forged sealed frame. On a timeout the request is sent again,
resealed; a command keeps its command id, which the journal holds from before the first send.
If the pump says (sealed) the session ended, or the request timed out after a plain
session-lost ERROR (a pump restart forgets sessions), a new handshake runs and the same request
goes again. When the retries are spent, a command's fate is
asked with GET_COMMAND_STATUS; if that fails too, `OutcomeUnknown` is raised and the journal
keeps the id for the next connection. Nothing is ever re-sent under a new id.

When the course goes wrong (docs/programmer.md section 9; the wording in _diagnosis.py): a plain
ERROR WRONG_PUMP from another serial ends the connection with `WrongPump` (never re-targeted);
no answer on MQTT names the pumps online on the broker; the first BUSY of a request re-reads
the pump's speed and raises `PumpTimePaused` if its self test cannot end soon.

Changes follow the Finish-screen pattern: `prepare_*()` reads what it needs, returns a `Change`
with the old and new settings side by side, the derived rate, daily dose and alarm dates and any
warnings; `Change.commit()` sends it with compare-and-set on the program version it was
prepared against. Each Finish screen is a module of its own, programmer/_finish_<name>.py
(`_finish_refill.py`: the refill), built with programmer/_change.py; `Pump` binds them as its
`prepare_*` methods.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import protocol as p

from . import (
    _finish_alarm_settings,
    _finish_bolus,
    _finish_bridge,
    _finish_delivery,
    _finish_dose,
    _finish_drug,
    _finish_patient_bolus,
    _finish_priming,
    _finish_refill,
    _finish_schedule,
)
from ._answers import answers as _answers
from ._answers import confirm_device, sealed_exchange
from ._change import Change  # noqa: F401 (its old home: programmer._pump.Change)
from ._diagnosis import BUSY_LIMIT_S, busy_stuck, foreign_answer, online_listing
from ._errors import (
    BadInput,
    KeyMismatch,
    OutcomeUnknown,
    PumpTimePaused,
    Refused,
    Unreachable,
    WrongPump,
)
from ._finish_refill import REFILL_KIND  # noqa: F401 (its old home)
from ._interrogation import Interrogation
from ._journal import APPLIED, NOT_APPLIED, REJECTED, Journal
from ._links import Address, Link
from ._zone import LocalClock, read_local_clock, zone_offset_ms

NETWORK_TIMEOUT_S = 2.0
PUMP_ACT_S = 0.5  # docs/protocol.md section 11: time a pump may take to act
RETRIES = 4
BUSY_WAIT_S = 0.25
_SESSION_LOST = {
    p.ErrorCode.SESSION_EXPIRED,
    p.ErrorCode.AUTH_FAILED,
    p.ErrorCode.NOT_AUTHENTICATED,
}
_NOT_RECORDED = {p.ErrorCode.PROGRAM_VERSION_MISMATCH, p.ErrorCode.BUSY}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Pump:
    """One session with one pump. Create it with `programmer.connect(...)`."""

    def __init__(
        self,
        link: Link,
        address: Address,
        role: p.Role,
        key: p.SecretKey,
        journal: Journal,
        *,
        timeout_s: float | None = None,
        retries: int = RETRIES,
        host_id: int | None = None,
    ) -> None:
        self.link = link
        self.address = address
        self.role = role
        self._key = key
        self.journal = journal
        self.retries = retries
        self.host_id = journal.host_id if host_id is None else host_id
        self._timeout_s = timeout_s
        self.serial = address.pump_serial or 0
        self.security: p.HostSecurity | None = None
        self.device: p.DeviceInfo | None = None
        self.recovered: list[tuple[bytes, str, str]] = []  # (id, message, outcome) at connect
        self._seq = secrets.randbelow(0xFFFF)
        self._lock = asyncio.Lock()
        # told "connecting to ...: attempt n of m" before each try to reach the pump, then ""
        # once it answered (the CLI shows it on a terminal; a dead port is not silent)
        self.progress: Callable[[str], None] | None = None
        self._connecting = False
        self.handshakes = 0
        self.resends = 0
        self._foreign: int | None = None  # serial of a pump that said our frame was not for it
        self.plain_errors_ignored = 0  # plain ERRORs about a sealed request: never its outcome
        self.frames_refused = 0  # pump frames that failed a session check (tag, replay window)
        self.device_claims_refuted = 0  # plain DEVICE_INFO answers the sealed one contradicted

    # --- session --------------------------------------------------------------------------

    @property
    def speed_factor(self) -> float:
        """The pump's time acceleration (1.0 for a real pump): pump durations pass this many
        times faster than real ones."""
        return (self.device.speed_factor_milli if self.device else 1000) / 1000

    def real_seconds(self, pump_ms: int) -> float:
        """Real seconds a duration on the pump's clock takes (for waits and timeouts)."""
        speed = self.device.speed_factor_milli if self.device else 1000
        return float("inf") if speed == 0 else pump_ms / speed

    async def wait_pump_ms(self, pump_ms: int) -> None:
        """Wait while `pump_ms` pass on the pump's clock: a bolus, a lockout, a silence. Against
        an accelerated emulator this is `speed_factor` times shorter in real time."""
        seconds = self.real_seconds(pump_ms)
        if seconds == float("inf"):
            raise BadInput("the pump's time is paused: it would never pass")
        await asyncio.sleep(seconds)

    def _timeout(self, request: bytes) -> float:
        if self._timeout_s is not None:
            return self._timeout_s
        rate = self.link.bytes_per_s
        if rate is None:
            return NETWORK_TIMEOUT_S
        return (len(request) + p.MAX_FRAME) / rate + PUMP_ACT_S

    def _next_seq(self) -> int:
        self._seq = self._seq % 0xFFFF + 1
        return self._seq

    async def start(self) -> None:
        self._connecting = True
        try:
            info = await self._plain(p.GetDeviceInfo())
        finally:
            self._connecting = False
            if self.progress is not None:
                self.progress("")
        assert isinstance(info, p.DeviceInfo)
        self.device = info
        self.serial = info.serial_number
        self.security = p.HostSecurity(
            self.serial, self.role, self._key, secrets.token_bytes, host_id=self.host_id
        )
        await self._handshake()
        await confirm_device(self)
        await self._resolve_journal()

    async def _plain(self, msg: p.Message) -> p.Message:
        target = self.serial or p.BROADCAST_PUMP_ID
        self._foreign = None
        for attempt in range(self.retries + 1):
            if self.progress is not None and self._connecting:
                self.progress(
                    f"connecting to {self.address}: attempt {attempt + 1} of {self.retries + 1}"
                )
            seq = self._next_seq()
            data = p.encode_frame(msg, pump_id=target, seq=seq, from_pump=False)
            frame = await self._exchange(data, {seq})
            if self.serial and self._foreign is not None:
                raise WrongPump(self.serial, self._foreign, str(self.address))
            if frame is not None and not frame.authenticated:
                try:
                    answer = frame.decode()
                except p.MessageError:
                    continue
                if not _answers(answer, msg):
                    continue
                if isinstance(answer, p.Error):
                    raise Refused(answer, msg.NAME)
                return answer
        online = getattr(self.link, "online_pumps", None)
        hint = online_listing(self.serial, await online()) if online and self.serial else ""
        raise Unreachable(f"no answer from a pump on {self.address}{hint}")

    async def _exchange(self, data: bytes, seqs: set[int]) -> p.Frame | None:
        """Send; the first pump frame answering one of `seqs`, or None after the timeout.
        Sealed frames of other sessions (another programmer on the same broker) are skipped."""
        await self.link.send(data)
        sec = self.security
        session = sec.session if sec is not None else None
        try:
            async with asyncio.timeout(self._timeout(data)):
                while True:
                    frame = await self.link.recv()
                    if frame.seq not in seqs or not frame.from_pump:
                        continue
                    if self.serial and frame.pump_id != self.serial:
                        foreign = foreign_answer(frame)
                        if foreign is not None and sec is None:
                            self._foreign = foreign  # reported, never switched to
                            return None
                        continue
                    if frame.authenticated and session and frame.session_id != session.session_id:
                        continue
                    return frame
        except TimeoutError:
            return None

    async def _handshake(self) -> None:
        sec = self.security
        assert sec is not None
        unproven: str | None = None
        for _ in range(self.retries + 1):
            seq = self._next_seq()
            frame = await self._exchange(sec.hello(seq=seq), {seq})
            if frame is None:
                continue
            try:
                event = sec.receive(frame)
            except p.HandshakeFailed as exc:
                # A CHALLENGE that does not prove the key: our key is wrong, or it is a stale or
                # duplicated answer (a pump restart, a broker redelivery). Try again; only when
                # no attempt succeeds is it the key.
                unproven = str(exc)
                continue
            except p.ProtocolError:
                continue
            if isinstance(event, p.Response) and isinstance(event.message, p.Error):
                if event.message.request_msg_id not in (0, p.Hello.MSG_ID):
                    continue  # drawn by noise in another frame (docs/protocol.md section 10)
                raise Refused(event.message, "HELLO")
            if not isinstance(event, p.Send):
                continue
            self._next_seq()  # HostSecurity seals CONFIRM with the hello's seq + 1
            frame = await self._exchange(event.data, {seq % 0xFFFF + 1})
            if frame is None:
                continue
            try:
                ready = sec.receive(frame)
            except p.ProtocolError:
                continue
            if isinstance(ready, p.Response) and isinstance(ready.message, p.Error):
                if ready.message.request_msg_id not in (0, p.Confirm.MSG_ID):
                    continue
                if ready.message.code is p.ErrorCode.HANDSHAKE_FAILED:
                    raise KeyMismatch(f"the pump refused our key: {ready.message.detail}")
                raise Refused(ready.message, "CONFIRM")
            if isinstance(ready, p.Established):
                self.handshakes += 1
                return
        if unproven is not None:
            raise KeyMismatch(unproven)
        raise Unreachable(f"no handshake with pump {self.serial} on {self.address}")

    async def _resolve_journal(self) -> None:
        for entry in self.journal.pending(self.serial):
            status = await self.request(p.GetCommandStatus(command_id=entry.command_id))
            outcome = _outcome(status)
            if outcome is None:  # never committed: safe, and not re-sent behind anyone's back
                outcome = NOT_APPLIED
            self.journal.finish(entry.command_id, outcome, status.error_code)
            self.recovered.append((entry.command_id, entry.message, outcome))

    async def close(self) -> None:
        try:
            if self.security is not None and self.security.established:
                seq = self._next_seq()
                data = self.security.seal(p.EndSession(), seq=seq)
                await self.link.send(data)
        except (p.ProtocolError, Unreachable):
            pass  # the pump ends the session itself after its idle limit
        finally:
            await self.link.close()

    # --- requests -------------------------------------------------------------------------

    async def request(self, msg: p.Message) -> Any:
        """Send one request in the session and return the pump's answer (ERROR raises Refused).
        Retries after a timeout, renews an ended session, waits out the self test."""
        async with self._lock:
            return await self._request(msg)

    async def _request(self, msg: p.Message) -> Any:
        sec = self.security
        assert sec is not None
        seqs: set[int] = set()
        attempt = 0
        busy_until: float | None = None
        while attempt <= self.retries:
            if not sec.established:
                await self._handshake()
            seq = self._next_seq()
            seqs.add(seq)
            answer, hint = await self._sealed_exchange(sec.seal(msg, seq=seq), seqs, msg)
            if answer is None:
                attempt += 1
                self.resends += 1
                if hint is not None and hint.code in _SESSION_LOST:
                    # Only a hint (anyone can forge a plain error), taken after the timeout
                    # found no sealed answer: the pump may have restarted and forgotten the
                    # session. A new handshake, then the same request (same command id).
                    sec.forget()
                continue
            if isinstance(answer, p.Error) and answer.code is p.ErrorCode.BUSY:
                if busy_until is None:
                    await self._busy_can_end(answer, msg)
                    busy_until = time.monotonic() + BUSY_LIMIT_S
                if time.monotonic() < busy_until:  # the self test: wait, do not count it
                    await asyncio.sleep(BUSY_WAIT_S)
                    continue
            attempt += 1
            if isinstance(answer, p.Error):
                if answer.code in _SESSION_LOST:
                    sec.forget()  # the pump lost our session: handshake, same request again
                    continue
                raise Refused(answer, msg.NAME)
            return answer
        raise Unreachable(f"pump {self.serial} did not answer {msg.NAME} on {self.address}")

    async def _sealed_exchange(
        self, data: bytes, seqs: set[int], msg: p.Message
    ) -> tuple[p.Message | None, p.Error | None]:
        return await sealed_exchange(self, data, seqs, msg)

    async def _busy_can_end(self, busy: p.Error, msg: p.Message) -> None:
        """First BUSY of a request: read the pump's speed afresh (the trainer may have paused
        it since we connected); raise PumpTimePaused if its self test cannot end soon."""
        try:  # sealed, in the session: a forged plain "speed 0" must not make us give up
            info = await self._request(p.GetDeviceInfo())
            if isinstance(info, p.DeviceInfo):
                self.device = info
        except (Unreachable, Refused):
            pass  # keep what DEVICE_INFO said at connect
        speed = self.device.speed_factor_milli if self.device else 1000
        why = busy_stuck(speed, busy.detail)
        if why is not None:
            raise PumpTimePaused(busy, msg.NAME, self.serial, why)

    async def send_command(self, msg: p.Message) -> Any:
        """A state-changing command, exactly once: journaled before the first send, retried
        with the same id, its fate resolved by status if the answers are lost."""
        cid = getattr(msg, "command_id", None)
        if not isinstance(cid, bytes):
            raise BadInput(f"{msg.NAME} is not a command")
        async with self._lock:
            self.journal.begin(cid, self.serial, msg.NAME, msg._encode())
            try:
                answer = await self._request(msg)
            except Refused as exc:
                if exc.code in _NOT_RECORDED or exc.code is p.ErrorCode.IDEMPOTENCY_MISMATCH:
                    self.journal.finish(cid, NOT_APPLIED, exc.code)
                else:
                    self.journal.finish(cid, REJECTED, exc.code)
                raise
            except Unreachable as exc:
                await self._settle_unknown(cid, str(exc))
                raise  # _settle_unknown raises when it learns the fate
            self.journal.finish(cid, APPLIED)
            return answer

    async def _settle_unknown(self, cid: bytes, detail: str) -> None:
        sec = self.security
        assert sec is not None
        try:
            status = await self._request(p.GetCommandStatus(command_id=cid))
            if _outcome(status) is None:
                # UNKNOWN is final only from a session newer than the one the attempts went in:
                # the new handshake ends that session (SUPERSEDED, protocol.md section 5), so
                # no attempt still in flight (a held-up MQTT message) can be applied after it.
                sec.forget()
                await self._handshake()
                status = await self._request(p.GetCommandStatus(command_id=cid))
        except (Unreachable, Refused, KeyMismatch):
            raise OutcomeUnknown(cid, detail) from None
        outcome = _outcome(status)
        if outcome is None:
            self.journal.finish(cid, NOT_APPLIED)
            raise Unreachable(f"{detail}; the pump never applied command {cid.hex()}")
        self.journal.finish(cid, outcome, status.error_code)
        if outcome == APPLIED:
            raise OutcomeUnknown(
                cid, f"{detail}; the pump did apply it (version {status.program_version})"
            )
        raise Refused(
            p.Error(
                code=p.ErrorCode(status.error_code),
                request_msg_id=0,
                command_id=cid,
                detail="refused (learnt from command status)",
            ),
            "command",
        )

    # --- reads ----------------------------------------------------------------------------

    async def status(self) -> p.Status:
        st: p.Status = await self.request(p.GetStatus())
        return st

    async def program(self) -> p.Program:
        prog: p.Program = await self.request(p.GetProgram())
        return prog

    async def drug(self) -> p.DrugInfo:
        d: p.DrugInfo = await self.request(p.GetDrug())
        return d

    async def patient_bolus(self) -> p.PatientBolusSettings:
        pb: p.PatientBolusSettings = await self.request(p.GetPatientBolus())
        return pb

    async def alarms(self) -> tuple[p.AlarmEntry, ...]:
        lst: p.AlarmList = await self.request(p.GetAlarms())
        return lst.alarms

    async def alarm_settings(self) -> p.AlarmSettings:
        s: p.AlarmSettings = await self.request(p.GetAlarmSettings())
        return s

    async def catheter(self) -> p.CatheterInfo:
        """The fluid path's volumes the pump holds (protocol 1.1): catheter and pump tubing.
        A 1.0 pump refuses it (`Refused`, UNKNOWN_MESSAGE)."""
        c: p.CatheterInfo = await self.request(p.GetCatheterInfo())
        return c

    async def clock(self) -> p.Clock:
        c: p.Clock = await self.request(p.GetClock())
        return c

    async def local_clock(self) -> LocalClock | None:
        """The clock with the offset and zone of the last sync; None from a 1.0 pump."""
        return await read_local_clock(self)

    async def command_status(self, command_id: bytes) -> p.CommandStatus:
        s: p.CommandStatus = await self.request(p.GetCommandStatus(command_id=command_id))
        return s

    async def events(self, cursor: int = 0, page_size: int = 16) -> AsyncIterator[p.EventRecord]:
        """The event log, oldest first, fetched a page at a time."""
        if not 1 <= page_size <= 16:
            raise BadInput("page_size must be 1..16")
        more = True
        while more:
            page: p.EventPage = await self.request(p.GetEvents(cursor=cursor, max_count=page_size))
            for record in page.events:
                yield record
            cursor, more = page.next_cursor, page.more and bool(page.events)

    async def interrogate(self, status: p.Status | None = None) -> Interrogation:
        """Everything a clinician reviews, read in one go (with `status`: that STATUS, just
        read, and the rest)."""
        assert self.device is not None
        clinician = self.role is p.Role.CLINICIAN
        status = await self.status() if status is None else status
        return Interrogation(
            device=self.device,
            status=status,
            drug=await self.drug() if clinician else None,
            program=await self.program() if clinician else None,
            patient_bolus=await self.patient_bolus(),
            alarms=await self.alarms(),
            alarm_settings=await self.alarm_settings() if clinician else None,
            clock=await self.clock(),
            local_clock=await self.local_clock(),
        )

    # --- commands without a Finish screen ---------------------------------------------------

    def _id(self) -> bytes:
        return uuid.uuid4().bytes

    async def _version(self) -> int:
        return (await self.status()).program_version

    async def cancel_bolus(self) -> p.CommandAck:
        msg = p.CancelBolus(command_id=self._id(), expected_program_version=await self._version())
        ack: p.CommandAck = await self.send_command(msg)
        return ack

    async def suspend(self) -> p.CommandAck:
        msg = p.Suspend(command_id=self._id(), expected_program_version=await self._version())
        ack: p.CommandAck = await self.send_command(msg)
        return ack

    async def resume(self) -> p.CommandAck:
        msg = p.Resume(command_id=self._id(), expected_program_version=await self._version())
        ack: p.CommandAck = await self.send_command(msg)
        return ack

    async def acknowledge_alarms(self, alarms: p.Alarm) -> p.CommandAck:
        ack: p.CommandAck = await self.send_command(
            p.AcknowledgeAlarms(command_id=self._id(), alarms=alarms)
        )
        return ack

    async def silence_alarms(self, alarms: p.Alarm, duration_ms: int) -> p.CommandAck:
        ack: p.CommandAck = await self.send_command(
            p.SilenceAlarms(command_id=self._id(), alarms=alarms, duration_ms=duration_ms)
        )
        return ack

    async def alarm_test(self, tone: p.Tone = p.Tone.TWO_TONE) -> p.CommandAck:
        ack: p.CommandAck = await self.send_command(p.AlarmTest(command_id=self._id(), tone=tone))
        return ack

    async def sync_clock(
        self, pump_time_ms: int | None = None, *, zone: str | None = None
    ) -> p.CommandAck:
        """Set the pump clock (default: this host's clock). With `zone` (an IANA name) also the
        clinic's local time: SET_CLOCK_LOCAL with the zone's offset at that instant, which the
        pump keeps until the next sync. Without it the 1.0 SET_CLOCK (the offset stays)."""
        when = _now_ms() if pump_time_ms is None else pump_time_ms
        if zone is None:
            msg: p.Message = p.SetClock(command_id=self._id(), pump_time_ms=when)
        else:
            off = zone_offset_ms(zone, when)
            msg = p.SetClockLocal(
                command_id=self._id(), pump_time_ms=when, utc_offset_ms=off, zone=zone
            )
        ack: p.CommandAck = await self.send_command(msg)
        return ack

    async def request_patient_bolus(self) -> p.PatientBolusAccepted:
        """The patient's button: one bolus with the programmed settings (never queued)."""
        msg = p.RequestPatientBolus(
            command_id=self._id(), expected_program_version=await self._version()
        )
        granted: p.PatientBolusAccepted = await self.send_command(msg)
        return granted

    # --- changes with a Finish screen: one module each, programmer/_finish_<name>.py ----------
    # Each prepares a Change (programmer/_change.py): the diff, the warnings, the command.

    prepare_drug = _finish_drug.prepare_drug
    prepare_dose = _finish_dose.prepare_dose
    prepare_schedule = _finish_schedule.prepare_schedule
    prepare_bolus = _finish_bolus.prepare_bolus
    prepare_priming = _finish_priming.prepare_priming
    prepare_bridge = _finish_bridge.prepare_bridge
    prepare_patient_bolus = _finish_patient_bolus.prepare_patient_bolus
    prepare_refill = _finish_refill.prepare_refill
    prepare_alarm_settings = _finish_alarm_settings.prepare_alarm_settings
    prepare_suspend = _finish_delivery.prepare_suspend
    prepare_resume = _finish_delivery.prepare_resume


def _outcome(status: p.CommandStatus) -> str | None:
    if status.state is p.CommandState.APPLIED:
        return APPLIED
    if status.state is p.CommandState.REJECTED:
        return REJECTED
    return None
