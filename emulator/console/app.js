// The state of the instructor console's page, shared by its modules.

export const app = {
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

// The page has shown its first push: tests and bench/console.py wait on this.
export function markReady() {
  if (app.ready) return;
  app.ready = true;
  window.consoleReadyMs = performance.now();
  document.body.dataset.ready = "1";
}
