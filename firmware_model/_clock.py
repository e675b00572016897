"""Time: the model clock and the pump clock, advancing (`advance_to`: integrate to the next
internal event, apply it), `next_event_time`, setting the pump clock, and `_settle`, which
applies every condition due at the current instant until nothing changes.
"""

from __future__ import annotations

from ._alarms import CATALOGUE
from ._command import CommandMixin
from ._core import NEVER, STOPPED_ALARM_MS
from ._errors import ModelError, TimeWentBackwards
from ._members import (
    BATTERY_EOS,
    BATTERY_ERI,
    BATTERY_OK,
    DRUG_NONE,
    MODE_BRIDGE,
    MODE_CONTINUOUS,
    MODE_STOPPED,
    SOURCE_PUMP,
)
from ._state import NO_COMMAND, Applied
from ._types import (
    MS_PER_MIN,
    Alarm,
    AlarmState,
    BolusKind,
    Command,
    EventKind,
    Reason,
    Source,
)

MAX_UTC_OFFSET_MS = 18 * 60 * MS_PER_MIN  # the widest offset accepted (real ones: -12 h .. +14 h)
ZONE_MAX = 64  # characters of an IANA zone name (the longest real one has 32)
# bolus kinds whose end changes the basal (_replan): priming pauses it, then-stop stops it
_REPLAN_AT_END = (BolusKind.PRIMING, BolusKind.CLINICIAN_SINGLE)
_ZONE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-")


def valid_zone_name(zone: str) -> bool:
    """An IANA-style zone name: 1 .. ZONE_MAX characters of letters, digits and / _ + -."""
    return 0 < len(zone) <= ZONE_MAX and all(ch in _ZONE_CHARS for ch in zone)


def clinic_clock_problem(utc_offset_ms: int, zone: str) -> str | None:
    """Why this UTC offset and zone name cannot be the clinic's clock, or None."""
    if utc_offset_ms % MS_PER_MIN or not -MAX_UTC_OFFSET_MS <= utc_offset_ms <= MAX_UTC_OFFSET_MS:
        return "utc_offset_ms must be whole minutes, -18 h .. +18 h"
    if not valid_zone_name(zone):
        return f"zone must be 1 .. {ZONE_MAX} characters of A-Z a-z 0-9 / _ + - (an IANA name)"
    return None


ZONE_NAME_NEW, ZONE_NAME_OLD = 1, 2  # which name a ZONE_NAME record carries
ZONE_PART_BYTES = 8  # of the name per ZONE_NAME record (its b)


def zone_name_parts(which: int, zone: str) -> list[tuple[int, int]]:
    """The (a, b) of the ZONE_NAME records that carry a zone name exactly, since a record holds
    two integers: a = 100 x which + 10 x parts + part (0-based), b = the part's 8 bytes of the
    name, big-endian, zero-padded (a valid name is ASCII, so b >= 0)."""
    raw = zone.encode("ascii")
    chunks = [raw[i : i + ZONE_PART_BYTES] for i in range(0, len(raw), ZONE_PART_BYTES)]
    n = len(chunks)
    return [
        (100 * which + 10 * n + i, int.from_bytes(c.ljust(ZONE_PART_BYTES, b"\0"), "big"))
        for i, c in enumerate(chunks)
    ]


class ClockMixin(CommandMixin):
    __slots__ = ()

    @property
    def now(self) -> int:
        """Model time (ms)."""
        return self._s.now

    @property
    def clock_ms(self) -> int:
        """The pump clock (ms since the epoch, as the pump believes)."""
        return self._s.now + self._s.clock_offset_ms

    @property
    def self_test_ends_at(self) -> int:
        """Model time the power-on self test ends (commands are answered BUSY before it)."""
        return self._s.post_until

    def next_event_time(self) -> int | None:
        """Model time of the next thing that happens on its own: an internal event or a
        schedule step boundary. None: nothing will happen until a command arrives."""
        t = self._next_internal()
        sounding = self._sounding()
        if sounding is not None:  # tones are counted analytically, but a runtime may beep
            t = min(t, max(self._s.now, sounding.next_tone_at))
        if self._basal is not None and not self._basal.is_constant:
            off = self._tod_off
            step = self._basal.next_change(self._s.now + off)
            if step is not None:
                t = min(t, step - off)
        return None if t >= NEVER else t

    def advance_to(self, t: int) -> int:
        """Apply everything that happens up to model time t. Returns internal events processed."""
        s = self._s
        if t < s.now:
            raise TimeWentBackwards(f"advance_to({t}) is before the model time {s.now}")
        n = same = 0
        # a reference pump finds each next event exactly, not only whether one comes by t
        horizon = NEVER if self._reference else t
        while True:
            e = self._next_internal(horizon)
            if e > t:
                self._flow(t)
                return n
            same = same + 1 if e == s.now else 0
            if same > 64:  # a condition that settling does not consume: a model bug, loudly
                raise ModelError(f"internal event at {e} is never consumed")
            self._flow(e)
            self._settle(planned=True)  # _flow changes nothing _replan reads
            n += 1

    @property
    def local_clock_ms(self) -> int:
        """The pump's local clock: pump clock + the clinic's UTC offset (schedules run on it)."""
        return self._s.now + self._tod_off

    def set_clock(
        self,
        clock_ms: int,
        *,
        utc_offset_ms: int | None = None,
        zone: str | None = None,
        command_id: bytes = NO_COMMAND,
        source: Source = Source.PROGRAMMER,
    ) -> Applied:
        """Sets the pump clock and, with `utc_offset_ms` and `zone` (both or neither), the
        clinic's local-time offset and its IANA zone name; without them the pump keeps its
        offset (the 1.0 SET_CLOCK). A schedule follows the new local time of day at once: a
        sync that moves local time forward skips the steps in between, one that moves it back
        runs them again. The pump never changes its offset by itself (no DST rules inside)."""
        c = self._begin(Command.SET_CLOCK, command_id, source, None, therapy=False)
        if not 0 <= clock_ms < 1 << 53:
            c.reject(Reason.INVALID_VALUE, "clock must be 0 .. 2^53 ms since the epoch")
        if (utc_offset_ms is None) != (zone is None):
            c.reject(Reason.INVALID_VALUE, "utc_offset_ms and zone are set together")
        if utc_offset_ms is not None and zone is not None:
            problem = clinic_clock_problem(utc_offset_ms, zone)
            if problem is not None:
                c.reject(Reason.INVALID_VALUE, problem)
        s = self._s
        old = self.clock_ms
        s.clock_offset_ms = clock_ms - s.now
        seq = c.log(EventKind.CLOCK_SET, old, clock_ms)
        if utc_offset_ms is not None and zone is not None:
            self._set_zone(c.source, c.command_id, utc_offset_ms, zone)
        return c.done(seq)

    def _set_zone(self, source: Source, command_id: bytes, utc_offset_ms: int, zone: str) -> None:
        """The clinic's clock becomes this (valid) offset and zone. Only a change is logged, and
        exactly: ZONE_SET (old, new offset), then the new zone's name and the old one's in
        ZONE_NAME records; the same offset and zone again change nothing and log nothing."""
        s = self._s
        if (utc_offset_ms, zone) == (s.utc_offset_ms, s.zone):
            return
        self._log(EventKind.ZONE_SET, source, command_id, s.utc_offset_ms, utc_offset_ms)
        for a, b in zone_name_parts(ZONE_NAME_NEW, zone) + zone_name_parts(ZONE_NAME_OLD, s.zone):
            self._log(EventKind.ZONE_NAME, source, command_id, a, b)
        s.utc_offset_ms = utc_offset_ms
        s.zone = zone

    def _settle(self, planned: bool = False) -> None:
        """Apply every condition due at the current time, until nothing changes. `planned`: the
        caller's change since the last settle leaves everything `_replan` reads as it was (an
        internal event reached by `_flow`, which only integrates; a patient bolus started), so
        the basal planned then still holds and the first pass need not plan it again."""
        s = self._s
        prof = self._profile
        bat = prof.battery
        now = s.now
        if self._reference:
            planned = False
        for _ in range(16):
            if planned:
                planned = False
                self._next = None  # as _replan would
            else:
                self._replan()
            seq0 = s.next_seq
            n0 = len(s.alarms)
            b = s.bolus
            replan_after_end = True
            if b is not None and b.start_ms + b.duration_ms <= now:  # b.end_ms, inlined
                # the end of a patient or clinician bolus changes nothing _replan reads (a
                # priming one paused the basal, a then-stop one stops the program)
                replan_after_end = self._reference or b.kind in _REPLAN_AT_END
                self._end_bolus(cancelled=False, source=SOURCE_PUMP, command_id=NO_COMMAND)
            seq1 = s.next_seq
            n1 = len(s.alarms)
            if s.mode is MODE_BRIDGE and s.bridge_left_nl <= 0:
                s.mode = MODE_CONTINUOUS
                self._log(
                    EventKind.PROGRAM_CHANGED,
                    SOURCE_PUMP,
                    NO_COMMAND,
                    int(MODE_CONTINUOUS),
                    s.dose_ng_per_day,
                )
            f = s.faults
            if f.stalled and f.stall_recover_at and f.stall_recover_at <= now:
                self._recover(SOURCE_PUMP, NO_COMMAND)
            if f.granuloma_since >= 0:
                self._granuloma_due()
            drug = s.drug is not DRUG_NONE
            if drug:
                if s.calc_nl <= prof.empty_threshold_nl:
                    self._raise(Alarm.EMPTY_RESERVOIR, SOURCE_PUMP, NO_COMMAND)
                elif s.alarms:  # resolving an alarm that is not raised does nothing
                    self._resolve(Alarm.EMPTY_RESERVOIR, SOURCE_PUMP, NO_COMMAND)
                if s.calc_nl <= s.low_threshold_nl:
                    self._raise(Alarm.LOW_RESERVOIR, SOURCE_PUMP, NO_COMMAND)
                elif s.alarms:
                    self._resolve(Alarm.LOW_RESERVOIR, SOURCE_PUMP, NO_COMMAND)
            if bat is not None:
                if s.battery is BATTERY_OK and (
                    s.battery_used_bu >= bat.eri_used_bu
                    or now >= s.implanted_at + bat.service_life_ms  # self._service_end()
                ):
                    self._eri(SOURCE_PUMP, NO_COMMAND)
                if s.battery is BATTERY_ERI and now >= s.eos_at:
                    self._eos(SOURCE_PUMP, NO_COMMAND)
            if (
                drug
                and (s.mode is MODE_STOPPED or s.suspended)
                and s.bolus is None
                and s.battery is not BATTERY_EOS
            ):  # stopped
                if s.stopped_since < 0:
                    s.stopped_since = now
                elif now >= s.stopped_since + STOPPED_ALARM_MS:
                    self._raise(Alarm.PUMP_STOPPED, SOURCE_PUMP, NO_COMMAND)
            else:
                s.stopped_since = -1
                if s.alarms:
                    self._resolve(Alarm.PUMP_STOPPED, SOURCE_PUMP, NO_COMMAND)
            if s.alarms:
                for r in s.alarms:
                    if r.state is AlarmState.SILENCED and r.silenced_until <= now:
                        r.state = AlarmState.ACTIVE
                        r.silenced_until = 0
                sounding = self._sounding()
                if sounding is not None and sounding.next_tone_at <= now:
                    s.tones_sounded += 1
                    s.last_tone_at = now
                    s.last_tone = CATALOGUE[sounding.alarm].tone
                    sounding.next_tone_at = now + self._repeat(sounding.alarm)
            seq2 = s.next_seq
            n2 = len(s.alarms)
            if seq2 == seq0 and n2 == n0:
                # nothing logged, so nothing _replan reads changed since this pass began with
                # one (every change of mode, bolus, alarm or battery state is logged)
                break
            if seq2 == seq1 and n2 == n1:
                # only the bolus end changed anything, and every test after it in this pass
                # already saw that state (none reads the basal _replan sets): another pass
                # would change nothing but the basal
                if replan_after_end:
                    self._replan()
                break
        else:
            self._replan()
        self._next = None
