// The event log table of the instructor console: the newest records first, filtered by kind
// or category and by source.

import { app } from "./app.js";
import { $, h } from "./dom.js";
import { fmtClock, words } from "./format.js";

const LOG_ROWS = 300; // rows shown; every record received is kept for the plot's markers

export function renderLog() {
  const kind = $("log-kind").value;
  const source = $("log-source").value;
  const known = new Set([...$("log-kinds").children].map((o) => o.value));
  for (const e of app.log) {
    if (!known.has(e.kind)) {
      known.add(e.kind);
      $("log-kinds").append(h("option", { value: e.kind, text: words(e.kind) }));
    }
  }
  const match = (e) => (!source || e.source === source) &&
    (!kind || (kind.startsWith("cat:") ? e.category === kind.slice(4) : e.kind === kind));
  const rows = [];
  let shown = 0;
  for (let i = app.log.length - 1; i >= 0 && rows.length < LOG_ROWS; i -= 1) {
    const e = app.log[i];
    if (!match(e)) continue;
    shown += 1;
    rows.push(h("tr", { class: `src-${e.source} cat-${e.category}`, "data-seq": e.seq, "data-kind": e.kind },
      h("td", { text: fmtClock(e.time_ms) }),
      h("td", {}, h("span", { class: "src", text: e.source.toLowerCase() })),
      h("td", {}, h("span", { class: "what", text: e.text }), " ", h("span", { class: "kind", text: words(e.kind) }))));
  }
  $("log-body").replaceChildren(...rows);
  $("log-count").textContent = `${shown} shown of ${app.log.length} records received (newest first)`;
}
