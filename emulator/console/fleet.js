// The fleet page of the instructor console (#/fleet): one row per pump, from /v1/stream.

import { app, markReady } from "./app.js";
import { openStream } from "./connection.js";
import { $, h } from "./dom.js";
import { fmtMl, fmtSpeed, words } from "./format.js";

export function showFleet() {
  app.serial = null;
  app.state = null;
  $("login").hidden = true;
  $("detail").hidden = true;
  $("fleet").hidden = false;
  $("pump-title").textContent = "all pumps";
  document.title = "Pumps · instructor console";
  openStream("/v1/stream", {
    pumps: (msg) => {
      if (msg.reset) app.pumps.clear();
      for (const p of msg.pumps) app.pumps.set(p.serial, p);
      renderFleet();
      markReady();
    },
  });
}

function alarmBadge(top) {
  if (!top) return h("span", { class: "badge ok", text: "none" });
  const cls = top.critical ? "badge crit" : "badge warn";
  const state = top.state === "ACTIVE" ? "" : ` (${words(top.state)})`;
  return h("span", { class: cls, text: `${words(top.alarm)}${state}` });
}

function daysToRefill(p) {
  if (p.days_to_refill === null) return "–";
  if (p.active_alarms.includes("LOW_RESERVOIR") || p.days_to_refill <= 0) return "now";
  return p.days_to_refill.toFixed(1);
}

function renderFleet() {
  const body = $("fleet-body");
  const rows = [...app.pumps.values()].sort((a, b) => a.serial - b.serial);
  $("fleet-count").textContent = `(${rows.length})`;
  body.replaceChildren(...rows.map((p) => {
    const tr = h("tr", {
      "data-serial": p.serial,
      class: p.top_alarm ? (p.top_alarm.critical ? "crit" : "warn") : "",
    },
    h("th", { scope: "row" }, `${p.serial} `, h("span", { class: "muted small", text: p.profile })),
    h("td", { text: words(p.drug) }),
    h("td", { "data-value": p.reservoir_nl }, `${fmtMl(p.reservoir_nl)} of ${(p.capacity_nl / 1e6).toFixed(0)}`),
    h("td", { class: "days", "data-value": p.days_to_refill ?? "", text: daysToRefill(p) }),
    h("td", { class: "alarm" }, alarmBadge(p.top_alarm)),
    h("td", { text: words(p.battery) }),
    h("td", { text: fmtSpeed(p.paused ? 0 : p.speed_factor) }),
    h("td", {}, h("button", {
      type: "button",
      class: "open",
      "aria-label": `Open pump ${p.serial}`,
      onclick: () => { location.hash = `#/pump/${p.serial}`; },
    }, "Open")));
    return tr;
  }));
}
