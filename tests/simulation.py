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

The host and the network: tests/simulation_host.py. Run as a script for the large size:
`python -m tests.simulation --seeds 10000`.
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

from .simulation_host import MG, REPLY_TIMEOUT_NS, Host, Net

EPOCH_MS = 1_790_000_000_000  # wall clock at simulation time 0 (2026-09-21)
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
