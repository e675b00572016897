"""The suite's browser: Debian's Chromium at its fixed path, driven by Playwright (never a browser
Playwright downloads). A missing one fails the browser tests with the command that installs it."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# How long an `expect` waits for the page to get there: Playwright's 5 s default is short on a
# loaded machine (a push every second, Chromium sharing two cores); a page that is right sooner
# passes sooner.
EXPECT_TIMEOUT_MS = 30_000


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's Chromium is not installed: apt-get install -y chromium")
    try:
        api = importlib.import_module("playwright.async_api")
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'")
    api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    async with api.async_playwright() as pw:
        # Never a browser of Playwright's own: Debian's, at its fixed path.
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


def expect(locator: Any) -> Any:
    return importlib.import_module("playwright.async_api").expect(locator)
