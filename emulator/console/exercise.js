// The running scenario's graded exercise on the instructor console: the trainee's progress,
// scored live by GET /v1/pumps/{serial}/exercise (emulator/_exercise.py), polled while a
// pump's detail is open. Hidden when the pump runs no exercise (404).
"use strict";

(() => {
  const POLL_MS = 2000;
  const $ = (id) => document.getElementById(id);

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

  async function poll() {
    const m = /^pump (\d+)/.exec($("pump-title").textContent.trim());
    const token = sessionStorage.getItem("itp-console-token");
    if (!m || !token || $("detail").hidden) { $("exercise").hidden = true; return; }
    try {
      const r = await fetch(`/v1/pumps/${m[1]}/exercise`, {
        headers: { Authorization: `Bearer ${token}` }, cache: "no-store",
      });
      if (r.status !== 200) { $("exercise").hidden = true; return; }
      render(await r.json());
    } catch (e) { /* the server is away: keep what is shown */ }
  }

  document.addEventListener("DOMContentLoaded", () => { poll(); setInterval(poll, POLL_MS); });
})();
