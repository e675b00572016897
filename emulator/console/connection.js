// The instructor console's connection: the indicator in the header, the Server-Sent Events
// stream the page reads (one at a time) and the login panel shown when there is no token or
// it is refused.

import { api } from "./api.js";
import { app } from "./app.js";
import { $ } from "./dom.js";

// What to do once a refused stream's server answers again (console.js: route the page anew).
let retry = () => {};
export function retryWith(fn) { retry = fn; }

export function showLogin(message) {
  closeStream();
  $("fleet").hidden = true;
  $("detail").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  setConn("denied", message ? "not connected" : "no token");
  $("token-input").focus();
}

export function setConn(state, text) {
  const el = $("conn");
  el.dataset.state = state;
  el.textContent = text;
}

export function closeStream() {
  if (app.source) app.source.close();
  app.source = null;
}

export function openStream(path, handlers) {
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
        () => { setConn("reconnecting", "reconnecting…"); setTimeout(() => retry(), 2000); },
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
