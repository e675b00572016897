"""Faults a trainer or a test injects through the model (never by poking fields).

Each is a small frozen value; `Pump.inject(fault)` applies its real consequence and logs it,
`Pump.clear_fault(kind)` ends it where a real pump could recover or be reset.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._types import MS_PER_HOUR


@dataclass(frozen=True, slots=True)
class MotorStall:
    """The rotor stops (shaft wear, gear corrosion, shorting: domain #16-#17). Critical alarm;
    no drug flows; the calculated volume keeps following the program, so the under-delivery
    also shows as a refill discrepancy. Recovers by itself after `recover_after_ms` if given."""

    recover_after_ms: int | None = None


@dataclass(frozen=True, slots=True)
class CatheterOcclusion:
    """The catheter is blocked. No pump-side sensor: no alarm, the calculated volume keeps
    falling while the true volume does not; only a refill discrepancy reveals it."""


@dataclass(frozen=True, slots=True)
class CatheterLeak:
    """A share of what leaves the catheter goes to the tissue, not the intrathecal space."""

    share_ppm: int


@dataclass(frozen=True, slots=True)
class PocketFill:
    """At the next refill, `volume_nl` of the added volume misses the reservoir and goes into
    the subcutaneous pocket; it shows as a discrepancy at the refill after."""

    volume_nl: int


@dataclass(frozen=True, slots=True)
class CriticalMemoryError:
    """Critical data corrupt: delivery stops until the pump is reprogrammed."""


@dataclass(frozen=True, slots=True)
class NoncriticalMemoryError:
    """Non-critical data corrupt: a low-priority alarm, cleared by acknowledging it."""


@dataclass(frozen=True, slots=True)
class MriExposure:
    """An MRI scan of `duration_ms`. SynchroMed: the motor stalls and recovers
    `recovery_delay_ms` after the scan (2-24 h, domain #19). Prometra II: the valve closes
    (up to 10 uL passes) until reset. Constant flow: unaffected (logged only)."""

    duration_ms: int = 30 * 60_000
    recovery_delay_ms: int = 2 * MS_PER_HOUR


@dataclass(frozen=True, slots=True)
class DeliveryInaccuracy:
    """Sets the device's delivery error: + over-infuses, - under-infuses (max +14.5 %)."""

    error_ppm: int


@dataclass(frozen=True, slots=True)
class PrematureEri:
    """The battery reaches the elective replacement indicator now (domain #11)."""


@dataclass(frozen=True, slots=True)
class PrematureEos:
    """The battery reaches end of service now: the pump stops for good (domain #11)."""


@dataclass(frozen=True, slots=True)
class LowBatteryReset:
    """Battery voltage collapse and reset: critical alarm, rate forced to the profile's safe
    minimum until reprogrammed (domain #11-#12)."""


Fault = (
    MotorStall
    | CatheterOcclusion
    | CatheterLeak
    | PocketFill
    | CriticalMemoryError
    | NoncriticalMemoryError
    | MriExposure
    | DeliveryInaccuracy
    | PrematureEri
    | PrematureEos
    | LowBatteryReset
)
