// The history plot of the instructor console: reservoir, rate, dose and the volumes pumped
// and delivered over the chosen span, with the log's alarms, refills, faults and time jumps
// marked.

import { app } from "./app.js";
import { $, s } from "./dom.js";
import { DAY, HOUR, fmtDate, fmtDuration, fmtMl, massUnit, words } from "./format.js";

// Why "delivered to the patient" can stay at 0 for most of a day after a first fill: the
// unprimed fluid path holds drug-free fluid the patient receives first (firmware_model.md 20).
function drugFreeNote(st) {
  const c = st.catheter;
  const S = st.status;
  if (!c || !c.drug_free_nl || S.drug === "NONE") return "";
  const rate = S.current_rate_nl_per_day;
  const eta = rate > 0 ? `, the drug arrives in ${fmtDuration((c.drug_free_nl / rate) * DAY)}` : "";
  return `drug-free fluid ahead of the drug: ${fmtMl(c.drug_free_nl)}${eta}`;
}

const MARKS = {
  ALARM_RAISED: { color: "#c00000", dash: null, label: (e) => e.text.replace(/^alarm /, "").replace(/ raised.*/, "") },
  REFILL: { color: "#007a33", dash: null, label: () => "refill" },
  FAULT: { color: "#7a00b8", dash: "3 3", label: (e) => e.text.replace(/^fault /, "") },
  MRI_EXPOSURE: { color: "#7a00b8", dash: "3 3", label: () => "MRI" },
};

export function renderHistory() {
  const st = app.state;
  const svg = $("history-chart");
  if (!st) return;
  const title = svg.querySelector("title");
  const samples = app.history;
  const range = Number($("hist-range").value);
  const end = Math.max(st.status.clock_ms, samples.length ? samples[samples.length - 1][0] : 0);
  let start = range ? end - range * DAY : (samples.length ? samples[0][0] : end - DAY);
  if (end - start < HOUR) start = end - HOUR;
  const pts = samples.filter((r) => r[0] >= start);
  const before = samples.filter((r) => r[0] < start).pop();
  if (before) { // the window's left edge: volumes interpolated, rates held
    const after = pts[0];
    const f = after ? (start - before[0]) / (after[0] - before[0]) : 0;
    const lerp = (i) => (after ? before[i] + (after[i] - before[i]) * f : before[i]);
    pts.unshift([start, lerp(1), lerp(2), before[3], lerp(4), before[5], lerp(6), lerp(7), lerp(8)]);
  }
  const S = st.status;
  pts.push([end, S.reservoir_nl, S.true_reservoir_nl, S.current_rate_nl_per_day, S.patient_dose_ng, S.daily_volume_nl,
    S.program_total_nl, S.pumped_total_nl, S.patient_total_nl]);
  const unit = massUnit(st);
  const W = 900; const L = 90; const R = 20;
  const x = (t) => L + ((t - start) / (end - start)) * (W - L - R);
  const panels = [
    { top: 24, h: 160, label: "reservoir, mL", max: st.capacity_nl, head: 1.05, scale: 1e6, series: [[1, "#0b3d91", null], [2, "#c2410c", "10 6"]] },
    // Over days, the rate now would alias a flex schedule: the program's daily mean is shown.
    end - start > 2 * DAY
      ? { top: 214, h: 85, label: "rate, mL/day (program's daily mean)", head: 1.25, scale: 1e6, series: [[5, "#3b3b3b", null]], step: true }
      : { top: 214, h: 85, label: "rate, mL/day", head: 1.25, scale: 1e6, series: [[3, "#3b3b3b", null]], step: true },
    { top: 329, h: 85, label: `delivered to the patient, ${unit}`, note: drugFreeNote(st), head: 1.15, scale: unit === "mcg" ? 1000 : 1e6, series: [[4, "#5b21b6", null]] },
    // The ground truth: a kink or granuloma parts pumped from counted, a leak parts patient from pumped.
    { top: 444, h: 85, label: "mL counted by the pump (grey), pumped (orange), to the patient (purple)", head: 1.15, scale: 1e6, zoom: true,
      series: [[6, "#3b3b3b", null], [7, "#c2410c", "10 6"], [8, "#5b21b6", "2 4"]] },
  ];
  const kids = [title];
  for (const p of panels) {
    const values = pts.flatMap((r) => p.series.map(([i]) => r[i])).filter((v) => v !== null && v !== undefined);
    let max = p.max || Math.max(...values, 1);
    let min = 0;
    if (p.series[0][0] === 4 || p.zoom || (p.max && end - start <= 7 * DAY)) {
      // cumulative dose, and the reservoir over a few days: zoom on what changed
      min = Math.min(...values);
      max = Math.max(...values, min + (p.max ? 100000 : 1));
      if (p.max) min = Math.max(0, min - (max - min) * 0.1);
    }
    const y = (v) => p.top + p.h - ((v - min) / ((max - min) * p.head || 1)) * p.h;
    kids.push(s("rect", { x: L, y: p.top, width: W - L - R, height: p.h, fill: "none", stroke: "#000", "stroke-width": 1.5 }));
    kids.push(s("text", { x: L, y: p.top - 6, "font-size": 16, "font-weight": "bold" }, p.label));
    if (p.note) kids.push(s("text", { x: L + 8, y: p.top + 20, "font-size": 15, class: "plot-note" }, p.note));
    kids.push(s("text", { x: L - 6, y: y(max) + 5, "font-size": 15, "text-anchor": "end" }, `${+(max / p.scale).toFixed(max / p.scale < 1 ? 3 : 1)}`));
    kids.push(s("text", { x: L - 6, y: p.top + p.h, "font-size": 15, "text-anchor": "end" }, `${+(min / p.scale).toFixed(min / p.scale < 1 ? 3 : 1)}`));
    if (p.series[0][0] === 1 && S.low_threshold_nl >= min && S.low_threshold_nl <= max) {
      const low = S.low_threshold_nl;
      kids.push(s("line", { x1: L, x2: W - R, y1: y(low), y2: y(low), stroke: "#c00000", "stroke-dasharray": "2 4", "stroke-width": 2 }));
      kids.push(s("text", { x: W - R - 4, y: y(low) - 4, "font-size": 14, "text-anchor": "end", fill: "#c00000" }, "low alarm"));
    }
    for (const [i, color, dash] of p.series) {
      let d = "";
      let started = false;
      pts.forEach((r, k) => {
        if (r[i] === null || r[i] === undefined) return; // a sample from before the ground truth was sent
        if (p.step && started) d += `L${x(r[0])},${y(pts[k - 1][i])} `;
        d += `${started ? "L" : "M"}${x(r[0]).toFixed(1)},${y(r[i]).toFixed(1)} `;
        started = true;
      });
      kids.push(s("path", { d, fill: "none", stroke: color, "stroke-width": 3, "stroke-dasharray": dash }));
    }
  }
  // Markers: alarms, refills, faults from the log; time jumps and resets as control marks.
  let labelRow = 0;
  for (const e of app.log) {
    if (e.time_ms < start || e.time_ms > end) continue;
    let mark = MARKS[e.kind];
    if (!mark && e.kind === "CONTROL" && (e.a === 4 || e.a === 6)) {
      mark = { color: "#8a6d00", dash: "8 4", label: () => (e.a === 6 ? "reset" : "jump") };
    }
    if (!mark) continue;
    const mx = x(e.time_ms);
    kids.push(s("line", { class: `mark mark-${e.kind}`, x1: mx, x2: mx, y1: 24, y2: 529, stroke: mark.color, "stroke-width": 2, "stroke-dasharray": mark.dash }));
    if (e.kind !== "CONTROL") {
      const right = mx > W - 200;
      kids.push(s("text", { x: right ? mx - 4 : mx + 4, y: 42 + (labelRow % 6) * 17, "font-size": 15, fill: mark.color, "font-weight": "bold", "text-anchor": right ? "end" : "start" }, words(mark.label(e))));
      labelRow += 1;
    }
  }
  // x axis: dates of the pump clock
  const span = end - start;
  const stepMs = span > 120 * DAY ? 30 * DAY : span > 20 * DAY ? 7 * DAY : span > 3 * DAY ? DAY : span > 12 * HOUR ? 3 * HOUR : HOUR;
  for (let t = Math.ceil(start / stepMs) * stepMs; t <= end; t += stepMs) {
    kids.push(s("line", { x1: x(t), x2: x(t), y1: 529, y2: 537, stroke: "#000" }));
    const text = stepMs >= DAY ? fmtDate(t).slice(5, 10) : fmtDate(t).slice(11);
    kids.push(s("text", { x: x(t), y: 555, "font-size": 14, "text-anchor": "middle" }, text));
  }
  kids.push(s("text", { x: W - R, y: 577, "font-size": 14, "text-anchor": "end" }, `now ${fmtDate(end)} (pump clock)`));
  title.textContent = `Reservoir, rate, dose and the volumes pumped and delivered from ${fmtDate(start)} to ${fmtDate(end)}`;
  svg.replaceChildren(...kids);
  svg.dataset.samples = String(samples.length);
}
