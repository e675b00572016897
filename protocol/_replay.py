"""The anti-replay window (RFC 4303): each end of a session accepts a frame counter at most
once, and only within 64 of the highest one accepted. `check` never changes anything; `commit`
runs only after the frame's tag verified, so a forged frame cannot move the window.
"""

from __future__ import annotations

from typing import Final

from ._errors import Replayed

REPLAY_WINDOW: Final = 64


class ReplayWindow:
    """RFC 4303 anti-replay window: highest accepted counter plus a 64-bit bitmap.

    `check` never changes anything; `commit` is called only after the frame's tag verified.
    """

    __slots__ = ("bitmap", "highest")

    def __init__(self) -> None:
        self.highest = 0
        self.bitmap = 0  # bit k set: counter (highest - k) was accepted

    def check(self, counter: int) -> None:
        if counter == 0:
            raise Replayed("counter 0 is never valid")
        if counter > self.highest:
            return
        offset = self.highest - counter
        if offset >= REPLAY_WINDOW:
            raise Replayed(f"counter {counter} is older than the replay window")
        if self.bitmap >> offset & 1:
            raise Replayed(f"counter {counter} was already accepted")

    def commit(self, counter: int) -> None:
        if counter > self.highest:
            shift = counter - self.highest
            self.bitmap = ((self.bitmap << shift) | 1) & ((1 << REPLAY_WINDOW) - 1)
            self.highest = counter
        else:
            self.bitmap |= 1 << (self.highest - counter)
