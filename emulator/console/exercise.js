// Graded exercises on the instructor console, scored live by the control plane
// (emulator/_exercise.py), polled every 2 s:
// - on a pump's detail, that pump's exercise (GET /v1/pumps/{serial}/exercise), hidden when
//   the pump runs none (404);
// - on the fleet page, every trainee's progress (GET /v1/exercises): pump, task, score so
//   far, time taken and what is not right yet; hidden when no pump runs an exercise.
"use strict";

(() => {
  const POLL_MS = 2000;
  const $ = (id) => document.getElementById(id);
  const token = () => sessionStorage.getItem("itp-console-token");

  function render(g) {
    $("exercise").hidden = false;
    $("exercise-task").textContent = g.task;
    const score = $("exercise-score");
    score.textContent = `${g.passed ? "passed" : "in progress"}: ${g.score} right, ${g.minutes_taken} min`;
    score.dataset.passed = g.passed ? "1" : "0";
    const list = $("exercise-checks");
    list.replaceChildren(...g.checks.map((c) => {
      const li = document.createElement("li");
      li.className = c.ok ? "ok" : "wrong";
      li.textContent = `${c.ok ? "right" : "not yet"}: ${c.check} (${c.found})`;
      return li;
    }));
  }

  async function get(path) {
    const r = await fetch(path, { headers: { Authorization: `Bearer ${token()}` }, cache: "no-store" });
    return r.status === 200 ? r.json() : null;
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }

  function renderTrainees(rows) {
    $("trainees").hidden = rows.length === 0;
    $("trainees-body").replaceChildren(...rows.map((g) => {
      const tr = document.createElement("tr");
      tr.dataset.serial = String(g.serial);
      tr.dataset.passed = g.passed ? "1" : "0";
      cell(tr, String(g.serial), "serial");
      cell(tr, g.task, "task");
      cell(tr, `${g.passed ? "passed" : "in progress"}: ${g.score} right`, g.passed ? "score ok" : "score wrong");
      cell(tr, `${g.minutes_taken.toFixed(1)} min`, "taken");
      cell(tr, g.not_yet.join("; ") || "–", "not-yet");
      return tr;
    }));
  }

  async function poll() {
    if (!token()) return;
    try {
      if (!$("fleet").hidden) {
        const rows = await get("/v1/exercises");
        if (rows) renderTrainees(rows);
      }
      const m = /^pump (\d+)/.exec($("pump-title").textContent.trim());
      if (!m || $("detail").hidden) { $("exercise").hidden = true; return; }
      const g = await get(`/v1/pumps/${m[1]}/exercise`);
      if (g) render(g); else $("exercise").hidden = true;
    } catch (e) { /* the server is away: keep what is shown */ }
  }

  document.addEventListener("DOMContentLoaded", () => { poll(); setInterval(poll, POLL_MS); });
})();
