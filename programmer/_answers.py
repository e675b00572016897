"""Which pump frame answers a request (docs/protocol.md sections 5 and 10): `sealed_exchange`
sends a sealed request and waits for a frame sealed in the session that passes its checks;
plain ERRORs about it are counted and ignored (anyone on the line or the broker can forge
one), except UNKNOWN_MESSAGE from a pump older than the request's message."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

import protocol as p

if TYPE_CHECKING:
    from ._pump import Pump

# The minor version that added a message: a pump reporting an older one answers it with a
# plain UNKNOWN_MESSAGE, decided from the header alone (docs/protocol.md section 13).
ADDED_IN_MINOR = {
    p.GetCatheterInfo.MSG_ID: 1,
    p.GetClockLocal.MSG_ID: 1,
    p.SetClockLocal.MSG_ID: 1,
}

log = logging.getLogger("programmer")


async def sealed_exchange(
    pump: Pump, data: bytes, seqs: set[int], msg: p.Message
) -> tuple[p.Message | None, p.Error | None]:
    """Send a sealed request; its answer: the first pump frame for one of `seqs` that is
    sealed in our session and passes its checks (tag, replay window), or None after the
    timeout, with the last plain ERROR about the request seen meanwhile (a hint, never the
    outcome: docs/protocol.md section 10). Frames that fail a check change nothing: the
    wait goes on. The one plain answer taken is UNKNOWN_MESSAGE from a pump whose
    DEVICE_INFO reports a minor version older than the request's message (1.0 peers)."""
    await pump.link.send(data)
    sec = pump.security
    assert sec is not None
    hint: p.Error | None = None
    try:
        async with asyncio.timeout(pump._timeout(data)):
            while True:
                frame = await pump.link.recv()
                if frame.seq not in seqs or not frame.from_pump:
                    continue
                if pump.serial and frame.pump_id != pump.serial:
                    continue
                session = sec.session
                if frame.authenticated and session and frame.session_id != session.session_id:
                    continue  # another programmer's session on the same broker
                try:
                    event = sec.receive(frame)
                except p.ProtocolError as exc:
                    pump.frames_refused += 1  # forged, replayed or stale: not ours
                    log.info("ignored a pump frame (%s): %s", exc.code.name, exc.detail)
                    continue
                if isinstance(event, p.Unsealed):
                    if not answers(event.message, msg):
                        continue
                    if older_pump_lacks(pump.device, msg, event.message):
                        return event.message, None
                    pump.plain_errors_ignored += 1
                    log.warning(
                        "ignored a plain ERROR %s for sealed %s: pumps seal every answer "
                        "in a session (forged, or a pump that lost the session)",
                        event.message.code.name,
                        msg.NAME,
                    )
                    hint = event.message
                    continue
                if isinstance(event, p.Response) and answers(event.message, msg):
                    return event.message, None
    except TimeoutError:
        return None, hint


def answers(answer: p.Message, request: p.Message) -> bool:
    """Whether an ERROR is about `request`. Line noise in a request's message id draws an
    UNKNOWN_MESSAGE for that id (docs/protocol.md section 10): it is not this request's fate."""
    if not isinstance(answer, p.Error):
        return True
    if answer.request_msg_id not in (0, request.MSG_ID):
        return False
    cid = getattr(request, "command_id", None)
    return answer.command_id in (bytes(16), cid)


def older_pump_lacks(device: p.DeviceInfo | None, request: p.Message, error: p.Error) -> bool:
    """A plain UNKNOWN_MESSAGE is the answer only from a pump older than the request."""
    return (
        error.code is p.ErrorCode.UNKNOWN_MESSAGE
        and device is not None
        and device.protocol_minor < ADDED_IN_MINOR.get(request.MSG_ID, 0)
    )


async def confirm_device(pump: Pump) -> None:
    """DEVICE_INFO again, sealed in the new session. The plain one read to find the pump is
    a claim anyone on the line or the broker can forge: a forged "protocol 1.0" would make
    a plain UNKNOWN_MESSAGE an answer to the 1.1 reads (docs/protocol.md section 10). From
    here on `device` is what the pump said in the session."""
    info = await pump._request(p.GetDeviceInfo())
    if not isinstance(info, p.DeviceInfo):
        return
    plain = pump.device
    if (
        plain is not None
        and dataclasses.replace(plain, speed_factor_milli=info.speed_factor_milli) != info
    ):
        pump.device_claims_refuted += 1
        log.warning(
            "the plain DEVICE_INFO read before the session differs from the sealed one "
            "(forged, or the pump changed in between): the sealed one is kept"
        )
    pump.device = info
