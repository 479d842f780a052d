// Building the DOM from nodes (never from HTML strings, so no data is ever markup), SLA
// badges that carry an icon and a word besides the colour, and time formatting.

import { serverNow } from './api.js';

/**
 * An element: h('a', {href: '#/x', class: 'card'}, 'text', child, [more]).
 * Attributes `on*` with a function become listeners; `false`/`null` attributes are left out.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element, with the same conventions as h(). */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

/** Appends children: nodes, strings (as text), arrays of them; null/false are skipped. */
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// Icons are drawn, not emoji: they look the same everywhere, fonts or not.
const ICONS = {
  ok: ['M4 8.5l2.5 2.5L12 5.5'],
  risk: ['M8 2.5l6 11H2z', 'M8 6.5v3.5', 'M8 11.6v.4'],
  breach: ['M5.5 2h5L14 5.5v5L10.5 14h-5L2 10.5v-5z', 'M6 6l4 4M10 6l-4 4'],
  fail: ['M3 3l10 10M13 3L3 13'],
  done: ['M3 8.5l3 3L13 4.5'],
  cancel: ['M8 2a6 6 0 1 0 .01 0z', 'M4 12L12 4'],
  clock: ['M8 2a6 6 0 1 0 .01 0z', 'M8 4.5V8l2.5 1.5'],
};

/** A small icon, hidden from screen readers (the text beside it says the same). */
export function icon(name) {
  return s('svg', { class: `icon icon-${name}`, viewBox: '0 0 16 16', 'aria-hidden': 'true', focusable: 'false' },
    (ICONS[name] || []).map((d) => s('path', { d })));
}

/**
 * What colour, icon and word an instance gets: red for breached or failed, yellow for at
 * risk, green for on time; completed and cancelled are grey.
 */
export function state(inst) {
  switch (inst.status) {
    case 'failed': return { cls: 'failed', icon: 'fail', label: 'Failed' };
    case 'completed': return { cls: 'done', icon: 'done', label: inst.outcome ? `Completed: ${inst.outcome}` : 'Completed' };
    case 'cancelled': return { cls: 'cancelled', icon: 'cancel', label: 'Cancelled' };
    default: break;
  }
  const sla = typeof inst.sla === 'object' && inst.sla ? inst.sla.state : inst.sla;
  switch (sla) {
    case 'breached': return { cls: 'breached', icon: 'breach', label: 'Breached' };
    case 'at_risk': return { cls: 'at_risk', icon: 'risk', label: 'At risk' };
    default: return { cls: 'on_time', icon: 'ok', label: 'On time' };
  }
}

export const SLA_LABELS = { on_time: 'On time', at_risk: 'At risk', breached: 'Breached' };
const SLA_ICONS = { on_time: 'ok', at_risk: 'risk', breached: 'breach' };

/** The badge of an instance: icon and word, coloured. */
export function badge(inst) {
  const st = state(inst);
  return h('span', { class: `badge st-${st.cls}` }, icon(st.icon), h('span', {}, st.label));
}

/** A badge for an SLA state name. */
export function slaBadge(sla, text) {
  return h('span', { class: `badge st-${sla}` }, icon(SLA_ICONS[sla] || 'ok'), h('span', {}, text || SLA_LABELS[sla] || sla));
}

/** "3d 4h", "2h 05m", "4m 09s", "12s". */
export function duration(ms) {
  const t = Math.max(0, Math.round(Math.abs(ms) / 1000));
  const d = Math.floor(t / 86400), hr = Math.floor((t % 86400) / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
  const p = (n) => String(n).padStart(2, '0');
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${p(m)}m`;
  if (m) return `${m}m ${p(sec)}s`;
  return `${sec}s`;
}

/** "in 4m 09s" or "3m 02s ago" for an RFC 3339 time, against the server's clock. */
export function relative(iso) {
  const ms = Date.parse(iso) - serverNow();
  return ms >= 0 ? `in ${duration(ms)}` : `${duration(ms)} ago`;
}

/** A <time> element with the local time, the relative time in its text when `rel`. */
export function time(iso, { rel = false } = {}) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  const abs = d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  return h('time', { datetime: iso, title: abs, dataset: rel ? { rel: '1' } : {} }, rel ? relative(iso) : abs);
}

/** A deadline: "due in 3m" or "overdue by 2m", kept current by tick(). */
export function deadline(iso) {
  if (!iso) return null;
  return h('span', { class: 'countdown', dataset: { due: iso } }, countdownText(iso));
}

function countdownText(iso) {
  const ms = Date.parse(iso) - serverNow();
  return ms >= 0 ? `due in ${duration(ms)}` : `overdue by ${duration(ms)}`;
}

/** Updates every countdown and relative time under `root` (call once a second). */
export function tick(root = document) {
  for (const el of root.querySelectorAll('time[data-rel]')) {
    const text = relative(el.getAttribute('datetime'));
    if (el.textContent !== text) el.textContent = text;
  }
  for (const el of root.querySelectorAll('.countdown[data-due]')) {
    const text = countdownText(el.dataset.due);
    if (el.textContent !== text) el.textContent = text;
    el.classList.toggle('overdue', Date.parse(el.dataset.due) < serverNow());
  }
}

/** Short form of an instance id for cards; the full id is in the title. */
export function shortId(id) {
  return id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id;
}

/**
 * An API error as the user should see it: 401 and 403 say so plainly, with what the API
 * said about roles; other problems show their detail and field errors.
 */
export function problem(err, { onSignIn } = {}) {
  const status = err.status || 0;
  let lead;
  if (status === 401) lead = 'Not signed in (401): the token is unknown or revoked.';
  else if (status === 403) lead = 'Not allowed (403) with this token.';
  else lead = err.title || 'Error';
  const box = h('div', { class: `problem problem-${status}`, role: 'alert' },
    h('p', { class: 'problem-title' }, h('strong', {}, lead)),
    err.message && err.message !== lead ? h('p', {}, err.message) : null,
    err.errors && err.errors.length
      ? h('ul', {}, err.errors.map((e) => h('li', {}, h('code', {}, e.pointer ?? e.parameter ?? ''), ' ', e.message)))
      : null);
  if (status === 401 && onSignIn) append(box, [h('p', {}, h('button', { type: 'button', onclick: onSignIn }, 'Sign in again'))]);
  return box;
}

/** Announces `text` to screen readers and shows it briefly. */
export function announce(text) {
  const el = document.getElementById('status');
  if (el) { el.textContent = ''; requestAnimationFrame(() => { el.textContent = text; }); }
}

/** Pretty JSON for display. */
export function pretty(v) {
  return JSON.stringify(v, null, 2);
}

/** A field value as people read it: times in local form, numbers grouped. */
export function fieldValue(v) {
  if (typeof v === 'number') return v.toLocaleString();
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v)) return new Date(v).toLocaleString();
  return String(v);
}

/**
 * The fields `names` of an instance, task or list item (which carry `fields` and
 * `titles`), as a small definition list; empty fields are left out.
 */
export function fieldList(item, names, cls = 'fields') {
  const fields = item.fields || {};
  const titles = item.titles || {};
  const shown = (names || []).filter((n) => fields[n] !== undefined);
  if (!shown.length) return null;
  return h('dl', { class: cls }, shown.map((n) => [
    h('dt', {}, titles[n] || n.replace(/_/g, ' ')),
    h('dd', { dataset: { field: n } }, fieldValue(fields[n]))]));
}
