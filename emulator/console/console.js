/* Instructor console (docs/console.md). Plain JavaScript modules, no library, no build step.
 *
 * Reads: the control plane's Server-Sent Events (/v1/stream for the fleet,
 * /v1/pumps/{serial}/stream for one pump: `state`, `log`, `history`). Writes: only through the
 * control plane's ordinary routes, with the bearer token taken from the URL fragment
 * (#token=...), kept in sessionStorage and removed from the address bar.
 * Units arrive as integers (nL, ng, ms); they become mL, mg and dates here, at the edge.
 *
 * This module starts the page and routes it; one concept per module beside it:
 *   app.js         the state of the page          api.js      token and control plane calls
 *   connection.js  stream, indicator, login       format.js   units and dates
 *   dom.js         DOM helpers                    fleet.js    the fleet page
 *   detail.js      one pump's page and panels     alarms.js   alarm banner, table and sound
 *   charts.js      reservoir gauge, day schedule  history.js  the history plot
 *   log.js         the event log table            actions.js  one action at a time, confirmed
 *   controls.js    the instructor's controls and keyboard shortcuts
 * (exercise.js, a separate script, shows graded exercises.)
 */

import { showAnswersWith } from "./actions.js";
import { TOKEN_KEY, api, takeToken } from "./api.js";
import { app } from "./app.js";
import { retryWith, showLogin } from "./connection.js";
import { fillCatalogue, wire } from "./controls.js";
import { render, showDetail } from "./detail.js";
import { $ } from "./dom.js";
import { showFleet } from "./fleet.js";

// --- routing: #/ (one pump: its detail), #/fleet, #/pump/N ---------------------------------

function route() {
  if (!app.token) { showLogin(); return; }
  const m = location.hash.match(/^#\/pump\/(\d+)/);
  if (m) { showDetail(Number(m[1])); return; }
  if (location.hash.startsWith("#/fleet") || app.pumps.size !== 1) { showFleet(); return; }
  showDetail(app.pumps.keys().next().value);
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

showAnswersWith(render);
retryWith(route);
wire();
$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
  $("token-input").value = "";
  start();
});
window.addEventListener("hashchange", route);
start();
