// Starting an instance (#/start/<workflow>): a form generated from the newest version's
// input_schema - a control per property by its type, enum and format, its description
// under it, required ones marked - sent as the start's input. The API checks the input;
// each error it names by JSON pointer (/input/amount) is shown under its field, the rest
// above the form. One Idempotency-Key per filled-in form: a double click starts one
// instance; a refused start stores nothing, so the corrected form may reuse it.

import { api, newKey } from './api.js';
import { h, replace, problem, announce } from './dom.js';

export function mount(root, route, ctx) {
  const id = route.args[0] || '';
  const title = h('h1', {}, 'Start ', h('code', {}, id));
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading the workflow…'));
  root.append(h('div', { class: 'page-head' }, title,
    h('a', { href: `#/board?workflow=${encodeURIComponent(id)}` }, 'Back to its board')), body);
  let stopped = false;

  (async () => {
    try {
      const wf = await api(`/v1/workflows/${encodeURIComponent(id)}`);
      if (stopped) return;
      const def = wf.definition || {};
      replace(title, 'Start ', h('span', {}, def.title || id), ' ', h('code', { class: 'muted' }, `${id} v${wf.version}`));
      replace(body, startForm(id, def.input_schema || {}, ctx));
      const first = body.querySelector('input, select, textarea');
      if (first) first.focus();
    } catch (err) {
      if (!stopped) replace(body, problem(err, { onSignIn: ctx.signOut }));
    }
  })();
  return { unmount() { stopped = true; } };
}

/** The form for `schema` (an object schema), starting workflow `id`. */
export function startForm(id, schema, ctx) {
  let key = newKey();
  const props = schema.properties || {};
  const required = new Set(schema.required || []);
  const controls = Object.entries(props).map(([name, prop]) => control(name, prop || {}, required.has(name)));
  const summary = h('div', { class: 'form-problems' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Start');
  const form = h('form', { class: 'start-form', novalidate: true, dataset: { workflow: id } },
    summary,
    controls.length ? controls.map((c) => c.el)
      : h('p', { class: 'muted' }, 'This workflow takes no declared input; it starts with an empty object.'),
    h('p', {}, submit));
  // Editing the form makes it another request: a new key.
  form.addEventListener('input', () => { key = newKey(); });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (submit.disabled) return;
    for (const c of controls) c.showError(null);
    replace(summary);
    const input = {};
    const unreadable = [];
    for (const c of controls) {
      try {
        const v = c.value();
        if (v !== undefined) input[c.name] = v;
      } catch (err) {
        unreadable.push(c);
        c.showError(err.message);
      }
    }
    if (unreadable.length) { unreadable[0].focus(); return; }
    submit.disabled = true;
    try {
      const r = await api(`/v1/workflows/${encodeURIComponent(id)}/instances`, { method: 'POST', json: { input }, key });
      announce(`Started ${r.key || r.id}`);
      ctx.navigate(`#/instance/${encodeURIComponent(r.id)}`);
    } catch (err) {
      showProblem(err, controls, summary, ctx);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** The API's refusal: each located error under its field, the others above the form. */
function showProblem(err, controls, summary, ctx) {
  const byName = new Map(controls.map((c) => [c.name, c]));
  const loose = [];
  for (const e of err.errors || []) {
    const m = /^\/input\/([^/]+)/.exec(e.pointer || '');
    const name = m ? m[1].replace(/~1/g, '/').replace(/~0/g, '~') : null;
    if (name && byName.has(name)) byName.get(name).showError(e.message);
    else loose.push(e);
  }
  const located = (err.errors || []).length - loose.length;
  replace(summary, problem({ ...err, message: err.message, title: err.title, status: err.status, errors: loose }, { onSignIn: ctx.signOut }),
    located ? h('p', { class: 'muted' }, `${located} problem${located === 1 ? '' : 's'} shown at the field${located === 1 ? '' : 's'} below.`) : null);
  const firstBad = controls.find((c) => c.hasError());
  if (firstBad) firstBad.focus();
}

/** A labelled control for property `name`: {name, el, value(), showError(msg), hasError(), focus()}. */
function control(name, prop, isRequired) {
  const fieldId = `in-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const errId = `${fieldId}-error`;
  const helpId = `${fieldId}-help`;
  const type = Array.isArray(prop.type) ? prop.type.find((t) => t !== 'null') : prop.type;
  let input;
  let read;
  const common = { id: fieldId, name, 'aria-describedby': `${helpId} ${errId}`, 'aria-required': isRequired ? 'true' : false };
  if (Array.isArray(prop.enum)) {
    input = h('select', common,
      h('option', { value: '' }, isRequired ? 'Choose…' : '(none)'),
      prop.enum.map((v, i) => h('option', { value: String(i) }, typeof v === 'string' ? v : JSON.stringify(v))));
    read = () => (input.value === '' ? undefined : prop.enum[Number(input.value)]);
  } else if (type === 'boolean') {
    input = h('select', common, h('option', { value: '' }, '(none)'), h('option', { value: 'true' }, 'yes'), h('option', { value: 'false' }, 'no'));
    read = () => (input.value === '' ? undefined : input.value === 'true');
  } else if (type === 'integer' || type === 'number') {
    input = h('input', { ...common, type: 'text', inputmode: type === 'integer' ? 'numeric' : 'decimal' });
    read = () => {
      const t = input.value.trim();
      if (!t) return undefined;
      const n = Number(t);
      if (!Number.isFinite(n)) throw new Error(`“${t}” is not a number`);
      return n;
    };
  } else if (type === 'object' || type === 'array' || (!type && !prop.format)) {
    input = h('textarea', { ...common, rows: 3, placeholder: type === 'array' ? '[ ]' : type === 'object' ? '{ }' : 'JSON, or plain text' });
    read = () => {
      const t = input.value.trim();
      if (!t) return undefined;
      try { return JSON.parse(t); } catch (e) {
        if (type) throw new Error(`not JSON: ${e.message}`);
        return t;
      }
    };
  } else {
    const html = { date: 'date', 'date-time': 'datetime-local', email: 'email', uri: 'url', time: 'time' }[prop.format] || 'text';
    input = h('input', { ...common, type: html, maxlength: prop.maxLength || false, placeholder: prop.format && html === 'text' ? prop.format : false });
    read = () => {
      const t = input.value.trim();
      if (!t) return undefined;
      // datetime-local has no zone: the browser's, sent as UTC.
      if (html === 'datetime-local') return new Date(t).toISOString();
      return t;
    };
  }
  const error = h('p', { class: 'field-error', id: errId, role: 'alert', hidden: true });
  const help = h('p', { class: 'field-help muted', id: helpId },
    prop.description || '', prop.format ? ` (${prop.format})` : '');
  const el = h('div', { class: 'form-field', dataset: { field: name } },
    h('label', { for: fieldId }, h('strong', {}, prop.title || name), isRequired ? h('span', { class: 'req' }, ' (required)') : null),
    input, help, error);
  return {
    name,
    el,
    value: read,
    focus: () => input.focus(),
    hasError: () => !error.hidden,
    showError(msg) {
      error.hidden = !msg;
      error.textContent = msg || '';
      input.setAttribute('aria-invalid', msg ? 'true' : 'false');
      el.classList.toggle('has-error', Boolean(msg));
    },
  };
}
