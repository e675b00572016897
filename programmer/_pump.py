"""An async programmer session with one pump: handshake, sealed requests, retries, workflows.

Theory of operation
-------------------
`connect()` opens the link, asks the pump who it is (plain GET_DEVICE_INFO: serial number and
speed factor), runs the handshake, then resolves the journal's unfinished commands for this
pump with GET_COMMAND_STATUS. Every request is sealed with a fresh seq and counter and answered
by the frame with the same seq (a late answer to an earlier attempt of the same request counts
too). On a timeout the request is sent again, resealed; a command keeps its command id, which
the journal holds from before the first send. If the pump says the session ended, a new
handshake runs and the same request goes again. When the retries are spent, a command's fate is
asked with GET_COMMAND_STATUS; if that fails too, `OutcomeUnknown` is raised and the journal
keeps the id for the next connection. Nothing is ever re-sent under a new id.

Changes follow the Finish-screen pattern: `prepare_*()` reads what it needs, returns a `Change`
with the old and new settings side by side, the derived rate, daily dose and alarm dates and any
warnings; `Change.commit()` sends it with compare-and-set on the program version it was
prepared against.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import protocol as p

from . import calc
from ._errors import (
    BadInput,
    ConfirmationNeeded,
    KeyMismatch,
    OutcomeUnknown,
    Refused,
    Unreachable,
)
from ._journal import APPLIED, NOT_APPLIED, REJECTED, Journal
from ._links import Address, Link

NETWORK_TIMEOUT_S = 2.0
PUMP_ACT_S = 0.5  # docs/protocol.md section 11: time a pump may take to act
RETRIES = 4
BUSY_WAIT_S = 0.25
BUSY_LIMIT_S = 10.0  # the power-on self test takes 2 s at real time
_SESSION_LOST = {
    p.ErrorCode.SESSION_EXPIRED,
    p.ErrorCode.AUTH_FAILED,
    p.ErrorCode.NOT_AUTHENTICATED,
}
REFILL_KIND = int(p.EventKind.REFILL)
_NOT_RECORDED = {p.ErrorCode.PROGRAM_VERSION_MISMATCH, p.ErrorCode.BUSY}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclasses.dataclass(frozen=True)
class Interrogation:
    """Everything a clinician reviews at the start of a session, read in one go."""

    device: p.DeviceInfo
    status: p.Status
    drug: p.DrugInfo | None  # None in a patient session
    program: p.Program | None  # None in a patient session
    patient_bolus: p.PatientBolusSettings
    alarms: tuple[p.AlarmEntry, ...]
    alarm_settings: p.AlarmSettings | None  # None in a patient session
    clock: p.Clock

    @property
    def battery(self) -> p.BatteryState:
        return self.status.battery

    @property
    def last_refill_at_ms(self) -> int | None:
        return self.status.last_refill_at_ms or None

    @property
    def low_reservoir_at_ms(self) -> int | None:
        return self.status.low_reservoir_at_ms or None

    @property
    def empty_at_ms(self) -> int | None:
        return self.status.empty_at_ms or None

    @property
    def replacement_due_at_ms(self) -> int | None:
        return self.status.replacement_due_at_ms or None


@dataclasses.dataclass
class Change:
    """A prepared change (the Finish screen): review `diff` and `warnings`, then `commit()`."""

    title: str
    message: p.Message
    diff: list[tuple[str, str, str]]  # (setting, old, new), as a person reads them
    warnings: list[str]
    _send: Callable[[p.Message], Awaitable[Any]] = dataclasses.field(repr=False)
    result: Any = None

    async def commit(self, *, confirm: bool = False) -> Any:
        """Send the change. Warnings need `confirm=True` (it sets confirm_soft_limit)."""
        msg = self.message
        if self.warnings:
            if not confirm:
                raise ConfirmationNeeded(self.warnings)
            if "confirm_soft_limit" in {f.name for f in type(msg).FIELDS}:
                msg = dataclasses.replace(msg, confirm_soft_limit=True)  # type: ignore[type-var]
        self.result = await self._send(msg)
        return self.result


def _ml(nl: int) -> str:
    return f"{nl / calc.NL_PER_ML:g} mL"


def _mass(ng: int, unit: p.ConcentrationUnit) -> str:
    if unit is p.ConcentrationUnit.MCG_PER_ML:
        return f"{ng / calc.NG_PER_MCG:g} mcg"
    return f"{ng / calc.NG_PER_MG:g} mg"


def _daily(ng: int, unit: p.ConcentrationUnit) -> str:
    return f"{_mass(ng, unit)}/day"


def _minutes(ms: int) -> str:
    return f"{ms / 60_000:g} min"


def _conc(ng_per_ml: int, unit: p.ConcentrationUnit) -> str:
    return f"{_mass(ng_per_ml, unit)}/mL"


def _date(ms: int | None) -> str:
    if not ms:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000)) + " UTC"


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
        self.handshakes = 0
        self.resends = 0

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
        info = await self._plain(p.GetDeviceInfo())
        assert isinstance(info, p.DeviceInfo)
        self.device = info
        self.serial = info.serial_number
        self.security = p.HostSecurity(
            self.serial, self.role, self._key, secrets.token_bytes, host_id=self.host_id
        )
        await self._handshake()
        await self._resolve_journal()

    async def _plain(self, msg: p.Message) -> p.Message:
        target = self.serial or p.BROADCAST_PUMP_ID
        for _ in range(self.retries + 1):
            seq = self._next_seq()
            data = p.encode_frame(msg, pump_id=target, seq=seq, from_pump=False)
            frame = await self._exchange(data, {seq})
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
        raise Unreachable(f"no answer from a pump on {self.address}")

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
            frame = await self._exchange(event.data, {(seq + 1) & 0xFFFF})
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
            frame = await self._exchange(sec.seal(msg, seq=seq), seqs)
            if frame is None:
                attempt += 1
                self.resends += 1
                continue
            try:
                event = sec.receive(frame) if frame.authenticated else None
            except p.ProtocolError:
                event = None  # not a frame of ours: a late or forged one
            answer = event.message if isinstance(event, p.Response) else None
            if answer is None and not frame.authenticated:
                answer = _plain_error(frame)  # the pump could not use our session
            if isinstance(answer, p.Error) and answer.code is p.ErrorCode.BUSY:
                if busy_until is None:
                    busy_until = time.monotonic() + BUSY_LIMIT_S
                if time.monotonic() < busy_until:  # the self test: wait, do not count it
                    await asyncio.sleep(BUSY_WAIT_S)
                    continue
            attempt += 1
            if answer is None or not _answers(answer, msg):
                continue  # not about this request: a late, forged or noise-drawn frame
            if isinstance(answer, p.Error):
                if answer.code in _SESSION_LOST:
                    sec.forget()  # the pump lost our session: handshake, same request again
                    continue
                raise Refused(answer, msg.NAME)
            return answer
        raise Unreachable(f"pump {self.serial} did not answer {msg.NAME} on {self.address}")

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

    async def clock(self) -> p.Clock:
        c: p.Clock = await self.request(p.GetClock())
        return c

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

    async def interrogate(self) -> Interrogation:
        assert self.device is not None
        clinician = self.role is p.Role.CLINICIAN
        status = await self.status()
        return Interrogation(
            device=self.device,
            status=status,
            drug=await self.drug() if clinician else None,
            program=await self.program() if clinician else None,
            patient_bolus=await self.patient_bolus(),
            alarms=await self.alarms(),
            alarm_settings=await self.alarm_settings() if clinician else None,
            clock=await self.clock(),
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

    async def sync_clock(self, pump_time_ms: int | None = None) -> p.CommandAck:
        """Set the pump clock (default: this host's clock, UTC)."""
        when = _now_ms() if pump_time_ms is None else pump_time_ms
        ack: p.CommandAck = await self.send_command(
            p.SetClock(command_id=self._id(), pump_time_ms=when)
        )
        return ack

    async def request_patient_bolus(self) -> p.PatientBolusAccepted:
        """The patient's button: one bolus with the programmed settings (never queued)."""
        msg = p.RequestPatientBolus(
            command_id=self._id(), expected_program_version=await self._version()
        )
        granted: p.PatientBolusAccepted = await self.send_command(msg)
        return granted

    # --- changes with a Finish screen -------------------------------------------------------

    async def _context(self) -> tuple[p.Status, p.DrugInfo]:
        return await self.status(), await self.drug()

    def _change(
        self, title: str, msg: p.Message, diff: list[tuple[str, str, str]], warnings: list[str]
    ) -> Change:
        return Change(title, msg, diff, warnings, self.send_command)

    @staticmethod
    def _limits(drug: p.DrugInfo, daily_ng: int, what: str) -> list[str]:
        unit = drug.concentration_unit
        if drug.hard_limit_ng_per_day and daily_ng > drug.hard_limit_ng_per_day:
            raise BadInput(
                f"{what} {_mass(daily_ng, unit)}/day is beyond the hard limit of "
                f"{_mass(drug.hard_limit_ng_per_day, unit)}/day for {drug.drug.name}: "
                "it cannot be overridden"
            )
        if drug.soft_limit_ng_per_day and daily_ng > drug.soft_limit_ng_per_day:
            return [
                f"{what} {_mass(daily_ng, unit)}/day exceeds the soft limit of "
                f"{_mass(drug.soft_limit_ng_per_day, unit)}/day for {drug.drug.name}"
            ]
        return []

    def _dates(
        self, st: p.Status, rate_nl_per_day: int, reservoir_nl: int | None = None
    ) -> tuple[int | None, int | None]:
        """Predicted low-reservoir and empty dates (pump clock) at a steady daily volume."""
        volume = st.reservoir_volume_nl if reservoir_nl is None else reservoir_nl
        low = calc.time_to_volume_ms(volume, st.low_reservoir_threshold_nl, rate_nl_per_day)
        empty = calc.time_to_volume_ms(volume, 0, rate_nl_per_day)
        return (
            None if low is None else st.pump_time_ms + low,
            None if empty is None else st.pump_time_ms + empty,
        )

    async def prepare_dose(self, dose_ng_per_day: int) -> Change:
        """Simple continuous mode at a daily dose; the rate is derived from the concentration."""
        st, drug = await self._context()
        if drug.drug is p.Drug.NONE or not drug.concentration_ng_per_ml:
            raise BadInput("no drug recorded: record a refill first")
        if dose_ng_per_day <= 0:
            raise BadInput("the dose must be > 0 (use suspend to stop delivery)")
        unit = drug.concentration_unit
        rate = calc.rate_nl_per_day(dose_ng_per_day, drug.concentration_ng_per_ml)
        low, empty = self._dates(st, rate)
        old_low, old_empty = st.low_reservoir_at_ms or None, st.empty_at_ms or None
        diff = [
            ("mode", st.mode.name.lower(), "continuous"),
            ("daily dose", _daily(st.daily_dose_ng, unit), _daily(dose_ng_per_day, unit)),
            ("rate", f"{_ml(st.current_rate_nl_per_day)}/day", f"{_ml(rate)}/day"),
            ("low-reservoir alarm", _date(old_low), _date(low)),
            ("empty", _date(old_empty), _date(empty)),
        ]
        msg = p.SetContinuousDose(
            command_id=self._id(),
            expected_program_version=st.program_version,
            dose_ng_per_day=dose_ng_per_day,
            confirm_soft_limit=False,
        )
        return self._change("dose", msg, diff, self._limits(drug, dose_ng_per_day, "dose"))

    async def prepare_schedule(self, steps: list[tuple[int, int]]) -> Change:
        """A multi-step daily schedule of (start minute, dose ng/day) steps, the first at 0."""
        st, drug = await self._context()
        try:
            daily = calc.schedule_daily_dose_ng(steps)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        if drug.drug is p.Drug.NONE or not drug.concentration_ng_per_ml:
            raise BadInput("no drug recorded: record a refill first")
        unit = drug.concentration_unit
        rate = calc.rate_nl_per_day(daily, drug.concentration_ng_per_ml)
        low, empty = self._dates(st, rate)
        steps_text = ", ".join(f"{m // 60:02d}:{m % 60:02d} {_mass(d, unit)}/day" for m, d in steps)
        diff = [
            ("mode", st.mode.name.lower(), "schedule"),
            ("steps", "-", steps_text),
            ("daily dose", _daily(st.daily_dose_ng, unit), _daily(daily, unit)),
            ("low-reservoir alarm", _date(st.low_reservoir_at_ms), _date(low)),
            ("empty", _date(st.empty_at_ms), _date(empty)),
        ]
        msg = p.SetSchedule(
            command_id=self._id(),
            expected_program_version=st.program_version,
            confirm_soft_limit=False,
            steps=tuple(p.ScheduleStep(start_minute=m, dose_ng_per_day=d) for m, d in steps),
        )
        return self._change("schedule", msg, diff, self._limits(drug, daily, "daily dose"))

    async def prepare_drug(
        self,
        drug: p.Drug,
        conc_ng_per_ml: int,
        unit: p.ConcentrationUnit = p.ConcentrationUnit.MG_PER_ML,
    ) -> Change:
        """Correct the drug record. A concentration change stops the program until a dose,
        schedule or bridge is programmed again."""
        st, old = await self._context()
        diff = [
            ("drug", old.drug.name, drug.name),
            (
                "concentration",
                _conc(old.concentration_ng_per_ml, old.concentration_unit),
                _conc(conc_ng_per_ml, unit),
            ),
        ]
        warnings = []
        if (drug, conc_ng_per_ml) != (old.drug, old.concentration_ng_per_ml):
            warnings.append("the pump stops delivery until the program is confirmed again")
        msg = p.SetDrug(
            command_id=self._id(),
            expected_program_version=st.program_version,
            drug=drug,
            concentration_ng_per_ml=conc_ng_per_ml,
            concentration_unit=unit,
            confirm_soft_limit=False,
        )
        return self._change("drug", msg, diff, warnings)

    async def prepare_bolus(
        self, dose_ng: int, duration_ms: int, *, then_stop: bool = False
    ) -> Change:
        """A clinician bolus on top of the program (or a single bolus, then stopped)."""
        st, drug = await self._context()
        unit = drug.concentration_unit
        volume = dose_ng * calc.NL_PER_ML // max(drug.concentration_ng_per_ml, 1)
        diff = [
            ("bolus", "-", f"{_mass(dose_ng, unit)} ({_ml(volume)}) over {_minutes(duration_ms)}"),
            ("after it", "-", "stopped" if then_stop else st.mode.name.lower()),
            (
                "reservoir",
                _ml(st.reservoir_volume_nl),
                _ml(max(0, st.reservoir_volume_nl - volume)),
            ),
        ]
        msg = p.StartClinicianBolus(
            command_id=self._id(),
            expected_program_version=st.program_version,
            dose_ng=dose_ng,
            duration_ms=duration_ms,
            then_stop=then_stop,
            confirm_soft_limit=False,
        )
        warnings = self._limits(drug, st.daily_dose_ng + dose_ng, "basal + bolus")
        return self._change("clinician bolus", msg, diff, warnings)

    async def prepare_priming(
        self,
        catheter_length_cm: int,
        pump_tubing_nl: int,
        *,
        nl_per_cm: int = calc.CATHETER_NL_PER_CM,
    ) -> Change:
        """A priming bolus that fills the catheter (length x volume per cm, 2.6 uL/cm by
        default) and the pump's tubing, at the maximum rate."""
        st = await self.status()
        catheter = calc.catheter_volume_nl(catheter_length_cm, nl_per_cm)
        volume = calc.priming_volume_nl(catheter, pump_tubing_nl)
        diff = [("priming bolus", "-", f"{_ml(volume)} at the maximum rate")]
        msg = p.StartPrimingBolus(
            command_id=self._id(), expected_program_version=st.program_version, volume_nl=volume
        )
        return self._change("priming bolus", msg, diff, [])

    async def prepare_bridge(
        self,
        previous_conc_ng_per_ml: int,
        dose_ng_per_day: int,
        *,
        catheter_length_cm: int,
        pump_tubing_nl: int = 0,
        nl_per_cm: int = calc.CATHETER_NL_PER_CM,
    ) -> Change:
        """After a concentration change: the old concentration's rate until the dead volume
        (catheter length x volume per cm, 2.6 uL/cm by default, + pump tubing) is flushed,
        then the new rate."""
        st, drug = await self._context()
        dead = calc.catheter_volume_nl(catheter_length_cm, nl_per_cm) + pump_tubing_nl
        try:
            b = calc.bridge(
                dead, previous_conc_ng_per_ml, drug.concentration_ng_per_ml, dose_ng_per_day
            )
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        unit = drug.concentration_unit
        diff = [
            ("mode", st.mode.name.lower(), "bridge, then continuous"),
            ("daily dose", _daily(st.daily_dose_ng, unit), _daily(dose_ng_per_day, unit)),
            (
                "bridge",
                "-",
                f"{_ml(b.old_rate_nl_per_day)}/day for {b.duration_ms / calc.DAY_MS:.2f} days "
                f"({_ml(dead)} dead volume)",
            ),
            ("then", "-", f"{_ml(b.new_rate_nl_per_day)}/day"),
        ]
        msg = p.StartBridge(
            command_id=self._id(),
            expected_program_version=st.program_version,
            dead_volume_nl=dead,
            previous_concentration_ng_per_ml=previous_conc_ng_per_ml,
            dose_ng_per_day=dose_ng_per_day,
            confirm_soft_limit=False,
        )
        return self._change("bridge", msg, diff, self._limits(drug, dose_ng_per_day, "dose"))

    async def prepare_patient_bolus(
        self,
        *,
        enabled: bool,
        dose_ng: int,
        duration_ms: int,
        lockout_ms: int,
        max_per_24h: int,
    ) -> Change:
        """Patient-activated bolus settings; the refill date assumes every allotted bolus."""
        st, drug = await self._context()
        old = await self.patient_bolus()
        unit = drug.concentration_unit
        worst = calc.worst_case_daily_dose_ng(
            st.daily_dose_ng, dose_ng, max_per_24h if enabled else 0
        )
        rate = calc.rate_nl_per_day(worst, max(drug.concentration_ng_per_ml, 1))
        low, _ = self._dates(st, rate)
        diff = [
            ("enabled", str(old.enabled), str(enabled)),
            ("dose", _mass(old.dose_ng, unit), _mass(dose_ng, unit)),
            ("lockout", _minutes(old.lockout_ms), _minutes(lockout_ms)),
            ("max per 24 h", str(old.max_per_24h), str(max_per_24h)),
            ("worst-case daily dose", _daily(st.daily_dose_ng, unit), _daily(worst, unit)),
            ("refill due (worst case)", _date(st.low_reservoir_at_ms), _date(low)),
        ]
        msg = p.SetPatientBolus(
            command_id=self._id(),
            expected_program_version=st.program_version,
            enabled=enabled,
            dose_ng=dose_ng,
            duration_ms=duration_ms,
            lockout_ms=lockout_ms,
            max_per_24h=max_per_24h,
            confirm_soft_limit=False,
        )
        warnings = self._limits(drug, worst, "worst-case daily dose") if enabled else []
        return self._change("patient bolus", msg, diff, warnings)

    async def prepare_refill(
        self,
        *,
        withdrawn_nl: int,
        added_nl: int,
        drug: p.Drug | None = None,
        conc_ng_per_ml: int | None = None,
        unit: p.ConcentrationUnit | None = None,
        low_threshold_nl: int | None = None,
    ) -> Change:
        """Record a refill. The Finish screen shows the expected residual, the discrepancy and
        the delivery ratio (with a warning beyond the limits) and the new alarm dates."""
        st, old = await self._context()
        assert self.device is not None
        new_drug = old.drug if drug is None else drug
        new_conc = old.concentration_ng_per_ml if conc_ng_per_ml is None else conc_ng_per_ml
        new_unit = old.concentration_unit if unit is None else unit
        threshold = st.low_reservoir_threshold_nl if low_threshold_nl is None else low_threshold_nl
        if new_drug is p.Drug.NONE or not new_conc:
            raise BadInput("give the drug and concentration of the refill")
        expected = st.reservoir_volume_nl
        discrepancy = withdrawn_nl - expected
        filled = await self._last_fill_nl(st)
        capacity = self.device.reservoir_capacity_nl
        basis = calc.discrepancy_limit_nl(capacity)
        ratio = calc.delivery_ratio_ppm(filled, withdrawn_nl, expected, basis) if filled else None
        warnings = []
        if calc.refill_beyond_limits(withdrawn_nl, expected, ratio, capacity):
            warnings.append(
                f"discrepancy {discrepancy / calc.NL_PER_ML:+.2f} mL"
                + (f", delivery ratio {ratio / calc.PPM:.3f}" if ratio else "")
                + " is beyond the limits: investigate pocket fill, stall or occlusion"
            )
        changes_conc = (new_drug, new_conc) != (old.drug, old.concentration_ng_per_ml)
        if changes_conc and old.drug is not p.Drug.NONE:
            warnings.append(
                "the drug or concentration changes: the program stops until a dose, schedule "
                "or bridge is programmed (prepare_bridge)"
            )
        diff = [
            ("reservoir", _ml(st.reservoir_volume_nl), _ml(added_nl)),
            ("expected residual", "-", _ml(expected)),
            ("withdrawn", "-", _ml(withdrawn_nl)),
            ("discrepancy", "-", f"{discrepancy / calc.NL_PER_ML:+.3f} mL"),
            ("delivery ratio", "-", f"{ratio / calc.PPM:.3f}" if ratio else "n/a"),
            ("drug", old.drug.name, new_drug.name),
            (
                "concentration",
                _conc(old.concentration_ng_per_ml, old.concentration_unit),
                _conc(new_conc, new_unit),
            ),
            ("low-reservoir alarm at", _ml(st.low_reservoir_threshold_nl), _ml(threshold)),
        ]
        msg = p.RecordRefill(
            command_id=self._id(),
            expected_program_version=st.program_version,
            withdrawn_volume_nl=withdrawn_nl,
            added_volume_nl=added_nl,
            drug=new_drug,
            concentration_ng_per_ml=new_conc,
            concentration_unit=new_unit,
            low_reservoir_threshold_nl=threshold,
            confirm_soft_limit=False,
        )
        return self._change("refill", msg, diff, warnings)

    async def _last_fill_nl(self, st: p.Status) -> int:
        """Volume added at the last refill (the REFILL record's `a`), read from the newest log
        pages backwards; 0 when the log no longer holds one."""
        if not st.last_refill_at_ms:
            return 0
        end = st.event_seq + 1
        while end > 1:
            start = max(1, end - 16)
            page: p.EventPage = await self.request(
                p.GetEvents(cursor=start, max_count=min(16, end - start))
            )
            for record in reversed(page.events):
                if record.kind == REFILL_KIND and record.seq < end:
                    return record.value_a
            if start <= page.oldest_seq:
                return 0
            end = start
        return 0

    async def prepare_alarm_settings(
        self,
        *,
        low_threshold_nl: int | None = None,
        critical_repeat_ms: int | None = None,
        noncritical_repeat_ms: int | None = None,
    ) -> Change:
        st = await self.status()
        old = await self.alarm_settings()
        new = p.AlarmSettings(
            low_reservoir_threshold_nl=old.low_reservoir_threshold_nl
            if low_threshold_nl is None
            else low_threshold_nl,
            critical_repeat_ms=old.critical_repeat_ms
            if critical_repeat_ms is None
            else critical_repeat_ms,
            noncritical_repeat_ms=old.noncritical_repeat_ms
            if noncritical_repeat_ms is None
            else noncritical_repeat_ms,
        )
        diff = [
            (
                "low-reservoir alarm at",
                _ml(old.low_reservoir_threshold_nl),
                _ml(new.low_reservoir_threshold_nl),
            ),
            ("critical repeat", _minutes(old.critical_repeat_ms), _minutes(new.critical_repeat_ms)),
            (
                "non-critical repeat",
                _minutes(old.noncritical_repeat_ms),
                _minutes(new.noncritical_repeat_ms),
            ),
        ]
        msg = p.SetAlarmSettings(
            command_id=self._id(),
            expected_program_version=st.program_version,
            low_reservoir_threshold_nl=new.low_reservoir_threshold_nl,
            critical_repeat_ms=new.critical_repeat_ms,
            noncritical_repeat_ms=new.noncritical_repeat_ms,
        )
        return self._change("alarm settings", msg, diff, [])


def _answers(answer: p.Message, request: p.Message) -> bool:
    """Whether an ERROR is about `request`. Line noise in a request's message id draws an
    UNKNOWN_MESSAGE for that id (docs/protocol.md section 10): it is not this request's fate."""
    if not isinstance(answer, p.Error):
        return True
    if answer.request_msg_id not in (0, request.MSG_ID):
        return False
    cid = getattr(request, "command_id", None)
    return answer.command_id in (bytes(16), cid)


def _plain_error(frame: p.Frame) -> p.Error | None:
    """A plain ERROR frame; anything else unsealed answering a sealed request is a forgery."""
    if frame.msg_id != p.Error.MSG_ID:
        return None
    try:
        error = frame.decode()
    except p.MessageError:
        return None
    return error if isinstance(error, p.Error) else None


def _outcome(status: p.CommandStatus) -> str | None:
    if status.state is p.CommandState.APPLIED:
        return APPLIED
    if status.state is p.CommandState.REJECTED:
        return REJECTED
    return None
