"""The catheter's own complications: partial obstruction (a kink, a growing tip granuloma) and
the catheter access port (CAP) aspiration that shows the catheter's true state.

A partial obstruction holds back a share of what the pump pushes: the drug stays in the
reservoir (the true volume falls slower than the calculated one: a refill discrepancy), and
less reaches the patient. No pump has a sensor for it, so no alarm. A granuloma's share steps
once a day from its start to its end value; each step is an internal event, so the integral
stays exact and advancing costs O(events). Leaks and disconnections are `CatheterLeak`
(_faults.py): the drug leaves the reservoir and misses the patient. See docs/firmware_model.md.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._core import CONTROL_CAP_ASPIRATION, CONTROL_CATHETER_FILLED, PumpCore
from ._state import NO_COMMAND, Segment
from ._types import DAY_MS, PPM, EventKind, ProfileId, Source

# Implants have a catheter access port (SynchroMed II, Prometra II #36; the constant-flow
# pump's bolus port leads into the catheter too); the external trial pump's line has none.
NO_ACCESS_PORT = frozenset({ProfileId.EXTERNAL_TRIAL})


class CapFinding(enum.IntEnum):
    """What a catheter access port aspiration (and the contrast injection after it) shows.
    Derived from the true catheter state; the first that applies, in this order."""

    DISCONNECTED = 1  # no CSF, no resistance; contrast pools in the tissue at the break
    OBSTRUCTED = 2  # no CSF can be drawn; contrast does not leave the catheter
    PARTIAL_OBSTRUCTION = 3  # CSF comes slowly against resistance; contrast passes narrowed
    LEAK = 4  # CSF drawn; contrast escapes into the tissue at the tear
    PATENT = 5  # CSF drawn freely; contrast spreads in the intrathecal space


FINDING_TEXT: dict[CapFinding, str] = {
    CapFinding.DISCONNECTED: (
        "no CSF and no resistance: the catheter is disconnected or cut; "
        "contrast pools in the tissue at the break"
    ),
    CapFinding.OBSTRUCTED: (
        "no CSF can be aspirated: the catheter is blocked (occlusion, kink or tip granuloma); "
        "contrast does not leave the catheter"
    ),
    CapFinding.PARTIAL_OBSTRUCTION: (
        "CSF comes back slowly against resistance: a partial obstruction (kink or a growing "
        "tip granuloma); contrast passes narrowed"
    ),
    CapFinding.LEAK: (
        "CSF aspirated, but contrast escapes into the tissue at a tear: a catheter leak"
    ),
    CapFinding.PATENT: (
        "clear CSF aspirated freely: the catheter is patent and intrathecal; contrast spreads "
        "in the intrathecal space"
    ),
}


@dataclass(frozen=True, slots=True)
class CapAspiration:
    """The answer of a CAP aspiration. When CSF comes back, the catheter's contents were drawn
    off (`aspirated_nl` holding `drug_ng`; the pump tubing, before the port, keeps its fluid)
    and the catheter now holds CSF: the next catheter volume the pump pushes carries no drug
    until a priming bolus refills it."""

    event_seq: int
    finding: CapFinding
    text: str
    aspirated_nl: int
    drug_ng: int


@dataclass(frozen=True, slots=True)
class CatheterView:
    """The catheter's true state (ground truth for trainers: the pump knows none of it)."""

    restriction_ppm: int  # share of the pumped flow held back now (kink and granuloma)
    kink_ppm: int
    granuloma_ppm: int
    granuloma_final_ppm: int  # where the growing granuloma ends (0: none)
    granuloma_full_at_ms: int | None  # pump clock of its last daily step
    leak_ppm: int  # share lost to the tissue (100 %: disconnected)
    occluded: bool
    dead_volume_nl: int  # fluid in the catheter and pump tubing
    cap_finding: CapFinding  # what a CAP aspiration would show now
    # drug-free fluid at the tip end, all of which the patient receives before any drug (an
    # unprimed path after the first fill: ~0.23 mL, nearly a day at 0.25 mL/day); 0 = primed
    drug_free_nl: int = 0


class CatheterMixin(PumpCore):
    __slots__ = ()

    @property
    def catheter_volume_nl(self) -> int:
        """The implanted catheter's internal volume, set at implant (`create(catheter_volume_nl
        =...)`). The fluid path holds it plus `profile.pump_tubing_nl` whatever the fluid: what
        the pump pushes in at the reservoir end leaves at the tip, and an aspiration's CSF
        takes the place of what it draws, so the path's volume never changes."""
        return sum(seg.volume_nl for seg in self._s.catheter) - self._profile.pump_tubing_nl

    def fill_catheter(self, *, source: Source = Source.CONTROL) -> int:
        """Trainers and scenarios (an existing patient): the whole fluid path (pump tubing and
        catheter) holds the reservoir's drug, as after a priming long ago, so no drug-free
        volume stands between the pump and the patient. The volumes do not change. Returns
        the seq of its CONTROL record (a = 12, b = the path's volume in nL)."""
        s = self._s
        path = sum(seg.volume_nl for seg in s.catheter)
        s.catheter = [Segment(path, s.true_conc_ng_per_ml)] if path else []
        seq = self._log(EventKind.CONTROL, source, NO_COMMAND, CONTROL_CATHETER_FILLED, path)
        self._settle()
        return seq

    def catheter(self) -> CatheterView:
        s = self._s
        f = s.faults
        full = None
        if f.granuloma_since >= 0:
            full = f.granuloma_since + f.granuloma_days * DAY_MS + s.clock_offset_ms
        return CatheterView(
            restriction_ppm=self._restriction_ppm(),
            kink_ppm=f.kink_ppm,
            granuloma_ppm=f.granuloma_ppm,
            granuloma_final_ppm=f.granuloma_to_ppm,
            granuloma_full_at_ms=full,
            leak_ppm=f.leak_ppm,
            occluded=f.occluded,
            dead_volume_nl=sum(seg.volume_nl for seg in s.catheter),
            cap_finding=self.cap_finding(),
            drug_free_nl=_drug_free_nl(s.catheter),
        )

    def _restriction_ppm(self) -> int:
        """Share of the pumped flow the catheter holds back now (kink and granuloma in series:
        what passes is the product of what each lets pass, rounded down)."""
        f = self._s.faults
        if not (f.kink_ppm or f.granuloma_ppm):
            return 0
        return PPM - (PPM - f.kink_ppm) * (PPM - f.granuloma_ppm) // PPM

    def _granuloma_next(self) -> int | None:
        """Model time of the granuloma's next daily step, or None."""
        f = self._s.faults
        if f.granuloma_since < 0 or f.granuloma_steps >= f.granuloma_days:
            return None
        return f.granuloma_since + (f.granuloma_steps + 1) * DAY_MS

    def _granuloma_due(self) -> None:
        """Take every daily step due by now (called from `_settle`)."""
        f = self._s.faults
        t = self._granuloma_next()
        while t is not None and t <= self._s.now:
            f.granuloma_steps += 1
            f.granuloma_ppm = (
                f.granuloma_from_ppm
                + (f.granuloma_to_ppm - f.granuloma_from_ppm)
                * f.granuloma_steps
                // f.granuloma_days
            )
            t = self._granuloma_next()

    def _start_granuloma(self, start_ppm: int, end_ppm: int, days: int) -> None:
        f = self._s.faults
        f.granuloma_since = self._s.now
        f.granuloma_from_ppm = f.granuloma_ppm = start_ppm
        f.granuloma_to_ppm = end_ppm
        f.granuloma_days = days
        f.granuloma_steps = 0

    def _end_granuloma(self) -> None:
        f = self._s.faults
        f.granuloma_since = -1
        f.granuloma_ppm = f.granuloma_from_ppm = f.granuloma_to_ppm = 0
        f.granuloma_days = f.granuloma_steps = 0

    def cap_finding(self) -> CapFinding:
        """What a CAP aspiration would show now (no side effect)."""
        f = self._s.faults
        r = self._restriction_ppm()
        if f.leak_ppm >= PPM:
            return CapFinding.DISCONNECTED
        if f.occluded or r >= PPM:
            return CapFinding.OBSTRUCTED
        if r:
            return CapFinding.PARTIAL_OBSTRUCTION
        if f.leak_ppm:
            return CapFinding.LEAK
        return CapFinding.PATENT

    def aspirate_cap(self, *, source: Source = Source.CONTROL) -> CapAspiration:
        """A clinician aspirates through the catheter access port (trainers and tests: the pump
        itself cannot see it). Logs a CONTROL record (a = 11, b = the CapFinding). Where CSF
        comes back, the catheter's contents are drawn off and replaced by CSF. A pump without
        an access port (the external trial pump) raises ValueError and changes nothing."""
        s = self._s
        if self._profile.id in NO_ACCESS_PORT:
            raise ValueError(f"a {self._profile.name} has no catheter access port")
        finding = self.cap_finding()
        volume = drug_fg = 0
        if finding in (CapFinding.PARTIAL_OBSTRUCTION, CapFinding.LEAK, CapFinding.PATENT):
            # the port opens into the catheter past the pump: the pump tubing keeps its fluid
            want = sum(seg.volume_nl for seg in s.catheter) - self._profile.pump_tubing_nl
            kept: list[Segment] = []
            for seg in s.catheter:  # from the tip
                take = min(seg.volume_nl, max(0, want - volume))
                volume += take
                drug_fg += take * seg.conc_ng_per_ml
                if seg.volume_nl > take:
                    kept.append(Segment(seg.volume_nl - take, seg.conc_ng_per_ml))
            s.catheter = ([Segment(volume, 0)] if volume else []) + kept
        seq = self._log(EventKind.CONTROL, source, NO_COMMAND, CONTROL_CAP_ASPIRATION, int(finding))
        self._settle()
        return CapAspiration(seq, finding, FINDING_TEXT[finding], volume, drug_fg // 1_000_000)


def _drug_free_nl(path: list[Segment]) -> int:
    """Volume of the drug-free slugs at the tip end of the fluid path (index 0 is the tip)."""
    free = 0
    for seg in path:
        if seg.conc_ng_per_ml:
            break
        free += seg.volume_nl
    return free
