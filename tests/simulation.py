"""Deterministic simulation (reliability claim 16): the real emulator device and its real store,
a host that follows docs/protocol.md section 8, a faulty network, crashes and time, all driven
by one seed.

Nothing here reads a clock or an entropy source of its own: the device gets the simulation's
monotonic and wall clocks and a seeded `randbytes`, the key files are written from the seed,
the network's drops, duplicates, corruption and latency (so reordering) come from the seed. A
seed therefore always replays the same history, and the hash of the stored event log and command
table proves it.

Faults, each drawn from the seed:
- the network loses, duplicates, corrupts (one bit) and delays (so reorders) frames both ways;
- the pump crashes between frames (its process dies: nothing unflushed survives) or at the n-th
  write step of a commit (`Store.fault_hook`), and restarts from its store after a downtime;
- the host crashes: it forgets its session and everything but its journal, then reconnects and
  resolves its pending command by GET_COMMAND_STATUS (never by re-sending);
- time jumps far enough to expire sessions (idle limit) so the host must re-handshake.

Invariants checked (any failure is a `Violation` naming the seed):
- every acknowledged command is APPLIED in the store with the acknowledged event seq, and has
  exactly one effect record in the log;
- a command the host was told is refused or never applied has no effect record, ever;
- no command id has two effect records;
- every outcome is known at the end;
- `PRAGMA integrity_check` is ok after every restart;
- the pump's therapy state equals a replay of the log's applied commands into a fresh model
  (same commands, same model times), after every restart and at the end.

Run as a script for the large size: `python tests/simulation.py --seeds 10000`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import multiprocessing
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import firmware_model as fm
import protocol as p
from emulator._device import PumpDevice, apply_message
from emulator._keys import KEY_FILES
from emulator._runtime import STORE_FILE, open_device

MG = 1_000_000
EPOCH_MS = 1_790_000_000_000  # wall clock at simulation time 0 (2026-09-21)
HOST_ID = 0x51A1
REPLY_TIMEOUT_NS = 300_000_000  # the host's retry timer (simulated)
STATUS_AFTER_TRIES = 6  # then the host asks GET_COMMAND_STATUS instead of sending again
SPEEDS = (1_000, 60_000, 3_600_000)  # x1, x60, x3600
# Model-state fields a replay of the applied commands does not reproduce: the log itself (it
# also holds session, security and control records) and the battery cost of telemetry.
NOT_REPLAYED = frozenset(
    {"events", "next_seq", "battery_used_bu", "telemetry_frames", "battery", "eri_at", "eos_at"}
)


EFFECTS = (
    fm.EventKind.PROGRAM_CHANGED,
    fm.EventKind.BOLUS_STARTED,
    fm.EventKind.BOLUS_CANCELLED,
    fm.EventKind.REFILL,
)


class Violation(AssertionError):
    pass


class PumpCrash(BaseException):
    """The pump's process dies here (BaseException: no handler in the device catches it)."""


@dataclasses.dataclass
class Faults:
    drop: float
    duplicate: float
    corrupt: float
    max_latency_ns: int
    late: float  # share of frames held up for 0.5 .. 5 s (a stuck buffer, a slow broker)
    pump_crash: float  # per step, between frames
    write_crash: float  # per commit: die at one of its write steps
    host_crash: float  # per step
    time_jump: float  # per step: a jump past the session idle limit


CLEAN = Faults(0, 0, 0, 100_000, 0, 0, 0, 0, 0)


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


@dataclasses.dataclass
class Result:
    seed: int
    log_hash: str
    steps: int
    sim_hours: float
    ops: int
    acked: int
    refused: int
    not_applied: int
    frames: int
    faults: dict[str, int]


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


class Simulation:
    def __init__(self, seed: int, root: Path) -> None:
        self.seed = seed
        self.root = root
        self.rng = random.Random(seed)
        self.pump_rng = random.Random(self.rng.getrandbits(64))
        self.host_rng = random.Random(self.rng.getrandbits(64))
        rng = self.rng
        self.faults = Faults(
            drop=rng.choice((0.0, 0.05, 0.2)),
            duplicate=rng.choice((0.0, 0.05, 0.1)),
            corrupt=rng.choice((0.0, 0.02, 0.05)),
            max_latency_ns=rng.choice((1_000_000, 20_000_000, 400_000_000)),
            late=rng.choice((0.0, 0.0, 0.02, 0.1)),
            pump_crash=rng.choice((0.0, 0.01, 0.03)),
            write_crash=rng.choice((0.0, 0.02, 0.05)),
            host_crash=rng.choice((0.0, 0.01, 0.03)),
            time_jump=rng.choice((0.0, 0.005)),
        )
        self.drawn = self.faults
        self.speed = rng.choice(SPEEDS)
        self.serial = 1000 + seed % 9000
        self.now_ns = 0
        self.frames = 0
        self.counts: dict[str, int] = {}
        self.to_pump = Net(self)
        self.to_host = Net(self)
        self.device: PumpDevice | None = None
        self.state = root / "pump"
        self.state.mkdir(parents=True)
        keys = {}
        for role, name in KEY_FILES.items():
            raw = self.rng.randbytes(32)
            path = self.state / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, raw.hex().encode() + b"\n")
            os.close(fd)
            keys[role] = p.SecretKey(raw)
        self.host = Host(self, keys[p.Role.CLINICIAN])

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def wall(self) -> int:
        return EPOCH_MS + self.now_ns // 1_000_000

    def mono(self) -> int:
        return self.now_ns

    # --- the pump's process -----------------------------------------------------------------

    def boot(self) -> None:
        self.device = open_device(
            self.state,
            serial=self.serial,
            speed_milli=self.speed,
            wall=self.wall,
            monotonic_ns=self.mono,
            randbytes=self.pump_rng.randbytes,
        )
        store = self.device.store
        assert store is not None
        if self.rng.random() < self.faults.write_crash * 10:
            target = self.rng.randrange(1, 40)
            steps = 0

            def hook(step: str) -> None:
                nonlocal steps
                steps += 1
                if steps == target:
                    raise PumpCrash(step)

            store.fault_hook = hook

    def crash(self, why: str) -> None:
        """The pump's process dies: its memory and anything not committed are gone."""
        dev = self.device
        assert dev is not None and dev.store is not None
        self.count(why)
        dev.store.close()  # an open transaction is rolled back, as a dead process leaves it
        self.device = None
        self.now_ns += self.rng.randrange(1_000_000, 2_000_000_000)  # down, then restarted
        self.to_pump.flight.clear()  # nobody was listening
        self.boot()
        self.check_store()
        self.check_replay()

    # --- the run ----------------------------------------------------------------------------

    def run(self, steps: int) -> Result:
        self.boot()
        self._fill()
        for _ in range(steps):
            self.step()
        self.settle()
        return self.result(steps)

    def _fill(self) -> None:
        """Reservoir filled with morphine 25 mg/mL, then 3 mg/day, through the protocol on a
        clean link (after the power-on self test), before the faults begin."""
        faults, self.faults = self.faults, CLEAN
        dev = self.device
        assert dev is not None
        wait_ms = max(0, dev.pump.self_test_ends_at - dev.pump.now)
        self.now_ns += wait_ms * 1_000_000_000 // self.speed + 1_000_000
        refill = p.RecordRefill(
            command_id=self.rng.randbytes(16),
            expected_program_version=dev.pump.program_version,
            withdrawn_volume_nl=0,
            added_volume_nl=20_000_000,
            drug=p.Drug.MORPHINE,
            concentration_ng_per_ml=25 * MG,
            concentration_unit=p.ConcentrationUnit.MG_PER_ML,
            low_reservoir_threshold_nl=2_000_000,
            confirm_soft_limit=True,
        )
        self.host.script = [refill]
        for _ in range(1000):
            if self.host.ops and self.host.ops[0].outcome != "pending":
                break
            self.step()
        assert self.host.ops[0].outcome == "ok", "setup failed"
        self.faults = faults

    def step(self) -> None:
        rng, f = self.rng, self.faults
        r = rng.random()
        if r < f.pump_crash:
            self.crash("pump killed")
            return
        if r < f.pump_crash + f.host_crash:
            self.count("host killed")
            self.host.reset()
            return
        if rng.random() < f.time_jump:
            self.count("time jump")
            self.now_ns += rng.randrange(11 * 60, 30 * 60) * 1_000_000_000
        # next thing to happen: a frame arriving, the host's timer, or a little idle time
        nxt = [self.now_ns + rng.randrange(0, 50_000_000)]
        for net in (self.to_pump, self.to_host):
            t = net.next_at()
            if t is not None:
                nxt.append(t)
        if self.host.waiting:
            nxt.append(self.host.sent_at + REPLY_TIMEOUT_NS)
        self.now_ns = max(self.now_ns, min(nxt))
        self.deliver()
        self.host.act()
        self.deliver()

    def deliver(self) -> None:
        dev = self.device
        assert dev is not None
        try:
            dev.tick()
            for data in self.to_pump.due():
                for item in p.FrameDecoder().feed(data):
                    for out in dev.receive(item):
                        self.to_host.send(out)
        except PumpCrash as crash:
            self.crash(f"crash at write step {crash.args[0]}")
            return
        for data in self.to_host.due():
            self.host.receive(data)

    def settle(self) -> None:
        """A clean link at the end: the host restarts and resolves everything pending."""
        self.faults = CLEAN
        dev = self.device
        assert dev is not None and dev.store is not None
        dev.store.fault_hook = None
        self.now_ns += 6_000_000_000  # frames still in flight arrive (or are lost)
        self.deliver()
        self.host.reset()
        for _ in range(10_000):
            if not self.host.resolving and self.host.sec.established and not self.host.waiting:
                break
            self.now_ns += 1_000_000
            self.host.act()
            self.deliver()
        else:
            raise Violation(f"seed {self.seed}: the host could not resolve its journal")
        if self.host.current is not None and self.host.current.outcome == "pending":
            self.host.resolving = [self.host.current]
        dev.flush()
        self.check_store()
        self.check_replay()

    # --- invariants -------------------------------------------------------------------------

    def _fail(self, what: str) -> None:
        raise Violation(f"seed {self.seed}: {what} (faults {self.drawn}, speed {self.speed})")

    def check_store(self) -> None:
        db = sqlite3.connect(self.state / STORE_FILE)
        try:
            if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                self._fail("integrity_check failed")
            effects: dict[bytes, int] = {}
            for cid, n in db.execute(
                "SELECT command_id, COUNT(*) FROM events WHERE source = ? AND kind IN (?, ?, ?, ?)"
                " GROUP BY command_id",
                (int(fm.Source.PROGRAMMER), *map(int, EFFECTS)),
            ):
                effects[bytes(cid)] = n
            states = {
                bytes(c): (s, seq)
                for c, s, seq in db.execute("SELECT command_id, state, event_seq FROM commands")
            }
        finally:
            db.close()
        for cid, n in effects.items():
            if n > 1:
                self._fail(f"command {cid.hex()} applied {n} times")
        for op in self.host.ops:
            has = effects.get(op.cid, 0)
            if op.outcome == "ok":
                if states.get(op.cid) != (int(p.CommandState.APPLIED), op.event_seq):
                    self._fail(f"acknowledged command {op.cid.hex()} lost: {states.get(op.cid)}")
                if op.effect is not fm.EventKind.BOLUS_CANCELLED and has != 1:
                    self._fail(f"acknowledged command {op.cid.hex()} has {has} effect records")
            elif op.outcome in ("refused", "not-applied") and has:
                self._fail(f"command {op.cid.hex()} reported {op.outcome} but applied")

    def check_replay(self) -> None:
        """The pump's therapy state equals its log's applied commands replayed from scratch."""
        dev = self.device
        assert dev is not None
        dev.advance()
        msgs = {op.cid: op.msg for op in self.host.ops}
        diff = replay_difference(dev.pump, self.state / STORE_FILE, msgs)
        if diff:
            self._fail(f"state differs from a replay of the log in {diff}")

    def result(self, steps: int) -> Result:
        for op in self.host.ops:
            if op.outcome == "pending":
                self._fail(f"command {op.cid.hex()} outcome unknown at the end")
        db = sqlite3.connect(self.state / STORE_FILE)
        try:
            h = hashlib.sha256()
            for row in db.execute(
                "SELECT seq, time_ms, kind, source, command_id, a, b FROM events ORDER BY seq"
            ):
                h.update(repr(row).encode())
            for row in db.execute(
                "SELECT command_id, state, error_code, event_seq FROM commands ORDER BY n"
            ):
                h.update(repr(row).encode())
        finally:
            db.close()
        ops = self.host.ops
        return Result(
            seed=self.seed,
            log_hash=h.hexdigest(),
            steps=steps,
            sim_hours=self.now_ns * self.speed / 1000 / 3.6e12,
            ops=len(ops),
            acked=sum(op.outcome == "ok" for op in ops),
            refused=sum(op.outcome == "refused" for op in ops),
            not_applied=sum(op.outcome == "not-applied" for op in ops),
            frames=self.frames,
            faults=dict(self.counts),
        )


def replay_difference(pump: fm.Pump, store: Path, messages: dict[bytes, p.Message]) -> list[str]:
    """Replay into a new model, made at the same time, every command the store says APPLIED,
    in event-log order, each at the model time of its log record; advance it to `pump`'s time.
    Returns the therapy-state fields in which it differs from `pump` (empty: equal). The log
    must still hold every applied command's record (it is a bounded ring)."""
    db = sqlite3.connect(store)
    try:
        applied = db.execute(
            "SELECT c.command_id, e.time_ms FROM commands c LEFT JOIN events e "
            "ON e.seq = c.event_seq WHERE c.state = ? ORDER BY c.event_seq",
            (int(p.CommandState.APPLIED),),
        ).fetchall()
    finally:
        db.close()
    mine = fm.snapshot(pump, include_events=False)["state"]
    offset = pump.clock_ms - pump.now  # event times are the pump clock (never set in these runs)
    twin = fm.Pump.create(
        fm.ProfileId(pump.profile.id), serial=pump.serial, now_ms=mine["implanted_at"]
    )
    for cid, t in applied:
        if t is None:
            raise ValueError("the log no longer holds every applied command: cannot replay")
        twin.advance_to(t - offset)
        apply_message(twin, messages[bytes(cid)])
    twin.advance_to(pump.now)
    theirs = fm.snapshot(twin, include_events=False)["state"]
    return sorted(k for k in mine if k not in NOT_REPLAYED and mine[k] != theirs[k])


def simulate(seed: int, steps: int = 200, root: Path | None = None) -> Result:
    """One seeded run in a fresh directory (on tmpfs when there is one: a simulated crash is a
    process death, not a power cut, so the disk's fsync cost buys nothing here)."""
    base = root or (Path("/dev/shm") if Path("/dev/shm").is_dir() else None)
    tmp = Path(tempfile.mkdtemp(prefix=f"itp-sim-{seed}-", dir=base))
    try:
        return Simulation(seed, tmp).run(steps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_seeds(seeds: range, steps: int = 200) -> list[Result]:
    return [simulate(seed, steps) for seed in seeds]


def twice(seeds: range, steps: int = 200) -> tuple[list[Result], list[Result]]:
    """Every seed run twice: here, and at the same time in a fresh interpreter (another
    PYTHONHASHSEED, so an iteration order that leaked into the log would show)."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        other = pool.submit(run_seeds, seeds, steps)
        here = run_seeds(seeds, steps)
        return here, other.result()


def summary(results: list[Result]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for r in results:
        for k, v in dataclasses.asdict(r).items():
            if isinstance(v, int | float) and k != "seed":
                totals[k] = totals.get(k, 0) + v
        for k, v in r.faults.items():
            totals[k] = totals.get(k, 0) + v
    return totals


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=1000)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    t0 = time.perf_counter()
    seeds = range(args.first, args.first + args.seeds)
    here, there = twice(seeds, args.steps)
    differ = [a.seed for a, b in zip(here, there, strict=True) if a.log_hash != b.log_hash]
    print(
        f"{len(seeds)} seeds x 2 runs, 0 violations, {len(differ)} seeds with another log the "
        f"second time, {time.perf_counter() - t0:.0f} s"
    )
    print(", ".join(f"{k} {v:,.0f}" for k, v in summary(here).items()))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
