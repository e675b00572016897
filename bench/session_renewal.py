"""What the host rule of protocol 1.1 costs (docs/protocol.md section 10): a plain ERROR is
never the outcome of a sealed request, so a programmer whose session the pump forgot (a pump
restart: sessions live in RAM) renews it only after the request's timeout, where 1.0 believed
the pump's plain AUTH_FAILED at once.

Rows (milliseconds per GET_STATUS through `programmer.Pump.status()`, the in-process emulator
on its pty, 9600 baud timeouts):

1. in session   the baseline: the session is live.
2. forgotten    the pump forgot every session just before (`PumpSecurity.end_all()`): plain
                AUTH_FAILED ignored, the exchange timeout, a new handshake, the same request.

Printed: both times, their ratio, and the exchange timeout they are compared with.

    .venv/bin/python bench/session_renewal.py            # 5 rounds
    .venv/bin/python bench/session_renewal.py --quick    # smoke test: 1 round
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import programmer
import protocol as p
from emulator import EmulatorServer, ServerOptions


async def run(rounds: int) -> None:
    base: list[float] = []
    lost: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        options = ServerOptions(speed_milli=100_000)
        async with (
            EmulatorServer(Path(d) / "pump", options) as server,
            programmer.connect(
                f"serial://{server.port_path}",
                key=server.key_files[p.Role.CLINICIAN],
                journal=Path(d) / "journal.sqlite",
            ) as pump,
        ):
            for _ in range(rounds):
                t = time.perf_counter()
                await pump.status()
                base.append(time.perf_counter() - t)
                server.device.security.end_all()  # as a pump restart does
                t = time.perf_counter()
                await pump.status()
                lost.append(time.perf_counter() - t)
            timeout = pump._timeout(bytes(40))
            ignored = pump.plain_errors_ignored
    b, f = statistics.median(base) * 1000, statistics.median(lost) * 1000
    print(f"in session           {b:9.1f} ms")
    print(f"forgotten session    {f:9.1f} ms   (exchange timeout {timeout * 1000:.0f} ms)")
    print(f"ratio forgotten / in session: {f / b:.0f}x; plain errors ignored: {ignored}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one round (smoke test)")
    args = ap.parse_args()
    asyncio.run(run(1 if args.quick else 5))


if __name__ == "__main__":
    main()
