// The bearer token and the control plane's ordinary routes, as the instructor console calls
// them. The token is taken from the URL fragment (#token=...), kept in sessionStorage and
// removed from the address bar.

import { app } from "./app.js";

export const TOKEN_KEY = "itp-console-token";

export function takeToken() {
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

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function api(method, path, body) {
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
