// The instructor's actions on the console: one at a time, through the control plane's
// ordinary routes, each confirmed first when it cannot be undone and each answered on the page.

import { api } from "./api.js";
import { app } from "./app.js";
import { $ } from "./dom.js";

// How an answer that is a pump state is shown at once, before the stream pushes it
// (console.js gives detail.js's render).
let show = () => {};
export function showAnswersWith(fn) { show = fn; }

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
export function whenFree(run) {
  if (busy) pending = run;
  else run();
}
export async function act(label, method, path, body, confirmText) {
  if (!app.serial || busy) return;
  if (confirmText && !(await confirmAction(confirmText))) {
    result(`${label}: cancelled`, "");
    return;
  }
  busy = true;
  document.body.dataset.busy = "1";
  try {
    const answer = await api(method, `/v1/pumps/${app.serial}${path}`, body);
    if (answer && answer.status && answer.serial === app.serial) show(answer);
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

export function result(text, kind) {
  const el = $("action-result");
  el.textContent = text;
  el.dataset.kind = kind;
}
