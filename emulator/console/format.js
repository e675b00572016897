// Units and formatting of the instructor console: the control plane sends integers (nL, ng,
// ms); they become mL, mg and dates here, at the edge.

export const DAY = 86400000;
export const HOUR = 3600000;
export const MIN = 60000;

export const pad = (n, w = 2) => String(n).padStart(w, "0");
export function fmtDate(ms) { // the pump clock has no time zone: shown as it counts (UTC)
  if (ms === null || ms === undefined) return "–";
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}
export function fmtClock(ms) {
  const d = new Date(ms);
  return `${fmtDate(ms)}:${pad(d.getUTCSeconds())}`;
}
export const fmtMl = (nl) => `${(nl / 1e6).toFixed(2)} mL`;
export const fmtRate = (nl) => `${(nl / 1e6).toFixed(3)} mL/day`;
export function massUnit(state) {
  return state && state.status.conc_unit === "MCG_PER_ML" ? "mcg" : "mg";
}
export function fmtMass(ng, unit) {
  if (unit === "mcg") return `${+(ng / 1000).toFixed(3)} mcg`;
  return `${+(ng / 1e6).toFixed(4)} mg`;
}
export function fmtDuration(ms) {
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
export const words = (name) => (name ? name.toLowerCase().replace(/_/g, " ") : "–");
export const fmtSpeed = (f) => (f === 0 ? "paused" : `x${f.toLocaleString("en-US")}`);
