"""Refill: recording a refill (the refill report, pocket fill, the true reservoir's mixed
concentration, a drug change) and setting the true reservoir volume (trainers and tests).
"""

from __future__ import annotations

from ._command import CommandMixin
from ._core import CONTROL_TRUE_RESERVOIR, HAZARD_PPM
from ._state import NO_COMMAND, RefillReport
from ._types import PPM, Command, ConcentrationUnit, Drug, EventKind, FaultKind, Reason, Source


class RefillMixin(CommandMixin):
    __slots__ = ()

    def record_refill(
        self,
        *,
        withdrawn_nl: int,
        added_nl: int,
        drug: Drug,
        conc_ng_per_ml: int,
        unit: ConcentrationUnit,
        low_threshold_nl: int | None = None,
        confirm_soft_limit: bool = False,
        expected_version: int | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> RefillReport:
        """Records a refill: the reservoir was emptied (`withdrawn_nl` came back), then
        `added_nl` of `drug` at `conc` was injected. The calculated volume becomes `added_nl`.
        A drug or concentration change stops the program until it is re-confirmed."""
        c = self._begin(Command.RECORD_REFILL, command_id, source, expected_version)
        s = self._s
        prof = self._profile
        cap = prof.reservoir_nl
        threshold = s.low_threshold_nl if low_threshold_nl is None else low_threshold_nl
        if not 0 < added_nl <= cap:
            c.reject(
                Reason.INVALID_VALUE, f"added volume must be 1 .. {cap} nL (reservoir capacity)"
            )
        if not 0 <= withdrawn_nl <= cap:
            c.reject(Reason.INVALID_VALUE, f"withdrawn volume must be 0 .. {cap} nL")
        if not prof.empty_threshold_nl <= threshold < cap:
            c.reject(
                Reason.INVALID_VALUE,
                f"low-reservoir threshold must be {prof.empty_threshold_nl} .. {cap - 1} nL",
            )
        if s.bolus is not None:
            c.reject(Reason.INVALID_STATE, "a bolus is running: cancel it before a refill")
        c.check_drug(drug, conc_ng_per_ml, unit)
        if prof.fixed_rate_nl_per_day:
            c.check_dose_limits(
                drug, self._fixed_daily_dose_x1440(conc_ng_per_ml), confirm_soft_limit
            )
        # --- apply: the refill report first, from the state before ---
        expected = s.calc_nl
        discrepancy = withdrawn_nl - expected
        den = s.filled_nl - expected
        num = s.filled_nl - withdrawn_nl
        # A ratio over less than the discrepancy limit is noise (one nanolitre off on a few
        # delivered would read as 0 %): then only the absolute discrepancy is judged.
        basis = max(1, prof.discrepancy_limit_nl)
        ratio = None if den < basis else (num * PPM * 2 + den) // (2 * den)
        beyond = abs(discrepancy) > prof.discrepancy_limit_nl or (
            ratio is not None and abs(ratio - PPM) > HAZARD_PPM
        )
        f = s.faults
        remaining = max(0, s.true_nl - withdrawn_nl)
        reaching = max(0, added_nl - f.pocket_fill_nl)
        true_after = min(cap, remaining + reaching)
        if true_after:
            s.true_conc_ng_per_ml = (
                remaining * s.true_conc_ng_per_ml + reaching * conc_ng_per_ml
            ) // (remaining + reaching)
        if f.pocket_fill_nl:
            self._log(
                EventKind.FAULT,
                Source.PUMP,
                command_id,
                int(FaultKind.POCKET_FILL),
                added_nl - reaching,
            )
            f.pocket_fill_nl = 0
        s.true_nl = true_after
        s.dry = s.true_nl <= prof.empty_threshold_nl
        s.calc_nl = added_nl
        s.filled_nl = added_nl
        s.low_threshold_nl = threshold
        s.last_refill_at = self.clock_ms
        if (drug, conc_ng_per_ml) != (s.drug, s.conc_ng_per_ml):
            self._apply_drug(drug, conc_ng_per_ml, unit, command_id)
            c.log(EventKind.DRUG_CHANGED, int(drug), conc_ng_per_ml)
        else:
            s.conc_unit = unit
        seq = c.commit(EventKind.REFILL, added_nl, discrepancy).event_seq
        low = self._predict(s.low_threshold_nl)
        empty = self._predict(prof.empty_threshold_nl)
        off = s.clock_offset_ms
        return RefillReport(
            program_version=s.program_version,
            event_seq=seq,
            expected_residual_nl=expected,
            withdrawn_nl=withdrawn_nl,
            discrepancy_nl=discrepancy,
            delivery_ratio_ppm=ratio,
            beyond_limits=beyond,
            reservoir_volume_nl=s.calc_nl,
            low_reservoir_at_ms=None if low is None else low + off,
            empty_at_ms=None if empty is None else empty + off,
        )

    def set_true_reservoir(self, volume_nl: int, *, source: Source = Source.CONTROL) -> int:
        """What is truly in the reservoir (trainers and tests). The pump's calculated volume is
        left alone, as on a real pump: the difference shows at the next refill. The drug and
        its concentration are unchanged. Returns the seq of its CONTROL record (a = 10)."""
        s = self._s
        if not 0 <= volume_nl <= self._profile.reservoir_nl:
            raise ValueError(f"volume_nl must be 0 .. {self._profile.reservoir_nl}")
        old = s.true_nl
        s.true_nl = volume_nl
        s.dry = volume_nl <= self._profile.empty_threshold_nl
        seq = self._log(EventKind.CONTROL, source, NO_COMMAND, CONTROL_TRUE_RESERVOIR, old)
        self._settle()
        return seq
