// The two drawings of a pump's state now on the instructor console: the reservoir gauge and
// today's dose schedule.

import { app } from "./app.js";
import { $, s } from "./dom.js";
import { DAY, MIN, fmtMl, massUnit, pad, words } from "./format.js";

// --- the reservoir gauge ----------------------------------------------------------------

export function renderGauge(st) {
  const svg = $("gauge");
  const cap = st.capacity_nl || 1;
  const S = st.status;
  const top = 10;
  const hgt = 230;
  const y = (nl) => top + hgt - (Math.min(Math.max(nl, 0), cap) / cap) * hgt;
  const title = svg.querySelector("title");
  title.textContent = `Reservoir: calculated ${fmtMl(S.reservoir_nl)}, true ${fmtMl(S.true_reservoir_nl)} of ${fmtMl(cap)}`;
  const low = S.low_threshold_nl;
  svg.replaceChildren(title,
    s("rect", { x: 8, y: top, width: 50, height: hgt, fill: "#fff", stroke: "#000", "stroke-width": 2 }),
    s("rect", { x: 10, y: y(S.reservoir_nl), width: 46, height: top + hgt - y(S.reservoir_nl), fill: "#0b3d91" }),
    s("rect", { x: 62, y: top, width: 22, height: hgt, fill: "#fff", stroke: "#000", "stroke-width": 2 }),
    s("rect", { x: 64, y: y(S.true_reservoir_nl), width: 18, height: top + hgt - y(S.true_reservoir_nl), fill: "#c2410c" }),
    s("line", { x1: 2, x2: 90, y1: y(low), y2: y(low), stroke: "#c00000", "stroke-width": 3, "stroke-dasharray": "6 3" }),
    s("text", { x: 92, y: y(low) + 5, "font-size": 14 }, "low"),
    s("line", { x1: 2, x2: 90, y1: y(st.empty_threshold_nl), y2: y(st.empty_threshold_nl), stroke: "#000", "stroke-width": 3 }),
    s("text", { x: 92, y: y(st.empty_threshold_nl) + 5, "font-size": 14 }, "empty"),
    s("text", { x: 92, y: top + 12, "font-size": 14 }, `${(cap / 1e6).toFixed(0)} mL`),
    s("text", { x: 33, y: 256, "font-size": 13, "text-anchor": "middle" }, "pump"),
    s("text", { x: 73, y: 256, "font-size": 13, "text-anchor": "middle" }, "true"));
}

// --- today's schedule -------------------------------------------------------------------
function scheduleSteps(st) {
  const S = st.status;
  if (S.mode === "SCHEDULE" && st.program.schedule.length) {
    return st.program.schedule.map(([minute, dose]) => [minute, dose]);
  }
  if (S.mode === "CONTINUOUS" || S.mode === "BRIDGE") return [[0, S.daily_dose_ng]];
  return [[0, 0]];
}

export function renderSchedule() {
  const st = app.state;
  if (!st) return;
  const svg = $("schedule-chart");
  const title = svg.querySelector("title");
  const unit = massUnit(st);
  const steps = scheduleSteps(st);
  const scale = unit === "mcg" ? 1000 : 1e6;
  const maxDose = Math.max(...steps.map((x) => x[1]), 1);
  const W = 900; const H = 240; const L = 80; const R = 20; const T = 20; const B = 40;
  const x = (minute) => L + (minute / 1440) * (W - L - R);
  const y = (dose) => T + (H - T - B) * (1 - dose / (maxDose * 1.15));
  const nowMin = ((st.status.clock_ms % DAY) + DAY) % DAY / MIN;
  const kids = [title];
  for (let hr = 0; hr <= 24; hr += 3) {
    kids.push(s("line", { x1: x(hr * 60), x2: x(hr * 60), y1: T, y2: H - B, stroke: "#bbb" }));
    kids.push(s("text", { x: x(hr * 60), y: H - B + 22, "font-size": 16, "text-anchor": "middle" }, `${pad(hr)}:00`));
  }
  kids.push(s("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#000", "stroke-width": 2 }));
  kids.push(s("line", { x1: L, x2: L, y1: T, y2: H - B, stroke: "#000", "stroke-width": 2 }));
  kids.push(s("text", { x: L - 8, y: y(maxDose) + 5, "font-size": 15, "text-anchor": "end" }, `${+(maxDose / scale).toFixed(3)}`));
  kids.push(s("text", { x: L - 8, y: H - B + 5, "font-size": 15, "text-anchor": "end" }, "0"));
  kids.push(s("text", { x: 10, y: T + 4, "font-size": 15 }, `${unit}/day`));
  let d = "";
  steps.forEach(([minute, dose], i) => {
    const end = i + 1 < steps.length ? steps[i + 1][0] : 1440;
    d += `${i ? "L" : "M"}${x(minute)},${y(dose)} L${x(end)},${y(dose)} `;
  });
  kids.push(s("path", { d, fill: "none", stroke: "#0b3d91", "stroke-width": 4 }));
  steps.forEach(([minute, dose], i) => {
    const end = i + 1 < steps.length ? steps[i + 1][0] : 1440;
    if (end - minute >= 120 || steps.length <= 6) {
      kids.push(s("text", { x: (x(minute) + x(end)) / 2, y: y(dose) - 8, "font-size": 15, "text-anchor": "middle" }, `${+(dose / scale).toFixed(3)}`));
    }
  });
  kids.push(s("line", { id: "sched-now", x1: x(nowMin), x2: x(nowMin), y1: T - 5, y2: H - B, stroke: "#c00000", "stroke-width": 4 }));
  const label = `now ${pad(Math.floor(nowMin / 60))}:${pad(Math.floor(nowMin % 60))}`;
  kids.push(s("text", { x: Math.min(x(nowMin) + 6, W - 110), y: T + 12, "font-size": 16, "font-weight": "bold", fill: "#c00000" }, label));
  title.textContent = `Dose over the day (${words(st.status.mode)}), ${label}`;
  svg.replaceChildren(...kids);
  svg.dataset.now = String(Math.floor(nowMin));
  $("sched-sub").textContent = st.status.mode === "SCHEDULE" ? `(${steps.length} steps)` : `(${words(st.status.mode)})`;
}
