// Alarms on the instructor console: the banner, the table of active alarms and their sound
// (Web Audio, off until the instructor turns it on).

import { app } from "./app.js";
import { $, announce, h, setText } from "./dom.js";
import { fmtDate, fmtDuration, words } from "./format.js";

export const audio = { ctx: null, on: false, busyUntil: 0, played: 0 };

export function setSound(on) {
  audio.on = on;
  if (on) {
    if (!audio.ctx) {
      audio.ctx = new (window.AudioContext || window.webkitAudioContext)();
      audio.ctx.addEventListener("statechange", () => { $("mute").dataset.audio = audio.ctx.state; });
    }
    audio.ctx.resume();
  } else if (audio.ctx) {
    audio.ctx.suspend();
  }
  $("mute").setAttribute("aria-pressed", on ? "true" : "false");
  $("mute-state").textContent = on ? "on" : "off";
}

function beep(freq, at, dur) {
  const ctx = audio.ctx;
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.type = "sine";
  osc.frequency.value = freq;
  gain.gain.setValueAtTime(0, at);
  gain.gain.linearRampToValueAtTime(0.25, at + 0.02);
  gain.gain.setValueAtTime(0.25, at + dur - 0.04);
  gain.gain.linearRampToValueAtTime(0, at + dur);
  osc.connect(gain).connect(ctx.destination);
  osc.start(at);
  osc.stop(at + dur + 0.02);
}

// Critical: a two-tone sound of about 3 s; non-critical: one tone of about 1 s (domain #4).
function playTone(tone) {
  const bell = $("tone-indicator");
  bell.classList.remove("ringing");
  void bell.offsetWidth; // restart the animation
  bell.classList.add("ringing");
  bell.dataset.tone = tone;
  if (!audio.on || !audio.ctx) return;
  const t0 = audio.ctx.currentTime;
  if (t0 < audio.busyUntil) return; // pump time runs faster than the sound: no pile-up
  if (tone === "TWO_TONE") {
    for (let i = 0; i < 6; i += 1) beep(i % 2 ? 660 : 880, t0 + i * 0.5, 0.45);
    audio.busyUntil = t0 + 3.5;
  } else {
    beep(880, t0, 1.0);
    audio.busyUntil = t0 + 1.5;
  }
  audio.played += 1;
  bell.dataset.count = String(audio.played);
}

// The control plane gives an alarm as the list of its flag names (one name per alarm).
const alarmName = (a) => (Array.isArray(a.alarm) ? a.alarm.join("+") : a.alarm);

export function renderAlarms(st) {
  const banner = $("alarm-banner");
  const alarms = st.alarms.map((a) => ({ ...a, alarm: alarmName(a) }));
  const sounding = alarms.find((a) => a.sounding) || null;
  const top = sounding || alarms[0] || null;
  // New tones since the last push: the model counts them; the page sounds the newest one.
  if (app.lastTones !== null && st.tones_sounded > app.lastTones && st.last_tone) {
    playTone(st.last_tone[1]);
  }
  app.lastTones = st.tones_sounded;
  if (!top) {
    announce("No alarm");
    banner.dataset.level = "none";
    setText("alarm-name", "No alarm", "");
    for (const id of ["alarm-priority", "alarm-tone", "alarm-state"]) setText(id, "");
    $("alarm-detail").textContent = "";
    $("alarm-table").hidden = true;
    $("alarm-body").replaceChildren();
    return;
  }
  const quiet = top.state !== "ACTIVE";
  announce(`Alarm: ${words(top.alarm)}, ${top.critical ? "critical" : "non-critical"}, ${alarmState(top)}`);
  banner.dataset.level = quiet ? "quiet" : top.critical ? "critical" : "noncritical";
  setText("alarm-name", words(top.alarm), top.alarm);
  setText("alarm-priority", `${top.critical ? "critical" : "non-critical"} · ${words(top.priority)} priority`, top.priority);
  setText("alarm-tone", `${top.tone === "TWO_TONE" ? "two-tone" : "single tone"} every ${fmtDuration(top.repeat_interval_ms)}`, top.tone);
  setText("alarm-state", alarmState(top), top.state);
  const info = app.catalogue && app.catalogue.alarms[top.alarm];
  let detail = info ? `${info.description} Cleared by ${info.cleared_by}.` : "";
  if (!top.condition) detail += " Its cause has ended: latched until a programmer acknowledges it.";
  if (top.sounding && st.last_tone) {
    const next = st.last_tone[0] + top.repeat_interval_ms;
    detail += ` Last tone ${fmtDate(st.last_tone[0])}, next at ${fmtDate(next)} (pump clock).`;
  }
  $("alarm-detail").textContent = detail;
  $("alarm-table").hidden = false;
  $("alarm-body").replaceChildren(...alarms.map((a) => h("tr", { "data-alarm": a.alarm },
    h("th", { scope: "row" }, words(a.alarm), a.sounding ? h("span", { class: "muted", text: " (sounding)" }) : null),
    h("td", { text: `${a.critical ? "critical" : "non-critical"}, ${words(a.priority)}` }),
    h("td", { text: `${a.tone === "TWO_TONE" ? "two-tone" : "single tone"}, ${fmtDuration(a.repeat_interval_ms)}` }),
    h("td", { class: "state", text: alarmState(a) }),
    h("td", { text: fmtDate(a.raised_at_ms) }))));
}

function alarmState(a) {
  let text = a.state === "SILENCED" ? `silenced until ${fmtDate(a.silenced_until_ms)}`
    : a.state === "ACKNOWLEDGED" ? "acknowledged (silent)" : "active";
  if (!a.condition) text += ", cause ended";
  return text;
}
