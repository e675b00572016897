"""The console on a projector at 1280 x 800 and 1400 x 800 (issue 19 item 11): no sideways
scroll, nothing outside its panel (the scenario box, the plots' texts), the event log's record
column wrapping between words, never clipped. In Debian's Chromium, as tests/test_console.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from emulator import EmulatorServer, ServerOptions

from .browser_helpers import expect

OVERFLOW = """() => {
  const vw = document.documentElement.clientWidth;
  const found = [];
  const name = (el) => `${el.tagName.toLowerCase()}#${el.id}.${el.getAttribute("class") || ""}`;
  const visible = (el) => {
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.display === "none" || cs.visibility === "hidden") return false;
      if (e.classList && (e.classList.contains("sr-only") || e.classList.contains("skip"))) {
        return false; // for screen readers, or off screen until focused (the skip link)
      }
      if (e.tagName === "DIALOG" && !e.open) return false;
    }
    return true;
  };
  const page = document.documentElement.scrollWidth;
  if (page > vw) found.push(`page scrolls sideways: ${page} > ${vw}`);
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    if (!r.width || !visible(el)) continue;
    if (r.right > vw + 0.5 || r.left < -0.5) {
      found.push(`${name(el)} outside the page: ${r.left}..${r.right}`);
    }
    const box = el.parentElement && el.parentElement.closest(".panel, .card, fieldset, .banner");
    if (box) {
      const q = box.getBoundingClientRect();
      if (r.right > q.right + 0.5 || r.left < q.left - 0.5) {
        found.push(`${name(el)} outside ${name(box)}: ${r.right} > ${q.right}`);
      }
    }
  }
  for (const td of document.querySelectorAll("#log-body td")) {
    if (td.scrollWidth > td.clientWidth + 1) found.push(`log cell clipped: ${td.textContent}`);
  }
  const wrap = document.querySelector(".log-wrap");
  if (wrap.scrollWidth > wrap.clientWidth + 1) {
    found.push(`event log scrolls sideways: ${wrap.scrollWidth} > ${wrap.clientWidth}`);
  }
  return found;
}"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    options = ServerOptions(
        speed_milli=0, control=("127.0.0.1", 0), console=True, scenario="low-reservoir-alarm-day"
    )
    async with EmulatorServer(tmp_path / "pump", options) as s:
        yield s


@pytest.mark.parametrize("width", [1280, 1400])
async def test_nothing_overflows_on_a_projector(
    server: EmulatorServer,
    browser: Any,
    width: int,
) -> None:
    cp = server.control
    assert cp is not None
    # a long log record: a catheter access port aspiration's finding
    assert server.runtime is not None
    server.runtime.device.pump.aspirate_cap()
    page = await browser.new_page(viewport={"width": width, "height": 800})
    await page.goto(cp.console_url)
    await page.wait_for_selector("body[data-ready]")
    await expect(page.locator("#log-body tr").first).to_be_visible()
    await expect(page.locator("#scenario option").first).to_be_attached()
    problems = await page.evaluate(OVERFLOW)
    assert problems == []
    # the record column wraps between words: a record's words all stay whole on screen
    what = page.locator("#log-body tr .what").first
    assert await what.evaluate("e => e.getBoundingClientRect().right") <= width
    # the first fill's drug has the unprimed fluid path to cross: the plot says so (item 12)
    note = page.locator("#history-chart text.plot-note")
    await expect(note).to_contain_text("drug-free fluid ahead of the drug: 0.23 mL")
    await page.close()
