"""100,000 mutated and random inputs into the running emulator (stream decoder, sessions and
the pump together, reliability.md claim 1): no exception escapes, nothing is applied, the
program keeps delivering exactly as before."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest

import firmware_model as fm
import protocol as p

from .emulator_helpers import Rig
from .helpers import recrc
from .test_session_fuzz import _mutate

HARMLESS = {fm.EventKind.SECURITY, fm.EventKind.SESSION_OPENED, fm.EventKind.SESSION_CLOSED}


def _therapy_frames(rig: Rig) -> list[bytes]:
    """Valid sealed commands of every therapy kind, captured but never sent as they are."""
    host = rig.host()
    rig.ready_pump(host)
    v = host.version
    cid = uuid.uuid4().bytes
    messages: list[p.Message] = [
        p.SetContinuousDose(command_id=cid, expected_program_version=v, dose_ng_per_day=1_000_000,
                            confirm_soft_limit=True),
        p.StartClinicianBolus(command_id=cid, expected_program_version=v, dose_ng=100_000,
                              duration_ms=600_000, then_stop=True, confirm_soft_limit=True),
        p.Suspend(command_id=cid, expected_program_version=v),
        p.SetClock(command_id=cid, pump_time_ms=12345),
        p.RecordRefill(command_id=cid, expected_program_version=v, withdrawn_volume_nl=0,
                       added_volume_nl=1_000_000, drug=p.Drug.BACLOFEN,
                       concentration_ng_per_ml=2_000_000,
                       concentration_unit=p.ConcentrationUnit.MCG_PER_ML,
                       low_reservoir_threshold_nl=2_000_000, confirm_soft_limit=True),
        p.GetStatus(),
    ]  # fmt: skip
    return [host.seal(m) for m in messages]


def _fingerprint(rig: Rig) -> tuple[object, ...]:
    st = rig.pump.status()
    return (
        st.program_version,
        st.mode,
        st.daily_dose_ng,
        st.suspended,
        st.bolus,
        st.drug,
        st.conc_ng_per_ml,
        st.reservoir_nl,
        st.program_total_nl,
        rig.pump.clock_ms,
        rig.pump.patient_bolus,
        rig.pump.alarm_settings,
    )


def fuzz(tmp_path: Path, count: int, seed: int) -> dict[str, int]:
    rig = Rig(tmp_path, seed=seed)
    rng = random.Random(seed)
    originals = _therapy_frames(rig)
    sessions = [s.session_id for s in rig.device.security.sessions]
    before = _fingerprint(rig)
    seq_before = rig.pump.event_seq
    answered = silent = 0
    for _ in range(count):
        original = rng.choice(originals)
        if rng.random() < 0.1:  # raw noise, sometimes with a valid magic and header start
            data = rng.randbytes(rng.randrange(1, 80))
            if rng.random() < 0.5:
                data = original[: rng.randrange(2, 16)] + data
        else:
            data = recrc(_mutate(rng, original, sessions))
            if data == original:
                continue  # not a mutation: a valid command would rightly be applied
        replies = rig.send(data)
        answered += bool(replies)
        silent += not replies
    rig.device.tick()
    assert _fingerprint(rig) == before, "a mutated or random input changed the pump"
    added = {e.kind for e in rig.pump.events(seq_before + 1)}
    assert added <= HARMLESS, added - HARMLESS
    assert rig.device.stats.commands_applied == 2  # the fill and the dose of ready_pump
    return {"answered": answered, "silent": silent}


def test_100k_mutated_and_random_inputs_into_the_running_emulator(tmp_path: Path) -> None:
    counts = fuzz(tmp_path, 100_000, seed=11)
    assert counts["answered"] > 1_000 and counts["silent"] > 1_000


@pytest.mark.slow
def test_a_million_inputs_into_the_running_emulator(tmp_path: Path) -> None:
    for seed in range(10):
        fuzz(tmp_path / str(seed), 100_000, seed=100 + seed)
