"""reliability.md claim 18, "Clear errors": every member of `protocol.ErrorCode` is provoked
against the real emulator device (a `PumpDevice` on a fake clock with its SQLite store), and
each refusal is checked the same way:

- the pump answered with exactly that code, or stayed silent where the spec says "silent"
  (then a SECURITY record counts the refused frame);
- the ERROR's `detail` is a message a person can act on (non-empty, at most 200 UTF-8 bytes,
  more than the code's name), its `request_msg_id` and `command_id` name the refused request,
  and its frame answers the request's `seq` (UNSUPPORTED_VERSION: seq 0, protocol.md 10);
- the refusal changed nothing: the model's state (without its event log, the telemetry count
  and the battery charge for telemetry) and the program version are the same before and after
  the refused frame, with no time passing in between.

One recipe per code in `RECIPES`: a code added to the protocol without a recipe fails the suite.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

import pytest

import firmware_model as fm
import protocol as p
from emulator._device import LOG_FLUSH_MS
from protocol._frame import AUTH_HEADER, FLAG_AUTH, HEADER, MAGIC

from .emulator_helpers import MORPHINE_FILL, NS_PER_MS, SERIAL, Host, Rig, only_frame
from .helpers import recrc

M = TypeVar("M", bound=p.Message)

NO_COMMAND = bytes(16)
MAX_DETAIL_BYTES = 200
# Fields of the model state a refused frame may change: the event log (refusals are logged)
# and the battery charge for the telemetry frames sent (the ERROR reply itself costs energy).
VOLATILE = ("events", "next_seq", "telemetry_frames", "battery_used_bu")
BACLOFEN_FILL: dict[str, Any] = {
    **MORPHINE_FILL,
    "drug": p.Drug.BACLOFEN,
    "concentration_ng_per_ml": 2_000_000,  # 2000 mcg/mL
    "concentration_unit": p.ConcentrationUnit.MCG_PER_ML,
}
PATIENT_BOLUS: dict[str, Any] = {
    "enabled": True,
    "dose_ng": 250_000,
    "duration_ms": 600_000,
    "lockout_ms": 3_600_000,
    "max_per_24h": 4,
}


@dataclasses.dataclass
class Trial:
    """A pump set up so that `data`, sent next, is refused with the recipe's code."""

    rig: Rig
    data: bytes  # the offending frame(s), as they go on the wire
    reader: Host  # decodes the answer (sealed in its session, or plain)
    request_msg_id: int  # what the ERROR must name (0: no message id can be read)
    command_id: bytes = NO_COMMAND  # the refused command's id (zeros: not decoded or none)
    # active while `data` is received (a monkeypatch, a failing disk)
    during: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext


# --- building blocks --------------------------------------------------------------------------


def ready(path: Path, **kw: Any) -> tuple[Rig, Host]:
    """A pump past its self test, filled with morphine and running 10 mg/day; a clinician."""
    rig = Rig(path, **kw)
    host = rig.host()
    rig.ready_pump(host)
    return rig, host


def build(host: Host, cls: type[M], **fields: Any) -> M:
    """A message as `Host.command` would send it: a fresh command id, the version last read."""
    names = {f.name for f in cls.FIELDS}
    if "command_id" in names:
        fields.setdefault("command_id", uuid.UUID(int=host.rig.rng.getrandbits(128)).bytes)
    if "expected_program_version" in names:
        fields.setdefault("expected_program_version", host.version)
    if "confirm_soft_limit" in names:
        fields.setdefault("confirm_soft_limit", False)
    return cls(**fields)


def sealed(rig: Rig, host: Host, cls: type[p.Message], **fields: Any) -> Trial:
    """A well-formed command in `host`'s session (refused by the device or the model)."""
    msg = build(host, cls, **fields)
    cid = getattr(msg, "command_id", NO_COMMAND)
    return Trial(rig, host.seal(msg), host, cls.MSG_ID, cid)


def model_refusal(rig: Rig, host: Host, cls: type[p.Message], **fields: Any) -> Trial:
    host.status()  # the program version is current: only the model's rule refuses it
    return sealed(rig, host, cls, **fields)


def seal_payload(host: Host, cls: type[p.Message], payload: bytes) -> bytes:
    """A frame sealed in `host`'s session around a payload the encoder would never produce."""
    channel = host.security._channel
    assert channel is not None
    channel.send_counter += 1
    seq = host.next_seq()
    body = (
        HEADER.pack(MAGIC, p.PROTOCOL_MAJOR, FLAG_AUTH, len(payload), seq, cls.MSG_ID, SERIAL)
        + AUTH_HEADER.pack(channel.session_id, channel.send_counter)
        + payload
    )
    mac = channel.send_mac.copy()
    mac.update(body[2:])
    body += mac.digest()[:16]
    return body + p.frame_crc(body, cls.SEED).to_bytes(2, "little")


def failed_handshake(rig: Rig) -> None:
    """A programmer with a wrong clinician key: HELLO, then a CONFIRM with a guessed tag."""
    attacker = Host(rig, p.Role.CLINICIAN, p.SecretKey(bytes(32)))
    (reply,) = rig.send(attacker.security.hello(seq=attacker.next_seq()))
    challenge = only_frame(reply).decode()
    assert isinstance(challenge, p.Challenge), challenge
    confirm = p.Confirm(session_id=challenge.session_id, tag=bytes(16))
    (reply,) = rig.send(p.encode_frame(confirm, pump_id=SERIAL, seq=2, from_pump=False))
    refusal = only_frame(reply).decode()
    assert isinstance(refusal, p.Error) and refusal.code is p.ErrorCode.HANDSHAKE_FAILED


def dose(ng: int = 12_000_000) -> dict[str, Any]:
    return {"dose_ng_per_day": ng}


# --- one recipe per error code ----------------------------------------------------------------


def malformed(path: Path) -> Trial:
    rig, host = ready(path)
    msg = build(
        host,
        p.SetDrug,
        drug=p.Drug.MORPHINE,
        concentration_ng_per_ml=20_000_000,
        concentration_unit=p.ConcentrationUnit.MG_PER_ML,
    )
    payload = bytearray(msg._encode())
    drug_at = 20  # command_id (16) + expected_program_version (u32)
    assert payload[drug_at] == p.Drug.MORPHINE
    payload[drug_at] = 200  # no such drug: right size, wrong value
    return Trial(rig, seal_payload(host, p.SetDrug, bytes(payload)), host, p.SetDrug.MSG_ID)


def unknown_message(path: Path) -> Trial:
    rig, _ = ready(path)
    # the header of a message a newer peer might send (no CRC can be checked for it)
    data = HEADER.pack(MAGIC, p.PROTOCOL_MAJOR, 0, 0, 77, 0x7777, SERIAL) + b"\0\0"
    return Trial(rig, data, rig.host(handshake=False), 0x7777)


def unsupported_version(path: Path) -> Trial:
    rig, _ = ready(path)
    v2 = bytearray(p.encode_frame(p.GetStatus(), pump_id=SERIAL, seq=5, from_pump=False))
    v2[2] = 2  # major version 2: its msg_id is not readable, so request_msg_id is 0
    return Trial(rig, bytes(v2), rig.host(handshake=False), 0)


def wrong_pump(path: Path) -> Trial:
    rig, host = ready(path)
    msg = build(host, p.SetContinuousDose, **dose())
    data = p.encode_frame(msg, pump_id=SERIAL + 1, seq=3, from_pump=False)
    return Trial(rig, data, host, p.SetContinuousDose.MSG_ID)


def not_authenticated(path: Path) -> Trial:
    rig, host = ready(path)
    msg = build(host, p.SetContinuousDose, **dose())
    data = p.encode_frame(msg, pump_id=SERIAL, seq=3, from_pump=False)  # no session
    return Trial(rig, data, host, p.SetContinuousDose.MSG_ID)


def auth_failed(path: Path) -> Trial:
    rig, host = ready(path)
    forged = bytearray(host.seal(build(host, p.SetContinuousDose, **dose())))
    forged[-5] ^= 1  # a bit of the tag; the CRC recomputed, as an attacker can
    return Trial(rig, recrc(forged), host, p.SetContinuousDose.MSG_ID)


def replayed(path: Path) -> Trial:
    rig, host = ready(path)
    data = host.seal(build(host, p.SetContinuousDose, **dose()))
    ack = host.answer(rig.send(data))
    assert isinstance(ack, p.CommandAck) and not ack.duplicate
    return Trial(rig, data, host, p.SetContinuousDose.MSG_ID)  # the same frame, captured


def role_forbidden(path: Path) -> Trial:
    rig, _ = ready(path)
    patient = rig.host(p.Role.PATIENT)
    patient.status()
    return sealed(rig, patient, p.SetContinuousDose, **dose())


def session_expired(path: Path) -> Trial:
    rig, host = ready(path)
    idle = rig.device.security.policy.idle_timeout_ms
    rig.sleep(idle)  # housekeeping ran: exactly at the idle limit the session is still open
    rig.mono_ns += NS_PER_MS  # 1 ms later a frame arrives, before the next housekeeping tick
    rig.wall_ms += 1
    trial = sealed(rig, host, p.SetContinuousDose, **dose())
    return dataclasses.replace(trial, command_id=NO_COMMAND)  # refused before decoding


def handshake_failed(path: Path) -> Trial:
    rig, _ = ready(path)
    attacker = Host(rig, p.Role.CLINICIAN, p.SecretKey(bytes(32)))
    (reply,) = rig.send(attacker.security.hello(seq=attacker.next_seq()))
    challenge = only_frame(reply).decode()
    assert isinstance(challenge, p.Challenge)
    confirm = p.Confirm(session_id=challenge.session_id, tag=bytes(16))
    data = p.encode_frame(confirm, pump_id=SERIAL, seq=attacker.next_seq(), from_pump=False)
    return Trial(rig, data, attacker, p.Confirm.MSG_ID)


def handshake_locked(path: Path) -> Trial:
    rig, _ = ready(path)
    for _ in range(rig.device.security.policy.lockout_threshold):
        failed_handshake(rig)
    late = Host(rig, p.Role.CLINICIAN)  # even the right key waits for the lockout to end
    return Trial(rig, late.security.hello(seq=late.next_seq()), late, p.Hello.MSG_ID)


def wrong_direction(path: Path) -> Trial:
    rig, host = ready(path)
    forged = bytearray(host.seal(build(host, p.SetContinuousDose, **dose())))
    forged[3] |= 0x04  # FROM_PUMP: a reflected frame
    return Trial(rig, recrc(forged), host, p.SetContinuousDose.MSG_ID)


def program_version_mismatch(path: Path) -> Trial:
    rig, host = ready(path)
    other = rig.host()
    other.status()
    assert isinstance(other.command(p.SetContinuousDose, **dose(9_000_000)), p.CommandAck)
    return sealed(rig, host, p.SetContinuousDose, **dose())  # host read the older version


def idempotency_mismatch(path: Path) -> Trial:
    rig, host = ready(path)
    cid = uuid.uuid4().bytes
    ack = host.command(p.SetContinuousDose, command_id=cid, **dose(11_000_000))
    assert isinstance(ack, p.CommandAck)
    return sealed(rig, host, p.SetContinuousDose, command_id=cid, **dose())


def hard_limit(path: Path) -> Trial:
    rig, host = ready(path)  # morphine: hard limit 30 mg/day, cannot be confirmed
    return model_refusal(
        rig, host, p.SetContinuousDose, confirm_soft_limit=True, **dose(31_000_000)
    )


def soft_limit_unconfirmed(path: Path) -> Trial:
    rig, host = ready(path)  # morphine: soft limit 15 mg/day
    return model_refusal(rig, host, p.SetContinuousDose, **dose(24_000_000))


def rate_out_of_range(path: Path) -> Trial:
    rig, host = ready(path)  # 1 ng/day at 25 mg/mL: below the 48 uL/day minimum rate
    return model_refusal(rig, host, p.SetContinuousDose, **dose(1))


def alarm_active(path: Path) -> Trial:
    rig, host = ready(path)
    rig.pump.inject(fm.MotorStall())  # as the control plane does: inject, then commit
    rig.device.flush()
    assert rig.pump.active_alarms & fm.Alarm.MOTOR_STALL
    return model_refusal(
        rig, host, p.StartClinicianBolus, dose_ng=500_000, duration_ms=600_000, then_stop=False
    )


def _patient_bolus_enabled(path: Path, **settings: Any) -> tuple[Rig, Host]:
    rig, host = ready(path)
    ack = host.command(p.SetPatientBolus, **{**PATIENT_BOLUS, **settings})
    assert isinstance(ack, p.CommandAck), ack
    patient = rig.host(p.Role.PATIENT)
    patient.status()
    return rig, patient


def bolus_lockout(path: Path) -> Trial:
    rig, patient = _patient_bolus_enabled(path)
    assert isinstance(patient.command(p.RequestPatientBolus), p.PatientBolusAccepted)
    return model_refusal(rig, patient, p.RequestPatientBolus)


def bolus_cap_reached(path: Path) -> Trial:
    rig, patient = _patient_bolus_enabled(path, lockout_ms=600_000, max_per_24h=1)
    assert isinstance(patient.command(p.RequestPatientBolus), p.PatientBolusAccepted)
    rig.advance(700_000)  # past the bolus and its lockout, inside the 24 h window
    return model_refusal(rig, patient, p.RequestPatientBolus)


def bolus_disabled(path: Path) -> Trial:
    rig, _ = ready(path)
    patient = rig.host(p.Role.PATIENT)
    return model_refusal(rig, patient, p.RequestPatientBolus)


def invalid_state(path: Path) -> Trial:
    rig, host = ready(path)
    return model_refusal(rig, host, p.CancelBolus)  # no bolus is running


def mode_not_supported(path: Path) -> Trial:
    rig = Rig(path, profile=fm.ProfileId.CONSTANT_FLOW)
    host = rig.host()
    host.status()
    refill = host.command(p.RecordRefill, **MORPHINE_FILL, low_reservoir_threshold_nl=2_000_000)
    assert isinstance(refill, p.RefillResult), refill
    step = p.ScheduleStep(start_minute=0, dose_ng_per_day=12_000_000)
    return model_refusal(rig, host, p.SetSchedule, steps=(step,))


def insufficient_volume(path: Path) -> Trial:
    rig, host = ready(path)  # about 20 mL left; 22 mL at the pump's top rate for a day
    return model_refusal(
        rig,
        host,
        p.StartClinicianBolus,
        dose_ng=550_000_000,
        duration_ms=86_400_000,
        then_stop=False,
    )


def invalid_value(path: Path) -> Trial:
    rig, host = ready(path)
    fill = {**MORPHINE_FILL, "added_volume_nl": 30_000_000}  # the reservoir holds 20 mL
    return model_refusal(rig, host, p.RecordRefill, **fill, low_reservoir_threshold_nl=2_000_000)


def drug_not_allowed(path: Path) -> Trial:
    rig = Rig(path)
    host = rig.host()
    rig.sleep(2_001)
    host.status()
    refill = host.command(p.RecordRefill, **BACLOFEN_FILL, low_reservoir_threshold_nl=2_000_000)
    assert isinstance(refill, p.RefillResult), refill
    ack = host.command(p.SetContinuousDose, **dose(500_000))
    assert isinstance(ack, p.CommandAck), ack
    return model_refusal(rig, host, p.SetPatientBolus, **{**PATIENT_BOLUS, "dose_ng": 50_000})


def pump_stopped(path: Path) -> Trial:
    rig, host = ready(path)
    rig.pump.inject(fm.PrematureEos())
    rig.device.flush()
    return model_refusal(rig, host, p.SetContinuousDose, **dose())


def busy(path: Path) -> Trial:
    rig = Rig(path)
    host = rig.host()  # the handshake works during the power-on self test; commands do not
    assert rig.pump.now < rig.pump.self_test_ends_at
    return model_refusal(rig, host, p.SetContinuousDose, **dose())


def storage_failure(path: Path) -> Trial:
    rig, host = ready(path)
    trial = sealed(rig, host, p.SetContinuousDose, **dose())

    @contextlib.contextmanager
    def failing_disk() -> Iterator[None]:
        store = rig.device.store
        assert store is not None

        def fail(step: str) -> None:
            raise OSError(5, "Input/output error")

        store.fault_hook = fail
        try:
            yield
        finally:
            store.fault_hook = None

    trial.during = failing_disk
    return trial


def internal(path: Path) -> Trial:
    rig, host = ready(path)
    trial = sealed(rig, host, p.SetContinuousDose, **dose())
    real = fm.Pump.set_continuous_dose

    def buggy(self: fm.Pump, *args: Any, **kw: Any) -> Any:
        real(self, *args, **kw)  # the change is made in memory ...
        raise RuntimeError("a bug in the model after a partial change")  # ... then it fails

    @contextlib.contextmanager
    def model_bug() -> Iterator[None]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(fm.Pump, "set_continuous_dose", buggy)
            yield

    trial.during = model_bug
    return trial


RECIPES: dict[p.ErrorCode, Callable[[Path], Trial]] = {
    p.ErrorCode.MALFORMED: malformed,
    p.ErrorCode.UNKNOWN_MESSAGE: unknown_message,
    p.ErrorCode.UNSUPPORTED_VERSION: unsupported_version,
    p.ErrorCode.WRONG_PUMP: wrong_pump,
    p.ErrorCode.NOT_AUTHENTICATED: not_authenticated,
    p.ErrorCode.AUTH_FAILED: auth_failed,
    p.ErrorCode.REPLAYED: replayed,
    p.ErrorCode.ROLE_FORBIDDEN: role_forbidden,
    p.ErrorCode.SESSION_EXPIRED: session_expired,
    p.ErrorCode.HANDSHAKE_FAILED: handshake_failed,
    p.ErrorCode.HANDSHAKE_LOCKED: handshake_locked,
    p.ErrorCode.WRONG_DIRECTION: wrong_direction,
    p.ErrorCode.PROGRAM_VERSION_MISMATCH: program_version_mismatch,
    p.ErrorCode.IDEMPOTENCY_MISMATCH: idempotency_mismatch,
    p.ErrorCode.HARD_LIMIT: hard_limit,
    p.ErrorCode.SOFT_LIMIT_UNCONFIRMED: soft_limit_unconfirmed,
    p.ErrorCode.RATE_OUT_OF_RANGE: rate_out_of_range,
    p.ErrorCode.ALARM_ACTIVE: alarm_active,
    p.ErrorCode.BOLUS_LOCKOUT: bolus_lockout,
    p.ErrorCode.BOLUS_CAP_REACHED: bolus_cap_reached,
    p.ErrorCode.BOLUS_DISABLED: bolus_disabled,
    p.ErrorCode.INVALID_STATE: invalid_state,
    p.ErrorCode.MODE_NOT_SUPPORTED: mode_not_supported,
    p.ErrorCode.INSUFFICIENT_VOLUME: insufficient_volume,
    p.ErrorCode.INVALID_VALUE: invalid_value,
    p.ErrorCode.DRUG_NOT_ALLOWED: drug_not_allowed,
    p.ErrorCode.PUMP_STOPPED: pump_stopped,
    p.ErrorCode.BUSY: busy,
    p.ErrorCode.STORAGE_FAILURE: storage_failure,
    p.ErrorCode.INTERNAL: internal,
}


# --- the check ------------------------------------------------------------------------------

EXERCISED: set[p.ErrorCode] = set()


def therapy_state(rig: Rig) -> dict[str, Any]:
    state = dict(fm.snapshot(rig.pump, include_events=False)["state"])
    for key in VOLATILE:
        del state[key]
    return state


def security_records(rig: Rig, after_seq: int) -> list[tuple[int, int]]:
    return [(e.a, e.b) for e in rig.pump.events(after_seq + 1) if e.kind is fm.EventKind.SECURITY]


def exercise(code: p.ErrorCode, path: Path) -> None:
    """Run `code`'s recipe on a fresh pump and check the refusal (module docstring)."""
    trial = RECIPES[code](path)
    rig = trial.rig
    rig.device.advance()  # the model at the current time: receiving moves no time
    before, version, seq_before = therapy_state(rig), rig.pump.program_version, rig.pump.event_seq
    with trial.during():
        replies = rig.send(trial.data)
    after = therapy_state(rig)
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert not changed, f"{code.name} changed {changed}"
    assert after == before
    assert rig.pump.program_version == version

    sent = p.ERROR_INFO[code].sent
    if sent == "silent":
        assert replies == [], f"{code.name} is documented silent but was answered"
        rig.sleep(LOG_FLUSH_MS)  # security records reach the log within a second
        assert (int(code), 1) in security_records(rig, seq_before)
    else:
        assert sent == "reply", f"{code.name} is {sent!r}: it cannot be provoked on the wire"
        assert len(replies) == 1, f"{code.name} is documented as answered: {replies}"
        frame = only_frame(replies[0])
        assert frame.from_pump and frame.pump_id == SERIAL
        request_seq = int.from_bytes(trial.data[6:8], "little")
        assert frame.seq == (0 if code is p.ErrorCode.UNSUPPORTED_VERSION else request_seq)
        err = trial.reader.answer(replies)
        assert isinstance(err, p.Error), err
        assert err.code is code, f"expected {code.name}, got {err.code.name}: {err.detail}"
        detail = err.detail
        assert detail.strip(), f"{code.name}: empty detail"
        assert len(detail.encode("utf-8")) <= MAX_DETAIL_BYTES
        assert detail.strip().upper().replace(" ", "_") != code.name
        assert err.request_msg_id == trial.request_msg_id
        assert err.command_id == trial.command_id
    EXERCISED.add(code)


# --- tests ------------------------------------------------------------------------------------


def test_every_error_code_has_a_recipe() -> None:
    assert set(RECIPES) == set(p.ErrorCode)
    assert set(p.ERROR_INFO) == set(p.ErrorCode)


@pytest.mark.parametrize("code", list(p.ErrorCode), ids=lambda c: c.name)
def test_error_code_is_provoked_documented_and_changes_nothing(
    tmp_path: Path, code: p.ErrorCode
) -> None:
    exercise(code, tmp_path)


def test_every_error_code_was_exercised(tmp_path: Path) -> None:
    """Also complete on its own (e.g. under -k): codes not yet run here are run now."""
    for code in p.ErrorCode:
        if code not in EXERCISED:
            exercise(code, tmp_path / code.name)
    assert set(p.ErrorCode) == EXERCISED
    print(f"error codes exercised: {len(EXERCISED)}/{len(p.ErrorCode)}")
