"""Deterministic simulation (reliability claim 16): seeded runs of the real device and store
under link faults, pump and host crashes and time jumps (tests/simulation.py). Every seed runs
twice, in two interpreters: the event-log hashes must be equal, and no run may break an
invariant (a Violation names its seed: `python -m tests.simulation --first SEED --seeds 1`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .simulation import Simulation, Violation, simulate, summary, twice


def check(seeds: range) -> dict[str, float]:
    here, there = twice(seeds)
    assert [r.seed for r in here] == list(seeds)
    differ = [a.seed for a, b in zip(here, there, strict=True) if a.log_hash != b.log_hash]
    assert differ == [], "the same seed gave another event log"
    totals = summary(here)
    print(totals)
    return totals


def test_1000_seeds_no_violation_and_the_same_log_each_time() -> None:
    totals = check(range(1000))
    # the faults really happened, and commands really ran through them
    assert totals["acked"] > 5_000 and totals["not_applied"] > 500
    for fault in ("dropped", "duplicated", "corrupted", "held up", "pump killed",
                  "host killed", "host killed mid-command", "time jump"):  # fmt: skip
        assert totals[fault] > 100, fault
    assert sum(v for k, v in totals.items() if k.startswith("crash at write step")) > 200


@pytest.mark.slow
def test_10000_seeds() -> None:
    check(range(1000, 11_000))


def test_a_different_seed_gives_a_different_log() -> None:
    assert simulate(1).log_hash != simulate(2).log_hash


def test_the_invariants_can_fail(tmp_path: Path) -> None:
    """Each check catches the defect it exists for."""
    sim = Simulation(23, tmp_path)
    sim.run(200)
    sim.check_store()
    sim.check_replay()
    ok = next(op for op in sim.host.ops if op.outcome == "ok" and op.event_seq > 5)
    ok.outcome = "not-applied"  # as if the host had been told so
    with pytest.raises(Violation, match="reported not-applied but applied"):
        sim.check_store()
    ok.outcome, ok.event_seq = "ok", ok.event_seq + 1  # as if its record were another
    with pytest.raises(Violation, match=r"acknowledged command .* lost"):
        sim.check_store()
    ok.event_seq -= 1
    dev = sim.device
    assert dev is not None
    dev.pump.set_true_reservoir(1_000_000)  # a change no command explains
    with pytest.raises(Violation, match=r"state differs from a replay of the log in \['true_nl'"):
        sim.check_replay()
