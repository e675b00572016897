"""The host and the link of the deterministic simulation (tests/simulation.py): a programmer
that follows docs/protocol.md section 8 (journal first, same id on every retry, outcomes
resolved by status after its own restart) and one direction of a faulty network each way, both
drawing only from the simulation's seeded generators."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import firmware_model as fm
import protocol as p

if TYPE_CHECKING:
    from .simulation import Simulation

MG = 1_000_000
HOST_ID = 0x51A1
REPLY_TIMEOUT_NS = 300_000_000  # the host's retry timer (simulated)
STATUS_AFTER_TRIES = 6  # then the host asks GET_COMMAND_STATUS instead of sending again


@dataclasses.dataclass
class Op:
    """One state-changing command, as the host's journal knows it."""

    cid: bytes
    msg: p.Message
    effect: fm.EventKind
    outcome: str = "pending"  # pending | ok | refused | not-applied
    event_seq: int = 0
    tries: int = 0
    code: str = ""


class Net:
    """One direction of the link: frames in flight with their delivery times."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.flight: list[tuple[int, int, bytes]] = []
        self._n = 0

    def send(self, data: bytes) -> None:
        sim, rng, f = self.sim, self.sim.rng, self.sim.faults
        if rng.random() < f.drop:
            sim.count("dropped")
            return
        copies = 2 if rng.random() < f.duplicate else 1
        if copies == 2:
            sim.count("duplicated")
        for _ in range(copies):
            b = data
            if rng.random() < f.corrupt:
                sim.count("corrupted")
                ba = bytearray(b)
                ba[rng.randrange(len(ba))] ^= 1 << rng.randrange(8)
                b = bytes(ba)
            self._n += 1
            at = sim.now_ns + rng.randrange(50_000, f.max_latency_ns)
            if rng.random() < f.late:
                sim.count("held up")
                at += rng.randrange(500_000_000, 5_000_000_000)
            self.flight.append((at, self._n, b))

    def due(self) -> list[bytes]:
        now = self.sim.now_ns
        ready = sorted(x for x in self.flight if x[0] <= now)
        if ready:
            self.flight = [x for x in self.flight if x[0] > now]
        return [b for _, _, b in ready]

    def next_at(self) -> int | None:
        return min((x[0] for x in self.flight), default=None)


class Host:
    """A programmer that follows protocol.md section 8: journal first, same id on every retry,
    outcomes resolved by status after its own restart."""

    def __init__(self, sim: Simulation, key: p.SecretKey) -> None:
        self.sim = sim
        self.key = key
        self.ops: list[Op] = []  # the journal: survives host crashes
        self.script: list[p.Message] = []  # commands to send before random ones
        self.reset()

    def reset(self) -> None:
        """A (re)started host process: no session, nothing in flight."""
        self.sec = p.HostSecurity(
            self.sim.serial, p.Role.CLINICIAN, self.key, self.sim.host_rng.randbytes, HOST_ID
        )
        self.seq = self.sim.host_rng.randrange(1, 0x10000)
        self.waiting: dict[int, str] = {}  # seq -> what it answers ("hello", "confirm", ...)
        self.sent_at = 0
        self.version = 0
        self.current: Op | None = None
        self.asking_status = False
        self.resolving = [op for op in self.ops if op.outcome == "pending"]
        self.request_msg_id = 0
        self.lost_hint = False  # a plain AUTH_FAILED / SESSION_EXPIRED came during the wait

    def _next_seq(self) -> int:
        self.seq = (self.seq % 0xFFFF) + 1
        return self.seq

    # --- sending ----------------------------------------------------------------------------

    def act(self) -> None:
        """Send something if the host is idle or its timer ran out."""
        sim = self.sim
        if self.waiting and sim.now_ns - self.sent_at < REPLY_TIMEOUT_NS:
            return
        if self.waiting and self.lost_hint and self.sec.established:
            self.sec.forget()  # timed out after a plain session-lost error: a new handshake
        self.lost_hint = False
        if not self.sec.established:
            self.waiting = {}
            seq = self._next_seq()
            self.waiting[seq] = "hello"
            self.waiting[(seq % 0xFFFF) + 1] = "confirm"
            self.seq = (seq % 0xFFFF) + 1
            self._send(self.sec.hello(seq=seq))
            return
        if self.resolving:
            self._request(p.GetCommandStatus(command_id=self.resolving[0].cid), "resolve")
            return
        if self.current is None:
            self.current = self._new_op()
            if self.current is None:
                self._request(p.GetStatus(), "status")
                return
        op = self.current
        if op.tries >= STATUS_AFTER_TRIES:
            self._request(p.GetCommandStatus(command_id=op.cid), "fate")
            return
        op.tries += 1
        self._request(op.msg, "command")
        if sim.rng.random() < sim.faults.host_crash * 10:
            sim.count("host killed mid-command")
            self.reset()

    def _request(self, msg: p.Message, what: str) -> None:
        self.request_msg_id = msg.MSG_ID
        seq = self._next_seq()
        self.waiting = {seq: what}
        self._send(self.sec.seal(msg, seq=seq))

    def _send(self, data: bytes) -> None:
        self.sent_at = self.sim.now_ns
        self.sim.to_pump.send(data)
        self.sim.frames += 1

    def _new_op(self) -> Op | None:
        rng = self.sim.rng
        if self.script:
            first = self.script.pop(0)
            op = Op(first.command_id, first, fm.EventKind.REFILL)  # type: ignore[attr-defined]
            self.ops.append(op)
            return op
        r = rng.random()
        cid = rng.randbytes(16)
        msg: p.Message
        if r < 0.15:
            return None  # a status read
        if r < 0.6:
            msg = p.SetContinuousDose(
                command_id=cid,
                expected_program_version=self.version,
                dose_ng_per_day=rng.randrange(1, 12) * MG // 2,
                confirm_soft_limit=True,
            )
            effect = fm.EventKind.PROGRAM_CHANGED
        elif r < 0.9:
            msg = p.StartClinicianBolus(
                command_id=cid,
                expected_program_version=self.version,
                dose_ng=rng.randrange(1, 5) * 25_000,
                duration_ms=rng.choice((60_000, 600_000, 3_600_000)),
                then_stop=False,
                confirm_soft_limit=True,
            )
            effect = fm.EventKind.BOLUS_STARTED
        else:
            msg = p.CancelBolus(command_id=cid, expected_program_version=self.version)
            effect = fm.EventKind.BOLUS_CANCELLED
        op = Op(cid, msg, effect)
        self.ops.append(op)  # journaled before the first send
        return op

    # --- receiving --------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        for item in p.FrameDecoder().feed(data):
            if not isinstance(item, p.Frame) or item.seq not in self.waiting:
                continue
            what = self.waiting[item.seq]
            if item.msg_id == p.Error.MSG_ID and not item.authenticated:
                err = item.decode()
                assert isinstance(err, p.Error)
                if err.code in (p.ErrorCode.AUTH_FAILED, p.ErrorCode.SESSION_EXPIRED):
                    # The pump may have lost our session (a restart): a hint only, since
                    # anyone can forge a plain error; acted on if the wait times out.
                    self.lost_hint = True
                continue  # plain errors never settle a sealed request (protocol.md section 10)
            try:
                event = self.sec.receive(item)
            except p.ProtocolError:
                continue
            if isinstance(event, p.Send):
                self._send(event.data)
                continue
            if isinstance(event, p.Established):
                self.waiting = {}
                continue
            if isinstance(event, p.Response):
                self._answer(what, event.message)

    def _answer(self, what: str, msg: p.Message) -> None:
        if isinstance(msg, p.Error):
            if msg.request_msg_id != self.request_msg_id:
                return  # noise drew an answer about another message (protocol.md section 10)
            if msg.code in (p.ErrorCode.AUTH_FAILED, p.ErrorCode.SESSION_EXPIRED):
                self.sec.forget()  # sealed: the pump ended our session (idle or lifetime limit)
                self.waiting = {}
                return
            if msg.code in (p.ErrorCode.BUSY, p.ErrorCode.STORAGE_FAILURE):
                self.waiting = {}  # try again (same command id)
                return
        self.waiting = {}
        if what == "status":
            assert isinstance(msg, p.Status), msg
            self.version = msg.program_version
        elif what in ("resolve", "fate"):
            if not isinstance(msg, p.CommandStatus):
                return
            op = self.resolving.pop(0) if what == "resolve" else self.current
            assert op is not None
            if msg.state is p.CommandState.APPLIED:
                op.outcome, op.event_seq = "ok", msg.event_seq
            elif msg.state is p.CommandState.REJECTED:
                op.outcome, op.code = "refused", p.ErrorCode(msg.error_code).name
            elif what == "resolve":
                op.outcome = "not-applied"  # never committed: nothing re-sent for it
            else:
                op.tries = 0  # not there yet: send it again, same id
                return
            if what == "fate":
                self.current = None
        elif what == "command":
            op = self.current
            assert op is not None
            if isinstance(msg, p.Error):
                if msg.code is p.ErrorCode.PROGRAM_VERSION_MISMATCH:
                    # refused before the command layer, nothing recorded: settled, not applied
                    op.outcome, op.code = "refused", msg.code.name
                    self.current = None
                    self.waiting = {0: "none"}
                    self.sent_at = 0
                    self._request(p.GetStatus(), "status")
                    return
                op.outcome, op.code = "refused", msg.code.name
            else:
                op.outcome, op.event_seq = "ok", getattr(msg, "event_seq", 0)
                if hasattr(msg, "program_version"):
                    self.version = msg.program_version
            self.current = None
