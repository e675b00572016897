"""Why a connection or a command went wrong, in words a clinician or trainer can act on
(docs/programmer.md, "When the course goes wrong"): an answer from another pump, a self test
that cannot end, the pumps a broker knows when the one named is silent.

Nothing here acts on what it reads: an answer before a session is plain (a claim, not a proof),
so it only shapes the error message.
"""

from __future__ import annotations

import re

import protocol as p

BUSY_LIMIT_S = 10.0  # the power-on self test takes 2 s at real time
_RETRY_IN = re.compile(r"retry in (\d+) ms")


def foreign_answer(frame: p.Frame) -> int | None:
    """The serial of a pump that refused our frame as addressed to another pump (a plain
    ERROR WRONG_PUMP from it), or None for any other frame."""
    if frame.authenticated or not frame.from_pump:
        return None
    try:
        msg = frame.decode()
    except p.MessageError:
        return None
    if isinstance(msg, p.Error) and msg.code is p.ErrorCode.WRONG_PUMP:
        return frame.pump_id
    return None


def busy_stuck(speed_milli: int, detail: str) -> str | None:
    """Why a BUSY self test will not end within BUSY_LIMIT_S of real time (None: wait for it).
    `detail` is the pump's "retry in N ms" (pump milliseconds); the speed is its DEVICE_INFO's."""
    if speed_milli == 0:
        return "its time is paused (speed 0)"
    m = _RETRY_IN.search(detail)
    if m is None:
        return None
    seconds = int(m.group(1)) / speed_milli
    if seconds <= BUSY_LIMIT_S:
        return None
    return (
        f"at speed x{speed_milli / 1000:g} it ends in {seconds:.0f} s of real time "
        f"(more than the {BUSY_LIMIT_S:.0f} s a programmer waits)"
    )


def online_listing(asked: int, online: list[int] | None) -> str:
    """The end of an MQTT "no answer": whether pump `asked` is online and who is."""
    if online is None:
        return ""
    if asked in online:
        return f" (pump {asked} is online on this broker: check the link and its load)"
    others = ", ".join(str(s) for s in sorted(online)) or "none"
    return (
        f": no pump {asked} is online on this broker (pumps online there: {others}); "
        "check the pump serial in the connection"
    )
