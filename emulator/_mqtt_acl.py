"""A Mosquitto ACL for pumps on a shared broker (docs/emulator.md section 6).

Without one, any client the broker accepts may overwrite a pump's retained `status`, answer on
its `rsp` topic or fake its telemetry. With it each pump logs in as its own identity
(`pump-<serial>`), which alone may write that pump's `status`, `rsp` and `telemetry` topics;
programmer identities may only send commands and read the rest; anonymous clients get nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PUMP_USER_PREFIX = "pump-"
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def pump_username(serial: int) -> str:
    """The broker identity of pump `serial`, as `mosquitto_acl` names it."""
    return f"{PUMP_USER_PREFIX}{serial}"


def mosquitto_acl(pumps: Iterable[int], programmers: Iterable[str] = ("programmer",)) -> str:
    """The text of a Mosquitto `acl_file` for these pumps and programmer user names."""
    lines = [
        "# itp/v1 topics (docs/protocol.md section 12), from emulator.mosquitto_acl.",
        "# Lines before the first `user` apply to anonymous clients: there are none, so they",
        "# may do nothing. Each pump identity alone writes its status, rsp and telemetry.",
    ]
    for serial in pumps:
        if not isinstance(serial, int) or not 0 < serial < 0xFFFF_FFFF:
            raise ValueError(f"{serial!r}: a pump serial is 1 .. 4294967294")
        base = f"itp/v1/{serial}"
        lines += [
            "",
            f"user {pump_username(serial)}",
            f"topic read {base}/cmd",
            f"topic write {base}/cmd",  # only to clear a command published retained
            f"topic readwrite {base}/status",  # read: to see it overwritten, and say online
            f"topic readwrite {base}/rsp",  # read: to clear a retained rsp
            f"topic write {base}/telemetry",
        ]
    for name in programmers:
        if not _NAME.fullmatch(name) or name.startswith(PUMP_USER_PREFIX):
            raise ValueError(
                f"{name!r}: a programmer user name is 1-64 of A-Z a-z 0-9 _ . @ - "
                f"and does not start with {PUMP_USER_PREFIX!r}"
            )
        lines += [
            "",
            f"user {name}",
            "topic write itp/v1/+/cmd",
            "topic read itp/v1/+/rsp",
            "topic read itp/v1/+/telemetry",
            "topic read itp/v1/+/status",
        ]
    return "\n".join(lines) + "\n"
