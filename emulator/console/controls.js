// The instructor's controls on a pump's detail page: pump time (pause, speed, jumps), faults,
// the true reservoir, the catheter, the link, scenarios, and the keyboard shortcuts.

import { act, result, whenFree } from "./actions.js";
import { audio, setSound } from "./alarms.js";
import { app } from "./app.js";
import { $, h } from "./dom.js";
import { DAY, HOUR, MIN, fmtDate, fmtDuration, fmtMl, fmtSpeed, words } from "./format.js";
import { renderHistory } from "./history.js";
import { renderLog } from "./log.js";

const SPEEDS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
  100000, 200000, 500000, 1000000];

function speedIndex(f) {
  let best = 0;
  SPEEDS.forEach((v, i) => { if (Math.abs(Math.log(v) - Math.log(f)) < Math.abs(Math.log(SPEEDS[best]) - Math.log(f))) best = i; });
  return best;
}

export function renderControls(st, prev) {
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

export function faultParams() {
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

// The buttons, fields and keys of the page (the login form and the address: console.js).
export function wire() {
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
    whenFree(() => act(app.state.paused ? "resume" : "pause", "POST", app.state.paused ? "/resume" : "/pause"));
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

// The fault kinds and scenarios the control plane offers, once its catalogue is in.
export function fillCatalogue(cat) {
  app.catalogue = cat;
  $("fault-kind").replaceChildren(...Object.keys(cat.faults).map((k) => h("option", { value: k, text: words(k) })));
  $("fault-kind").value = "MOTOR_STALL";
  faultParams();
  $("scenario").replaceChildren(...cat.scenarios.map((sc) => h("option", { value: sc.name, text: sc.title })));
}
