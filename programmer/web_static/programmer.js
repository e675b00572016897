// The clinician programmer's page: interrogate -> review -> change -> Finish screen -> confirm.
// Every change goes through the server's Finish screen (/api/prepare) and is sent once
// (/api/commit); the server talks to the pump through the programmer library only.
"use strict";

const DRUGS = ["morphine", "hydromorphone", "baclofen", "ziconotide", "bupivacaine",
  "clonidine", "fentanyl", "sufentanil", "saline"];
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
let pending = null; // the Finish screen on show: {id, warnings, form}
let busy = false;
const POLL_MS = 5000; // the light status poll (one STATUS read)
let shownAlarms = ""; // the active alarms the summary shows, by name

async function api(method, path, body) {
  const resp = await fetch(path, {
    method,
    headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await resp.json(); } catch (e) { data = { error: "no answer from the programmer" }; }
  if (data.session) showSession(data.session);
  if (!resp.ok) {
    const err = new Error(data.error || resp.statusText);
    err.kind = data.kind || "";
    err.warnings = data.warnings || [];
    throw err;
  }
  return data;
}

function text(el, value) { el.textContent = value; return el; }
function cell(tr, value, tag = "td") { tr.appendChild(text(document.createElement(tag), value)); }

function say(message, kind = "info") {
  const m = $("#message");
  m.hidden = !message;
  m.className = kind;
  text(m, message || "");
}

function showError(form, err) {
  const box = $(".error", form);
  box.hidden = false;
  text(box, explain(err));
}

function explain(err) {
  if (err.kind === "BadInput") return "Not accepted, nothing was sent: " + err.message;
  if (err.kind === "Refused") return "The pump refused it, nothing was changed: " + err.message;
  if (err.kind === "OutcomeUnknown")
    return "The link was lost after sending: the outcome is UNKNOWN. It was not sent again. " +
      "Press Reconnect: the programmer asks the pump what happened. " + err.message;
  if (err.kind === "Unreachable") return "No answer from the pump (link lost): " + err.message;
  return err.message;
}

// --- connection -------------------------------------------------------------------------

function showSession(s) {
  const state = $("#link-state");
  text(state, s.state);
  state.dataset.state = s.state.replace(/ /g, "-");
  const bits = [s.detail];
  if (s.counters) bits.push(s.counters);
  if (s.speed_factor && s.speed_factor !== 1) bits.push("pump time x" + s.speed_factor);
  text($("#link-detail"), bits.join(" · "));
  const box = $("#unresolved");
  const lines = [];
  for (const u of s.unresolved)
    lines.push(`Command ${u.command || ""} ${u.command_id}: outcome UNKNOWN, not re-sent. ` +
      "Reconnect to resolve it from the pump's command status.");
  for (const r of s.resolved)
    lines.push(`Command ${r.command} ${r.command_id}: resolved by the pump as ${r.outcome}.`);
  box.hidden = lines.length === 0;
  box.replaceChildren(...lines.map((l) => text(document.createElement("p"), l)));
}

async function reconnect() {
  say("Reconnecting…");
  try {
    showSession(await api("POST", "/api/connect"));
    say("");
    await interrogate();
  } catch (err) { say(explain(err), "error"); }
}

// --- summary ----------------------------------------------------------------------------

async function interrogate(first = false) {
  const data = await api("GET", "/api/summary" + (first ? "?first=1" : ""));
  const body = $("#summary tbody");
  body.replaceChildren();
  for (const [label, value] of data.rows) {
    const tr = document.createElement("tr");
    tr.dataset.row = label;
    cell(tr, label, "th");
    cell(tr, value);
    body.appendChild(tr);
  }
  const list = $("#summary-alarms");
  const alarms = $("#alarm-list");
  list.replaceChildren();
  alarms.replaceChildren();
  for (const a of data.alarms) {
    const li = text(document.createElement("li"), a.priority
      ? `${a.alarm.replace(/_/g, " ")}: ${a.priority}, ${a.state}, raised ${a.raised}` +
        (a.state === "silenced" ? `, silenced until ${a.silenced_until}` : "")
      : `${a.alarm.replace(/_/g, " ")}: active (reading its details…)`);
    if (a.critical) li.className = "critical";
    list.appendChild(li);
    const label = document.createElement("label");
    label.className = "check";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = "alarm";
    box.value = a.alarm;
    label.append(box, " " + a.alarm.replace(/_/g, " ") + ` (${a.priority}, ${a.state})`);
    alarms.appendChild(label);
  }
  if (!data.alarms.length) {
    list.appendChild(text(document.createElement("li"), "none"));
    alarms.append("none");
  }
  shownAlarms = data.alarms.map((a) => a.alarm).sort().join(",");
  showUpdated();
  text($("#max-steps"), String(data.max_schedule_steps));
  document.body.dataset.unit = data.unit;
  document.body.dataset.ready = "1"; // the summary is on screen
  if (data.complete) document.body.dataset.complete = "1"; // every detail of it too
  $("#summary").setAttribute("aria-busy", data.complete ? "false" : "true");
  return data;
}

// --- the light status poll: a new alarm shows without the trainee asking -------------------

function showUpdated() {
  const t = new Date();
  const two = (n) => String(n).padStart(2, "0");
  text($("#updated"), `updated ${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}`);
}

async function pollStatus() {
  // never while a Finish screen or a confirmation is open, or anything is being sent
  if (busy || pending || command || !document.body.dataset.complete) return;
  let data;
  try { data = await api("GET", "/api/status"); } catch (err) { return; } // the state shows it
  if (data.skipped || busy || pending || command) return;
  for (const [label, value] of data.rows) {
    const td = $(`#summary tr[data-row="${label}"] td`);
    if (td) text(td, value);
  }
  const now = data.alarms.slice().sort().join(",");
  if (now !== shownAlarms) {
    const added = data.alarms.filter((a) => !shownAlarms.split(",").includes(a));
    try { await interrogate(); } catch (err) { say(explain(err), "error"); return; }
    if (added.length) say("New alarm on the pump: " + added.join(", ").replace(/_/g, " ") + ".", "error");
  } else showUpdated();
}

// --- navigation -------------------------------------------------------------------------

function showPanel(name) {
  for (const b of $$("nav button"))
    if (b.dataset.panel === name) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  for (const p of $$(".panel")) p.hidden = p.id !== "panel-" + name;
  const first = $(`#panel-${name} input, #panel-${name} select, #panel-${name} textarea, #panel-${name} button`);
  if (first) first.focus();
  if (name === "log") readLog();
}

// --- Finish screens ---------------------------------------------------------------------

function formData(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    out[el.name] = el.type === "checkbox" ? el.checked : el.value;
  }
  return out;
}

async function review(form) {
  if (busy) return;
  $(".error", form).hidden = true;
  say("");
  busy = true;
  try {
    const change = await api("POST", "/api/prepare", { kind: form.dataset.kind, form: formData(form) });
    openFinish(change, form);
  } catch (err) {
    showError(form, err);
  } finally { busy = false; }
}

function openFinish(change, form) {
  pending = { id: change.id, warnings: change.warnings, form };
  text($("#finish-title"), "Finish: " + change.title);
  const body = $("#finish-diff tbody");
  body.replaceChildren();
  for (const [name, old, now] of change.diff) {
    const tr = document.createElement("tr");
    tr.dataset.row = name;
    cell(tr, name, "th");
    cell(tr, old);
    cell(tr, now);
    if (old !== now && old !== "-") tr.className = "changed";
    body.appendChild(tr);
  }
  const verdict = $("#finish-verdict");
  verdict.hidden = !change.verdict;
  text(verdict, change.verdict || "");
  verdict.className = change.verdict && change.verdict.includes("BEYOND") ? "bad" : "good";
  const list = $("#finish-warnings");
  list.replaceChildren(...change.warnings.map((w) => text(document.createElement("li"), "WARNING: " + w)));
  $("#finish-confirm-label").hidden = change.warnings.length === 0;
  $("#finish-confirm").checked = false;
  $("#finish-error").hidden = true;
  $("#finish-send").disabled = false;
  $("#finish").showModal();
  $("#finish-cancel").focus(); // the safe choice first: sending needs a deliberate move
}

async function cancelFinish() {
  const p = pending;
  pending = null;
  $("#finish").close();
  if (p) {
    await api("POST", "/api/discard", { id: p.id }).catch(() => {});
    say("Cancelled: nothing was sent.");
    const first = $("input, select, textarea, button", p.form);
    if (first) first.focus();
  }
}

async function sendFinish() {
  if (!pending || busy) return;
  const confirm = $("#finish-confirm").checked;
  const error = $("#finish-error");
  if (pending.warnings.length && !confirm) {
    error.hidden = false;
    text(error, "Read the warnings and tick the confirmation first: nothing was sent.");
    $("#finish-confirm").focus();
    return;
  }
  busy = true;
  $("#finish-send").disabled = true; // one press, one send
  const p = pending;
  try {
    const done = await api("POST", "/api/commit", { id: p.id, confirm });
    pending = null;
    $("#finish").close();
    say(`Sent: ${done.sent}` + (done.program_version ? ` (program version ${done.program_version})` : "") + ".", "ok");
    await interrogate();
    showPanel("summary");
  } catch (err) {
    pending = null; // a Finish screen is sent at most once: prepare again after a failure
    $("#finish").close();
    say(explain(err), "error");
  } finally { busy = false; }
}

// --- commands without a Finish screen: confirmed in a dialog --------------------------------

let command = null;

function askCommand(kind, form) {
  say("");
  $(".error", form).hidden = true;
  const data = formData(form);
  if (kind === "ack" || kind === "silence") {
    data.alarms = $$("input[name=alarm]:checked", form).map((b) => b.value);
    if (!data.alarms.length) { showError(form, { message: "Choose at least one alarm: nothing was sent." }); return; }
  }
  const what = {
    ack: `Acknowledge ${(data.alarms || []).join(", ").replace(/_/g, " ")}?`,
    silence: `Silence ${(data.alarms || []).join(", ").replace(/_/g, " ")} for ${data.minutes}?`,
    clock: `Set the pump clock to this computer's time, zone ${data.zone}?`,
  }[kind];
  command = { kind, data, form };
  text($("#confirm-text"), what);
  $("#confirm").showModal();
  $("#confirm-cancel").focus();
}

async function sendCommand() {
  const c = command;
  command = null;
  $("#confirm").close();
  if (!c) return;
  $(".error", c.form).hidden = true;
  try {
    const done = await api("POST", "/api/command", { kind: c.kind, form: c.data });
    say("Sent: " + done.sent + ".", "ok");
    await interrogate();
  } catch (err) { showError(c.form, err); }
}

async function readLog() {
  try {
    const data = await api("GET", "/api/events?last=100");
    const body = $("#log tbody");
    body.replaceChildren();
    for (const e of data.events) {
      const tr = document.createElement("tr");
      for (const v of [e.seq, e.time, e.kind, e.source, e.a, e.b, e.detail]) cell(tr, String(v));
      body.appendChild(tr);
    }
  } catch (err) { say(explain(err), "error"); }
}

// --- wiring -----------------------------------------------------------------------------

function start() {
  const select = $("select[name=drug]");
  for (const d of DRUGS) {
    const o = document.createElement("option");
    o.value = d;
    text(o, d);
    select.appendChild(o);
  }
  for (const b of $$("nav button")) b.addEventListener("click", () => showPanel(b.dataset.panel));
  for (const f of $$("form[data-kind]"))
    f.addEventListener("submit", (ev) => { ev.preventDefault(); review(f); });
  for (const b of $$("button[data-command]"))
    b.addEventListener("click", () => askCommand(b.dataset.command, b.closest("form")));
  $("#finish-cancel").addEventListener("click", cancelFinish);
  $("#finish-send").addEventListener("click", sendFinish);
  $("#finish").addEventListener("cancel", (ev) => { ev.preventDefault(); cancelFinish(); });
  $("#confirm-cancel").addEventListener("click", () => { command = null; $("#confirm").close(); });
  $("#confirm-send").addEventListener("click", sendCommand);
  $("#reconnect").addEventListener("click", reconnect);
  $("#interrogate").addEventListener("click", () => interrogate().catch((e) => say(explain(e), "error")));
  $("#read-log").addEventListener("click", readLog);
  firstLook();
  setInterval(pollStatus, POLL_MS);
}

// The first interrogation as soon as the session is up (the server may still be connecting).
async function firstLook() {
  try {
    const s = await api("GET", "/api/session");
    showSession(s);
    if (s.state === "connecting") { setTimeout(firstLook, 100); return; }
    if (s.state === "connected") {
      const shown = await interrogate(true);
      if (!shown.complete) await interrogate();
    }
  } catch (err) { say(explain(err), "error"); }
}

document.addEventListener("DOMContentLoaded", start);
