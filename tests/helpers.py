"""Shared test helpers: Hypothesis strategies derived from the declarations, and a session pair."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

import protocol as p
from protocol._schema import FieldSpec, Kind

PUMP_ID = 1234


def field_strategy(f: FieldSpec) -> st.SearchStrategy[Any]:
    if f.kind is Kind.INT:
        return st.integers(f.min, f.max)
    if f.kind is Kind.BOOL:
        return st.booleans()
    if f.kind is Kind.ENUM:
        assert f.enum_type is not None
        return st.sampled_from(list(f.enum_type))
    if f.kind is Kind.FLAGS:
        assert f.enum_type is not None
        bits = [m.value for m in f.enum_type]
        return st.sets(st.sampled_from(bits)).map(lambda s: f.enum_type(sum(s)))  # type: ignore[misc]
    if f.kind is Kind.BYTES:
        n = f.base.length
        return st.binary(min_size=n, max_size=n)
    if f.kind is Kind.TEXT:
        assert f.max is not None
        limit = f.max
        return st.text(max_size=limit).filter(lambda s: len(s.encode("utf-8")) <= limit)
    assert f.item is not None and f.max is not None
    if f.item is p.ScheduleStep:
        return schedule_steps(f.min or 0, f.max)
    return st.lists(record_strategy(f.item), min_size=f.min or 0, max_size=f.max).map(tuple)


@st.composite
def schedule_steps(draw: st.DrawFn, min_count: int, max_count: int) -> tuple[p.ScheduleStep, ...]:
    starts = draw(st.sets(st.integers(1, 1439), max_size=max(0, max_count - 1)))
    minutes = sorted(starts)
    if min_count or minutes:
        minutes = [0, *minutes]
    doses = draw(
        st.lists(st.integers(0, 4_000_000_000), min_size=len(minutes), max_size=len(minutes))
    )
    return tuple(p.ScheduleStep(m, d) for m, d in zip(minutes, doses, strict=True))


_ONE_ALARM = st.sampled_from(list(p.Alarm))
_SOME_ALARMS = st.sets(st.sampled_from([a.value for a in p.Alarm]), min_size=1).map(
    lambda s: p.Alarm(sum(s))
)
_OVERRIDES: dict[tuple[type[Any], str], st.SearchStrategy[Any]] = {
    (p.AlarmEntry, "alarm"): _ONE_ALARM,
    (p.AcknowledgeAlarms, "alarms"): _SOME_ALARMS,
    (p.SilenceAlarms, "alarms"): _SOME_ALARMS,
}


def record_strategy(cls: type[Any]) -> st.SearchStrategy[Any]:
    fields = {}
    for f in cls.FIELDS:
        override = _OVERRIDES.get((cls, f.name))
        fields[f.name] = override if override is not None else field_strategy(f)
    return st.builds(cls, **fields)


ALL_MESSAGES = [p.MESSAGES[i] for i in sorted(p.MESSAGES)]
any_message = st.sampled_from(ALL_MESSAGES).flatmap(record_strategy)


def plain(message: p.Message, *, seq: int = 1, pump_id: int = PUMP_ID) -> bytes:
    from_pump = message.DIRECTION is p.Direction.PUMP_TO_HOST
    return p.encode_frame(message, pump_id=pump_id, seq=seq, from_pump=from_pump)


def only_frame(data: bytes) -> p.Frame:
    items = p.FrameDecoder().feed(data)
    assert len(items) == 1 and isinstance(items[0], p.Frame), items
    return items[0]


def recrc(frame: bytes | bytearray) -> bytes:
    """Recompute the CRC of a (tampered) frame, as an attacker who knows the protocol can."""
    msg_id = int.from_bytes(frame[8:10], "little")
    cls = p.MESSAGES.get(msg_id)
    seed = cls.SEED if cls else 0
    body = bytes(frame[:-2])
    return body + p.frame_crc(body, seed).to_bytes(2, "little")


def dose(cid: int = 1, version: int = 0, ng: int = 500_000) -> p.SetContinuousDose:
    return p.SetContinuousDose(
        command_id=cid.to_bytes(16, "little"),
        expected_program_version=version,
        dose_ng_per_day=ng,
        confirm_soft_limit=False,
    )


@dataclass
class Pair:
    """A pump security endpoint and a host endpoint joined in memory, with a fake clock."""

    role: p.Role = p.Role.CLINICIAN
    seed: int = 1
    now_ms: int = 0
    rng: random.Random = field(init=False)
    keys: dict[p.Role, p.SecretKey] = field(init=False)
    pump: p.PumpSecurity = field(init=False)
    host: p.HostSecurity = field(init=False)
    seq: int = 0
    hosts: int = 0  # host_ids handed out: each new host is another programmer

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.keys = {
            p.Role.CLINICIAN: p.SecretKey(self.rng.randbytes(32)),
            p.Role.PATIENT: p.SecretKey(self.rng.randbytes(32)),
        }
        self.pump = p.PumpSecurity(PUMP_ID, self.keys, self.rng.randbytes)
        self.host = self.new_host(self.role)

    def new_host(
        self, role: p.Role, key: p.SecretKey | None = None, host_id: int | None = None
    ) -> p.HostSecurity:
        if host_id is None:
            host_id, self.hosts = 9 + self.hosts, self.hosts + 1
        return p.HostSecurity(
            PUMP_ID, role, key or self.keys[role], self.rng.randbytes, host_id=host_id
        )

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        return self.seq

    def to_pump(self, data: bytes) -> p.Inbound:
        return self.pump.receive(only_frame(data), self.now_ms)

    def to_host(self, data: bytes, host: p.HostSecurity | None = None) -> p.HostEvent:
        return (host or self.host).receive(only_frame(data))

    def handshake(self, host: p.HostSecurity | None = None) -> p.SessionInfo:
        host = host or self.host
        challenge = self.to_pump(host.hello(seq=self.next_seq()))
        assert isinstance(challenge, p.Reply), challenge
        confirm = self.to_host(challenge.data, host)
        assert isinstance(confirm, p.Send)
        ready = self.to_pump(confirm.data)
        assert isinstance(ready, p.Reply), ready
        established = self.to_host(ready.data, host)
        assert isinstance(established, p.Established)
        return established.session

    def send(self, message: p.Message, host: p.HostSecurity | None = None) -> p.Inbound:
        return self.to_pump((host or self.host).seal(message, seq=self.next_seq()))
