"""How fast the instructor console is on screen (issue 8: "loads in under a second on loopback").

An emulator (in this process, the "low-reservoir-alarm-day" training scenario, console on) and
Debian's Chromium driven by Playwright (headless, never a browser of Playwright's own). Each
round opens a fresh browser page and measures, with the page's own clock (performance.now(),
from navigation start):

1. console   the console page, its token in the URL fragment: until the first pushed state is
             on screen (`window.consoleReadyMs`, set by the console's app.js after the first
             `state` event of the Server-Sent Events stream has been rendered).
2. baseline  a blank HTML page from a bare asyncio HTTP server on loopback, same browser, same
             round: until its `load` event. The floor of "open a page on loopback here".

Printed: medians and the worst of each, the ratio console / baseline, and the absolute target
(median and worst under 1000 ms) as PASS or MISS. Targets are reported, never enforced: the
script exits 0 whatever the numbers (1 only if something could not be measured).

Run (from the repository root):

    .venv/bin/python bench/console.py            # 15 rounds
    .venv/bin/python bench/console.py --quick    # 3 rounds (smoke test)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator import EmulatorServer, ServerOptions

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TARGET_MS = 1000.0
BLANK = b"<!doctype html><html><head><title>blank</title></head><body>ok</body></html>"


async def blank_server() -> tuple[asyncio.Server, str]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                    + str(len(BLANK)).encode()
                    + b"\r\n\r\n"
                    + BLANK
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/"


async def measure(rounds: int) -> dict[str, list[float]]:
    from playwright.async_api import async_playwright

    out: dict[str, list[float]] = {"console": [], "baseline": []}
    blank, blank_url = await blank_server()
    with tempfile.TemporaryDirectory() as tmp:
        options = ServerOptions(
            speed_milli=1000,
            control=("127.0.0.1", 0),
            console=True,
            scenario="low-reservoir-alarm-day",
        )
        async with EmulatorServer(Path(tmp) / "pump", options) as server, async_playwright() as pw:
            assert server.control is not None
            url = server.control.console_url
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                for _ in range(rounds):
                    page: Any = await browser.new_page(viewport={"width": 1920, "height": 1080})
                    await page.goto(blank_url, wait_until="load")
                    out["baseline"].append(
                        await page.evaluate(
                            "performance.getEntriesByType('navigation')[0].loadEventEnd"
                        )
                    )
                    await page.close()
                    page = await browser.new_page(viewport={"width": 1920, "height": 1080})
                    await page.goto(url)
                    await page.wait_for_selector("body[data-ready]")
                    out["console"].append(await page.evaluate("window.consoleReadyMs"))
                    await page.close()
            finally:
                await browser.close()
    blank.close()
    await blank.wait_closed()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds (smoke test)")
    args = ap.parse_args()
    if not CHROMIUM.exists():
        print("needs Debian's Chromium at /usr/bin/chromium: apt-get install -y chromium")
        return 1
    rounds = 3 if args.quick else 15
    times = asyncio.run(measure(rounds))
    console, baseline = times["console"], times["baseline"]
    med_c, med_b = statistics.median(console), statistics.median(baseline)
    print(f"{rounds} rounds, fresh page each, times from navigation start (page clock)")
    print(f"{'':10} {'median':>9} {'worst':>9}")
    print(f"{'console':10} {med_c:8.0f}ms {max(console):8.0f}ms   first state on screen")
    print(f"{'baseline':10} {med_b:8.0f}ms {max(baseline):8.0f}ms   blank page, load event")
    print(f"ratio console / baseline (medians): {med_c / med_b:.1f}x")
    verdict = "PASS" if max(console) < TARGET_MS else "MISS"
    print(f"target: on screen in under {TARGET_MS:.0f} ms on loopback, every round: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
