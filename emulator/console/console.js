/* Instructor console (docs/console.md). Plain JavaScript, no library, no build step.
 *
 * Reads: the control plane's Server-Sent Events (/v1/stream for the fleet,
 * /v1/pumps/{serial}/stream for one pump: `state`, `log`, `history`). Writes: only through the
 * control plane's ordinary routes, with the bearer token taken from the URL fragment
 * (#token=...), kept in sessionStorage and removed from the address bar.
 * Units arrive as integers (nL, ng, ms); they become mL, mg and dates here, at the edge.
 */
"use strict";

(() => {
  const DAY = 86400000;
  const HOUR = 3600000;
  const MIN = 60000;
  const SPEEDS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
    100000, 200000, 500000, 1000000];
  const LOG_ROWS = 300; // rows shown; every record received is kept for the plot's markers
  const LOG_KEEP = 5000;
  const TOKEN_KEY = "itp-console-token";

  const $ = (id) => document.getElementById(id);

  // --- small DOM helpers (textContent only: nothing is parsed as HTML) -----------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const SVGNS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, text) {
    const el = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) el.setAttribute(k, String(v));
    }
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function setText(id, text, value) {
    const el = $(id);
    if (el.textContent !== text) el.textContent = text; // unchanged text: no DOM mutation
    if (value !== undefined) el.dataset.value = value === null ? "" : String(value);
  }

  // Screen readers hear an alarm when it changes, not every push.
  let announced = "";
  function announce(text) {
    if (text !== announced) {
      announced = text;
      $("alarm-announce").textContent = text;
    }
  }

  // --- formatting: human units at the edge ------------------------------------------------

  const pad = (n, w = 2) => String(n).padStart(w, "0");
  function fmtDate(ms) { // the pump clock has no time zone: shown as it counts (UTC)
    if (ms === null || ms === undefined) return "–";
    const d = new Date(ms);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  }
  function fmtClock(ms) {
    const d = new Date(ms);
    return `${fmtDate(ms)}:${pad(d.getUTCSeconds())}`;
  }
  const fmtMl = (nl) => `${(nl / 1e6).toFixed(2)} mL`;
  const fmtRate = (nl) => `${(nl / 1e6).toFixed(3)} mL/day`;
  function massUnit(state) {
    return state && state.status.conc_unit === "MCG_PER_ML" ? "mcg" : "mg";
  }
  function fmtMass(ng, unit) {
    if (unit === "mcg") return `${+(ng / 1000).toFixed(3)} mcg`;
    return `${+(ng / 1e6).toFixed(4)} mg`;
  }
  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return "–";
    const neg = ms < 0;
    ms = Math.abs(ms);
    let out;
    if (ms >= 2 * DAY) out = `${(ms / DAY).toFixed(1)} days`;
    else if (ms >= HOUR) out = `${Math.floor(ms / HOUR)} h ${pad(Math.floor((ms % HOUR) / MIN))} min`;
    else if (ms >= MIN) out = `${Math.floor(ms / MIN)} min ${pad(Math.floor((ms % MIN) / 1000))} s`;
    else out = `${Math.round(ms / 1000)} s`;
    return neg ? `-${out}` : out;
  }
  const words = (name) => (name ? name.toLowerCase().replace(/_/g, " ") : "–");
  const fmtSpeed = (f) => (f === 0 ? "paused" : `x${f.toLocaleString("en-US")}`);

  // --- state of the page ------------------------------------------------------------------

  const app = {
    token: null,
    catalogue: null,
    pumps: new Map(), // serial -> summary
    serial: null, // pump in the detail view
    state: null,
    stateAt: 0, // performance.now() when `state` arrived
    log: [],
    history: [],
    narration: [], // the instructor's notes (never the pump's: not in its log)
    source: null, // the EventSource
    ready: false,
    lastTones: null,
  };

  // --- token ------------------------------------------------------------------------------

  function takeToken() {
    const frag = new URLSearchParams(location.hash.replace(/^#\/?/, ""));
    const fromUrl = frag.get("token");
    if (fromUrl) {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
      const pump = frag.get("pump");
      // Keep the token off the projector and out of the history.
      history.replaceState(null, "", location.pathname + location.search + (pump ? `#/pump/${pump}` : "#/"));
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${app.token}` };
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (!r.ok) throw new ApiError(r.status, (data && data.error) || r.statusText);
    return data;
  }

  function showLogin(message) {
    closeStream();
    $("fleet").hidden = true;
    $("detail").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    setConn("denied", message ? "not connected" : "no token");
    $("token-input").focus();
  }

  // --- connection indicator ---------------------------------------------------------------

  function setConn(state, text) {
    const el = $("conn");
    el.dataset.state = state;
    el.textContent = text;
  }

  function closeStream() {
    if (app.source) app.source.close();
    app.source = null;
  }

  function openStream(path, handlers) {
    closeStream();
    setConn("connecting", "connecting…");
    const es = new EventSource(`${path}?access_token=${encodeURIComponent(app.token)}`);
    app.source = es;
    es.onopen = () => setConn("live", "live");
    es.onerror = () => {
      if (app.source !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        // Refused outright (a wrong token answers 401): ask the server why.
        closeStream();
        api("GET", "/v1/pumps").then(
          () => { setConn("reconnecting", "reconnecting…"); setTimeout(route, 2000); },
          (e) => (e.status === 401 ? showLogin("The token was refused.") : setConn("reconnecting", "server unreachable")),
        );
      } else {
        setConn("reconnecting", "reconnecting…");
      }
    };
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (ev) => fn(JSON.parse(ev.data)));
    }
  }

  // --- routing: #/ (one pump: its detail), #/fleet, #/pump/N ---------------------------------

  function route() {
    if (!app.token) { showLogin(); return; }
    const m = location.hash.match(/^#\/pump\/(\d+)/);
    if (m) { showDetail(Number(m[1])); return; }
    if (location.hash.startsWith("#/fleet") || app.pumps.size !== 1) { showFleet(); return; }
    showDetail(app.pumps.keys().next().value);
  }

  // --- fleet ------------------------------------------------------------------------------

  function showFleet() {
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

  // --- detail -----------------------------------------------------------------------------

  function showDetail(serial) {
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

  function markReady() {
    if (app.ready) return;
    app.ready = true;
    window.consoleReadyMs = performance.now();
    document.body.dataset.ready = "1";
  }

  function render(st) {
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

  // --- alarms and their sound -------------------------------------------------------------

  const audio = { ctx: null, on: false, busyUntil: 0, played: 0 };

  function setSound(on) {
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

  function renderAlarms(st) {
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

  // --- the reservoir gauge ----------------------------------------------------------------

  function renderGauge(st) {
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

  function scheduleSteps(st) {
    const S = st.status;
    if (S.mode === "SCHEDULE" && st.program.schedule.length) {
      return st.program.schedule.map(([minute, dose]) => [minute, dose]);
    }
    if (S.mode === "CONTINUOUS" || S.mode === "BRIDGE") return [[0, S.daily_dose_ng]];
    return [[0, 0]];
  }

  function renderSchedule() {
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

  // --- history plot -----------------------------------------------------------------------

  const MARKS = {
    ALARM_RAISED: { color: "#c00000", dash: null, label: (e) => e.text.replace(/^alarm /, "").replace(/ raised.*/, "") },
    REFILL: { color: "#007a33", dash: null, label: () => "refill" },
    FAULT: { color: "#7a00b8", dash: "3 3", label: (e) => e.text.replace(/^fault /, "") },
    MRI_EXPOSURE: { color: "#7a00b8", dash: "3 3", label: () => "MRI" },
  };

  function renderHistory() {
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

  // --- event log --------------------------------------------------------------------------

  function renderLog() {
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

  // --- instructor actions -----------------------------------------------------------------

  function confirmAction(text) {
    const dlg = $("confirm");
    $("confirm-text").textContent = text;
    return new Promise((resolve) => {
      const done = (ok) => {
        dlg.removeEventListener("close", onClose);
        $("confirm-ok").onclick = null;
        $("confirm-cancel").onclick = null;
        if (dlg.open) dlg.close();
        resolve(ok);
      };
      const onClose = () => done(false);
      $("confirm-ok").onclick = () => done(true);
      $("confirm-cancel").onclick = () => done(false);
      dlg.addEventListener("close", onClose);
      dlg.showModal();
      $("confirm-cancel").focus(); // the safe choice is the default
    });
  }

  let busy = false;
  // The last pause toggle or speed change pressed while another action was being answered:
  // kept (the newest wins) and run once that answer is in, never silently dropped (P, P, +).
  let pending = null;
  function whenFree(run) {
    if (busy) pending = run;
    else run();
  }
  async function act(label, method, path, body, confirmText) {
    if (!app.serial || busy) return;
    if (confirmText && !(await confirmAction(confirmText))) {
      result(`${label}: cancelled`, "");
      return;
    }
    busy = true;
    document.body.dataset.busy = "1";
    try {
      const answer = await api(method, `/v1/pumps/${app.serial}${path}`, body);
      if (answer && answer.status && answer.serial === app.serial) render(answer);
      result(`${label}: done`, "ok");
      return answer;
    } catch (e) {
      result(`${label}: refused${e.status ? ` (${e.status})` : ""}: ${e.message}`, "error");
    } finally {
      busy = false;
      delete document.body.dataset.busy;
      if (pending) {
        const run = pending;
        pending = null;
        setTimeout(run, 0);
      }
    }
  }

  function result(text, kind) {
    const el = $("action-result");
    el.textContent = text;
    el.dataset.kind = kind;
  }

  function speedIndex(f) {
    let best = 0;
    SPEEDS.forEach((v, i) => { if (Math.abs(Math.log(v) - Math.log(f)) < Math.abs(Math.log(SPEEDS[best]) - Math.log(f))) best = i; });
    return best;
  }

  function renderControls(st, prev) {
    const next = st.next_event_at_ms;
    $("next-when").textContent = next === null ? "(none coming)" : `(in ${fmtDuration(next - st.status.clock_ms)})`;
    const pause = $("pause");
    pause.firstChild.textContent = st.paused ? "Resume " : "Pause ";
    pause.setAttribute("aria-label", st.paused ? "Resume pump time" : "Pause pump time");
    const slider = $("speed");
    if (!st.paused && document.activeElement !== slider) {
      slider.value = String(speedIndex(st.speed_factor));
      showSpeed();
    }
    // the catheter's true state (the pump knows none of it)
    const c = st.catheter;
    if (c) {
      const parts = [`holds back ${(c.restriction_ppm / 10000).toFixed(1)} % of the flow`];
      if (c.granuloma_final_ppm) parts.push(`granuloma growing to ${(c.granuloma_final_ppm / 10000).toFixed(0)} % by ${fmtDate(c.granuloma_full_at_ms)}`);
      if (c.leak_ppm) parts.push(c.leak_ppm >= 1e6 ? "disconnected" : `leaks ${(c.leak_ppm / 10000).toFixed(1)} %`);
      if (c.occluded) parts.push("occluded");
      $("catheter-truth").textContent = `Truly: ${parts.join(", ")}.`;
    }
    // faults: clear buttons for the active ones
    const faults = st.status.faults;
    if (!prev || prev.status.faults.join() !== faults.join()) {
      const list = $("fault-list");
      list.replaceChildren(...(faults.length ? faults.map((f) => {
        const info = app.catalogue && app.catalogue.faults[f];
        const permanent = info && info.irreversible;
        return h("li", { "data-fault": f },
          h("span", { text: words(f) }),
          permanent ? h("span", { class: "muted small", text: "ends only with a new pump" })
            : h("button", { type: "button", "data-clear": f, onclick: () => act(`clear ${words(f)}`, "DELETE", `/faults/${f}`) }, `Clear ${words(f)}`));
      }) : [h("li", { class: "muted", text: "none" })]));
    }
    if (!prev || JSON.stringify(prev.link) !== JSON.stringify(st.link)) {
      const active = document.activeElement;
      const fields = { "link-drop": st.link.drop * 100, "link-dup": st.link.duplicate * 100, "link-corrupt": st.link.corrupt * 100, "link-delay": st.link.delay_ms };
      for (const [id, v] of Object.entries(fields)) if (active !== $(id)) $(id).value = String(+v.toFixed(4));
      if (active !== $("link-cut")) $("link-cut").checked = st.link.cut;
    }
  }

  function showSpeed() {
    const f = SPEEDS[Number($("speed").value)];
    $("speed-value").textContent = fmtSpeed(f);
    $("speed").setAttribute("aria-valuetext", fmtSpeed(f));
  }

  function faultParams() {
    const kind = $("fault-kind").value;
    const info = app.catalogue.faults[kind];
    $("fault-help").textContent = info.description;
    const box = $("fault-params");
    box.replaceChildren(...Object.entries(info.params).map(([name, schema]) => {
      const ui = PARAMS[name] || { label: name, scale: 1 };
      const id = `fp-${name}`;
      const value = schema.default === null || schema.default === undefined ? "" : String(+(schema.default / ui.scale).toFixed(4));
      return h("div", { class: "row" },
        h("label", { for: id, text: ui.label }),
        h("input", { id, type: "number", step: "any", value, "data-param": name, "data-scale": ui.scale, placeholder: ui.optional ? "never" : "" }));
    }));
  }

  const PARAMS = {
    recover_after_ms: { label: "Recovers by itself after (hours; empty: never)", scale: HOUR, optional: true },
    share_ppm: { label: "Share of the flow lost (%)", scale: 10000 },
    volume_nl: { label: "Volume missing the reservoir at the next refill (mL)", scale: 1e6 },
    duration_ms: { label: "Scan duration (min)", scale: MIN },
    recovery_delay_ms: { label: "Recovery after the scan (hours)", scale: HOUR },
    error_ppm: { label: "Delivery error (%; + over, - under)", scale: 10000 },
    restriction_ppm: { label: "Share of the flow held back (%)", scale: 10000 },
    start_ppm: { label: "Share held back at first (%)", scale: 10000 },
    end_ppm: { label: "Share held back at the end (%)", scale: 10000 },
    days: { label: "Grows over (days, one step a day)", scale: 1 },
  };

  function inject() {
    const kind = $("fault-kind").value;
    const info = app.catalogue.faults[kind];
    const body = { kind };
    for (const input of $("fault-params").querySelectorAll("input[data-param]")) {
      if (input.value === "") continue;
      body[input.dataset.param] = Math.round(Number(input.value) * Number(input.dataset.scale));
    }
    const warn = info.irreversible ? `${words(kind)} cannot be cleared: only a new pump (a scenario reset) ends it. Inject it?` : null;
    act(`inject ${words(kind)}`, "POST", "/faults", body, warn);
  }

  function wire() {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
      $("token-input").value = "";
      start();
    });
    $("nav-fleet").addEventListener("click", () => { location.hash = "#/fleet"; });
    $("mute").addEventListener("click", () => setSound(!audio.on));
    $("help-btn").addEventListener("click", () => $("help").showModal());
    $("help-close").addEventListener("click", () => $("help").close());
    $("speed").addEventListener("input", showSpeed);
    $("speed").addEventListener("change", () => {
      const f = SPEEDS[Number($("speed").value)];
      whenFree(() => act(`speed ${fmtSpeed(f)}`, "PUT", "/speed", { factor: f }));
    });
    $("pause").addEventListener("click", () => {
      if (!app.state) return;
      // A toggle pressed while another action is answered is kept, not lost (P, P quickly).
      if (busy) { pending = () => $("pause").click(); return; }
      act(app.state.paused ? "resume" : "pause", "POST", app.state.paused ? "/resume" : "/pause");
    });
    $("next-event").addEventListener("click", () => {
      const st = app.state;
      const at = st && st.next_event_at_ms;
      if (at === null) { result("jump to the next event: nothing will happen until a programmer acts", "error"); return; }
      // A small step goes at once; a long one (a constant program's next event may be months
      // away) asks first, like any jump.
      const far = at - st.status.clock_ms > DAY;
      act("jump to the next event", "POST", "/advance", { until: "next-event" },
        far ? `The next event is ${fmtDuration(at - st.status.clock_ms)} ahead (${fmtDate(at)}). Jump there? Time cannot be moved back.` : null);
    });
    $("next-alarm").addEventListener("click", () => act("jump to the next alarm", "POST", "/advance", { until: "next-alarm" },
      "Jump pump time forward to the next alarm? Time cannot be moved back."));
    $("advance-btn").addEventListener("click", () => {
      const days = Number($("advance-days").value);
      if (!(days > 0)) { result("Jump ahead: give a number of days above 0", "error"); return; }
      act(`jump ${days} days`, "POST", "/advance", { ms: Math.round(days * DAY) },
        `Jump pump time forward by ${days} days? The pump delivers, alarms and drains its battery as if they had passed; time cannot be moved back.`);
    });
    $("advance-until-btn").addEventListener("click", () => {
      const until = $("advance-until").value;
      const text = $("advance-until").selectedOptions[0].textContent;
      act(`jump to ${text}`, "POST", "/advance", { until }, `Jump pump time forward to ${text}? Time cannot be moved back.`);
    });
    $("fault-kind").addEventListener("change", faultParams);
    $("aspirate").addEventListener("click", async () => {
      // The CSF / dye check: its answer follows the true catheter (docs/firmware_model.md section 18).
      const answer = await act("catheter access port aspiration", "POST", "/catheter/aspirate");
      if (answer && answer.aspiration) {
        const a = answer.aspiration;
        $("cap-finding").textContent = `${words(a.finding)}: ${a.text}` +
          (a.aspirated_nl ? ` (${fmtMl(a.aspirated_nl)} drawn off with its drug: prime the catheter before therapy)` : "");
      }
    });
    $("inject").addEventListener("click", inject);
    $("set-true").addEventListener("click", () => {
      const ml = Number($("true-ml").value);
      if ($("true-ml").value === "" || !(ml >= 0)) { result("True reservoir: give a volume in mL", "error"); return; }
      act(`true reservoir ${ml} mL`, "PUT", "/reservoir", { true_volume_nl: Math.round(ml * 1e6) },
        `Set what is truly in the reservoir to ${ml} mL? The pump does not know: its calculated volume stays, and the difference shows at the next refill.`);
    });
    const share = (id) => Math.min(1, Math.max(0, Number($(id).value) / 100 || 0));
    $("link-apply").addEventListener("click", () => act("link impairment", "PUT", "/link", {
      drop: share("link-drop"), duplicate: share("link-dup"), corrupt: share("link-corrupt"),
      delay_ms: Math.max(0, Math.round(Number($("link-delay").value) || 0)), cut: $("link-cut").checked,
    }));
    $("link-clear").addEventListener("click", () => act("clean link", "PUT", "/link", {}));
    $("load-scenario").addEventListener("click", () => {
      const name = $("scenario").value;
      const title = $("scenario").selectedOptions[0].textContent;
      act(`load ${name}`, "POST", "/reset", { scenario: name },
        `Replace pump ${app.serial} by the starting state of "${title}"? Its memory and event log are erased and open programmer sessions end.`);
    });
    $("hist-range").addEventListener("change", renderHistory);
    $("log-kind").addEventListener("change", renderLog);
    $("log-source").addEventListener("change", renderLog);
    window.addEventListener("hashchange", route);
    document.addEventListener("keydown", onKey);
  }

  function onKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
    if (document.querySelector("dialog[open]")) return;
    const detail = !$("detail").hidden;
    const key = ev.key;
    const click = (id) => { ev.preventDefault(); $(id).click(); };
    if (key === "?") { ev.preventDefault(); $("help").showModal(); } else if (key === "m" || key === "M") click("mute");
    else if (key === "f" || key === "F") click("nav-fleet");
    else if (detail && (key === "p" || key === "P")) click("pause");
    else if (detail && (key === "n" || key === "N")) click("next-event");
    else if (detail && (key === "a" || key === "A")) click("next-alarm");
    else if (detail && (key === "l" || key === "L")) { ev.preventDefault(); $("log-kind").focus(); } else if (detail && (key === "+" || key === "=" || key === "-")) {
      ev.preventDefault();
      const slider = $("speed");
      const i = Math.min(SPEEDS.length - 1, Math.max(0, Number(slider.value) + (key === "-" ? -1 : 1)));
      slider.value = String(i);
      showSpeed();
      whenFree(() => act(`speed ${fmtSpeed(SPEEDS[i])}`, "PUT", "/speed", { factor: SPEEDS[i] }));
    }
  }

  function fillCatalogue(cat) {
    app.catalogue = cat;
    $("fault-kind").replaceChildren(...Object.keys(cat.faults).map((k) => h("option", { value: k, text: words(k) })));
    $("fault-kind").value = "MOTOR_STALL";
    faultParams();
    $("scenario").replaceChildren(...cat.scenarios.map((sc) => h("option", { value: sc.name, text: sc.title })));
  }

  async function start() {
    app.token = takeToken();
    if (!app.token) { showLogin(); return; }
    try {
      const [cat, pumps] = await Promise.all([api("GET", "/v1/catalogue"), api("GET", "/v1/pumps")]);
      fillCatalogue(cat);
      app.pumps = new Map(pumps.map((p) => [p.serial, p]));
    } catch (e) {
      if (e.status === 401) { sessionStorage.removeItem(TOKEN_KEY); app.token = null; showLogin("The token was refused."); } else showLogin(`Cannot reach the emulator: ${e.message}`);
      return;
    }
    route();
  }

  wire();
  start();
})();
