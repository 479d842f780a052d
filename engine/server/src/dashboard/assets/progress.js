// The customer's progress page (/p/<link>): no token, no sign-in, nothing from the
// operators' dashboard. It reads GET /progress/<link>, which answers only what the
// workflow marks customer-visible (step titles, and the key and fields it names), and
// reads it again every 30 s.

const token = decodeURIComponent(location.pathname.replace(/^\/p\//, ''));
const root = document.getElementById('progress');
const title = document.getElementById('progress-title');

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

const STATUS = { in_progress: 'In progress', completed: 'Completed', cancelled: 'Cancelled', on_hold: 'On hold: we are looking into it' };

function render(p) {
  title.textContent = p.title;
  document.title = p.title;
  const facts = el('dl', { class: 'kv' },
    el('dt', {}, 'Status'), el('dd', { class: 'progress-status', dataset: { status: p.status } }, STATUS[p.status] || p.status),
    p.key ? [el('dt', {}, 'Reference'), el('dd', { class: 'progress-key' }, p.key)] : null,
    p.step ? [el('dt', {}, 'Now'), el('dd', { class: 'progress-step' }, p.step)] : null,
    (p.fields || []).map((f) => [el('dt', {}, f.title), el('dd', { class: 'progress-field' }, typeof f.value === 'string' ? f.value : JSON.stringify(f.value))]));
  const steps = el('ol', { class: 'progress-steps' }, p.steps.map((s) => el('li', { class: s.state, dataset: { state: s.state } },
    s.title, s.state === 'current' ? ' (now)' : s.state === 'done' ? ' ✓' : '')));
  root.replaceChildren(facts, el('h2', {}, 'Steps'), steps);
}

async function load() {
  try {
    const res = await fetch(`/progress/${encodeURIComponent(token)}`, { cache: 'no-store', headers: { accept: 'application/json' } });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      root.replaceChildren(el('p', { class: 'problem', role: 'alert' }, res.status === 410
        ? 'This link has expired.'
        : 'This link does not work. It may have been replaced by a newer one.'));
      return false;
    }
    render(body);
    return true;
  } catch {
    root.replaceChildren(el('p', { class: 'problem', role: 'alert' }, 'The page could not be loaded. Try again in a moment.'));
    return true;
  }
}

load().then((again) => { if (again) setInterval(load, 30000); });
