// The detail page of one pump on the instructor console (#/pump/N): its stream (state, log,
// history, narration) and the panels that show the state as it arrives.

import { renderAlarms } from "./alarms.js";
import { app, markReady } from "./app.js";
import { renderGauge, renderSchedule } from "./charts.js";
import { openStream } from "./connection.js";
import { renderControls } from "./controls.js";
import { $, h, setText } from "./dom.js";
import { fmtClock, fmtDate, fmtDuration, fmtMass, fmtMl, fmtRate, fmtSpeed, massUnit, pad, words } from "./format.js";
import { renderHistory } from "./history.js";
import { renderLog } from "./log.js";

const LOG_KEEP = 5000; // records kept for the plot's markers (log.js shows the newest)

export function showDetail(serial) {
  $("login").hidden = true;
  $("fleet").hidden = true;
  $("detail").hidden = false;
  if (app.serial === serial && app.source) return;
  app.serial = serial;
  app.state = null;
  app.log = [];
  app.history = [];
  app.narration = [];
  renderNarration();
  app.lastTones = null;
  $("pump-title").textContent = `pump ${serial}`;
  document.title = `Pump ${serial} · instructor console`;
  openStream(`/v1/pumps/${serial}/stream`, {
    state: (st) => { render(st); markReady(); },
    log: (msg) => {
      if (msg.reset) app.log = [];
      app.log.push(...msg.records);
      if (app.log.length > LOG_KEEP) app.log.splice(0, app.log.length - LOG_KEEP);
      renderLog();
      renderHistory();
    },
    history: (msg) => {
      if (msg.reset) app.history = [];
      // each sample with its ground-truth volumes beside it: program, pumped, patient nL
      const flows = msg.flows || [];
      app.history.push(...msg.samples.map((r, i) => [...r, ...(flows[i] || [null, null, null])]));
      renderHistory();
    },
    narration: (msg) => {
      if (msg.reset) app.narration = [];
      app.narration.push(...msg.notes);
      renderNarration();
    },
  });
}

// The newest note large (a banner for the room), the earlier ones listed below it.
function renderNarration() {
  const notes = app.narration;
  $("narration").hidden = notes.length === 0;
  const latest = notes[notes.length - 1];
  $("narration-latest").textContent = latest ? latest.text : "";
  $("narration-time").textContent = latest ? `pump clock ${fmtClock(latest.time_ms)}` : "";
  $("narration-list").replaceChildren(
    ...notes.slice(0, -1).reverse().map((n) =>
      h("li", {}, h("span", { class: "muted", text: `${fmtDate(n.time_ms)} ` }), n.text)),
  );
}

export function render(st) {
  const prev = app.state;
  app.state = st;
  app.stateAt = performance.now();
  const S = st.status;
  const unit = massUnit(st);
  document.body.dataset.programVersion = S.program_version;
  $("pump-title").textContent = `pump ${st.serial} · ${st.profile}`;

  // reservoir
  setText("res-calc", fmtMl(S.reservoir_nl), S.reservoir_nl);
  setText("res-true", fmtMl(S.true_reservoir_nl), S.true_reservoir_nl);
  setText("res-low", fmtMl(S.low_threshold_nl), S.low_threshold_nl);
  setText("res-empty", fmtMl(st.empty_threshold_nl), st.empty_threshold_nl);
  setText("res-capacity", fmtMl(st.capacity_nl), st.capacity_nl);
  const lowRaised = S.active_alarms.includes("LOW_RESERVOIR");
  setText("res-days-low", lowRaised ? "raised now" : dueText(S.low_reservoir_at_ms, S.clock_ms), S.low_reservoir_at_ms);
  setText("res-days-empty", S.active_alarms.includes("EMPTY_RESERVOIR") ? "raised now" : dueText(S.empty_at_ms, S.clock_ms), S.empty_at_ms);
  renderGauge(st);
  const trueInput = $("true-ml");
  trueInput.max = String(st.capacity_nl / 1e6);
  if (document.activeElement !== trueInput && (!prev || prev.status.true_reservoir_nl !== S.true_reservoir_nl)) {
    trueInput.value = (S.true_reservoir_nl / 1e6).toFixed(2);
  }

  // therapy
  setText("drug", words(S.drug), S.drug);
  setText("conc", S.drug === "NONE" ? "–" : `${fmtMass(S.conc_ng_per_ml, unit)}/mL`, S.conc_ng_per_ml);
  let mode = words(S.mode);
  if (S.suspended) mode += " (suspended)";
  if (S.awaiting_program) mode += " (awaiting program)";
  if (S.safe_mode) mode += " (safe mode)";
  setText("mode", mode, S.mode);
  setText("rate", fmtRate(S.current_rate_nl_per_day), S.current_rate_nl_per_day);
  setText("dose", `${fmtMass(S.daily_dose_ng, unit)}/day`, S.daily_dose_ng);
  const bolus = st.program.bolus;
  const off = S.clock_ms - S.now; // model time to pump clock
  setText("bolus-running", bolus ? `${words(bolus.kind)}, ${fmtMass(bolus.dose_ng, unit)}, ends ${fmtDate(bolus.start_ms + bolus.duration_ms + off)}` : "none", S.bolus);
  setText("delivering", S.delivering ? "yes" : "NO", S.delivering);
  setText("faults-active", S.faults.length ? S.faults.map(words).join(", ") : "none", S.faults.join(","));

  // patient bolus
  const pb = st.program.patient_bolus;
  const win = st.program.patient_bolus_window;
  setText("pb-enabled", pb.enabled ? "yes" : "no", pb.enabled);
  setText("pb-dose", pb.enabled ? fmtMass(pb.dose_ng, unit) : "–", pb.dose_ng);
  setText("pb-duration", pb.enabled ? fmtDuration(pb.duration_ms) : "–", pb.duration_ms);
  setText("pb-lockout", pb.enabled ? fmtDuration(pb.lockout_ms) : "–", pb.lockout_ms);
  setText("pb-used", pb.enabled ? `${win.used_24h} of ${pb.max_per_24h}` : "–", win.used_24h);

  // battery, clock, link
  setText("battery-state", words(S.battery), S.battery);
  setText("battery-left", S.battery === "NOT_APPLICABLE" ? "no battery" : `${(S.battery_remaining_permille / 10).toFixed(1)} %`, S.battery_remaining_permille);
  setText("eri", fmtDate(S.eri_at_ms), S.eri_at_ms);
  setText("eos", fmtDate(S.eos_at_ms), S.eos_at_ms);
  const zo = S.utc_offset_ms, za = Math.abs(zo) / 60000; // the clinic's zone and offset, beside the pump clock
  setText("clock-zone", `${S.zone} (UTC${zo < 0 ? "-" : "+"}${pad(Math.floor(za / 60))}:${pad(za % 60)})`, zo);
  setText("speed-display", fmtSpeed(st.speed_factor), st.speed_factor);
  setText("sessions", String(st.sessions), st.sessions);
  const L = st.link;
  const parts = [];
  if (L.cut) parts.push("CUT");
  if (L.drop) parts.push(`${+(L.drop * 100).toFixed(2)} % lost`);
  if (L.duplicate) parts.push(`${+(L.duplicate * 100).toFixed(2)} % duplicated`);
  if (L.corrupt) parts.push(`${+(L.corrupt * 100).toFixed(2)} % corrupted`);
  if (L.delay_ms) parts.push(`${L.delay_ms} ms delay`);
  setText("link-state", parts.length ? parts.join(", ") : "clean", parts.length ? "impaired" : "clean");
  tick();

  renderControls(st, prev);
  renderAlarms(st, prev);
  renderSchedule();
  renderHistory();
}

function dueText(at, now) {
  if (at === null || at === undefined) return "not coming";
  return `in ${fmtDuration(at - now)} (${fmtDate(at)})`;
}

// The pump clock and countdowns move between two pushes: interpolated from the speed.
function pumpNow() {
  const st = app.state;
  if (!st) return 0;
  const real = performance.now() - app.stateAt;
  return st.status.clock_ms + (st.paused ? 0 : real * st.speed_factor);
}

function tick() {
  const st = app.state;
  if (!st) return;
  const now = pumpNow();
  setText("clock", fmtClock(now), st.status.clock_ms);
  const end = st.program.patient_bolus_window.lockout_ends_at_ms;
  const left = end ? end - now : 0;
  setText("pb-countdown", left > 0 ? fmtDuration(left) : "no lockout", end);
}
setInterval(tick, 250);
