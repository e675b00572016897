// Small DOM helpers of the instructor console (textContent only: nothing is parsed as HTML).

export const $ = (id) => document.getElementById(id);

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVGNS = "http://www.w3.org/2000/svg";
export function s(tag, attrs, text) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  if (text !== undefined) el.textContent = text;
  return el;
}

export function setText(id, text, value) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text; // unchanged text: no DOM mutation
  if (value !== undefined) el.dataset.value = value === null ? "" : String(value);
}

// Screen readers hear an alarm when it changes, not every push.
let announced = "";
export function announce(text) {
  if (text !== announced) {
    announced = text;
    $("alarm-announce").textContent = text;
  }
}
