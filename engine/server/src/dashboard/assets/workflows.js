// Workflows: the list with versions, each definition and its graph, and an upload form that
// shows every validation error next to the line its JSON pointer points at.

import { api, ApiError } from './api.js';
import { h, replace, time, problem, pretty, announce } from './dom.js';
import { graph } from './graph.js';
import { pointerLines, lineOf } from './jsonmap.js';

export function mount(root, route, ctx) {
  const error = h('div');
  const table = h('div');
  const editor = h('textarea', {
    id: 'definition', rows: 18, spellcheck: 'false', autocomplete: 'off', wrap: 'off',
    'aria-describedby': 'definition-help', placeholder: '{ "id": "my-workflow", "title": "...", "start": "...", "stages": { ... } }',
  });
  const file = h('input', { id: 'definition-file', type: 'file', accept: '.json,application/json' });
  const result = h('div', { class: 'upload-result', id: 'definition-result' });
  const checkButton = h('button', { type: 'button', class: 'check', onclick: () => submit(false) }, 'Check');
  const uploadButton = h('button', { type: 'submit', class: 'primary' }, 'Upload');

  file.addEventListener('change', async () => {
    const f = file.files && file.files[0];
    if (f) { editor.value = await f.text(); replace(result); }
  });

  const form = h('form', { class: 'upload', 'aria-labelledby': 'h-upload' },
    h('h2', { id: 'h-upload' }, 'Upload a definition'),
    h('p', { id: 'definition-help', class: 'help' },
      'Paste a workflow definition or choose a file. Upload stores it as the workflow’s next version (administrators only); Check only validates (administrators, operators and developers), listing every problem at once. The format: schemas/README.md in the repository.'),
    h('label', { for: 'definition-file' }, 'From a file'), file,
    h('label', { for: 'definition' }, 'Definition (JSON)'), editor,
    h('div', { class: 'actions' }, uploadButton, checkButton),
    result);
  form.addEventListener('submit', (e) => { e.preventDefault(); submit(true); });

  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Workflows')), error,
    h('section', { 'aria-labelledby': 'h-list' }, h('h2', { id: 'h-list' }, 'Definitions'), table),
    form);

  async function load() {
    try {
      const { items } = await api('/v1/workflows');
      replace(error);
      replace(table, items.length
        ? h('table', { class: 'list' },
          h('thead', {}, h('tr', {}, ['Workflow', 'Id', 'Newest version', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, items.map((w) => row(w))))
        : h('p', { class: 'muted' }, 'No workflows yet: upload one below.'));
    } catch (err) {
      replace(error, problem(err, { onSignIn: ctx.signOut }));
    }
  }

  function row(w) {
    const detail = h('tr', { class: 'detail-row', hidden: true }, h('td', { colspan: 4 }));
    const toggle = h('button', { type: 'button', 'aria-expanded': 'false' }, 'Definition');
    toggle.addEventListener('click', async () => {
      const open = toggle.getAttribute('aria-expanded') !== 'true';
      toggle.setAttribute('aria-expanded', String(open));
      detail.hidden = !open;
      if (open) await showVersion(detail.firstChild, w, w.version);
    });
    const tr = h('tr', { dataset: { workflow: w.id } },
      h('td', {}, w.title || w.id),
      h('td', {}, h('code', {}, w.id)),
      h('td', {}, `v${w.version}`),
      h('td', { class: 'row-actions' }, toggle, ' ', h('a', { href: `#/board?workflow=${encodeURIComponent(w.id)}` }, 'Board')));
    return [tr, detail];
  }

  async function showVersion(cell, w, version) {
    replace(cell, h('p', { class: 'muted' }, 'Loading…'));
    try {
      const d = await api(`/v1/workflows/${encodeURIComponent(w.id)}/versions/${version}`);
      const select = h('select', { 'aria-label': `Version of ${w.id}` },
        Array.from({ length: w.version }, (_, i) => w.version - i).map((v) => h('option', { value: v, selected: v === version }, `version ${v}${v === w.version ? ' (newest)' : ''}`)));
      select.addEventListener('change', () => showVersion(cell, w, Number(select.value)));
      const edit = h('button', {
        type: 'button',
        onclick: () => { editor.value = `${pretty(d.definition)}\n`; replace(result); editor.focus(); editor.scrollIntoView({ block: 'center' }); },
      }, 'Edit as a new version');
      replace(cell,
        h('p', {}, select, ` stored `, time(d.stored_at), ' ', edit),
        h('div', { class: 'graph-wrap', tabindex: '0', role: 'region', 'aria-label': `Graph of ${w.id}` }, graph(d.definition)),
        h('details', {}, h('summary', {}, 'JSON'), h('pre', {}, pretty(d.definition))));
    } catch (err) {
      replace(cell, problem(err, { onSignIn: ctx.signOut }));
    }
  }

  async function submit(store) {
    const text = editor.value;
    if (!text.trim()) { replace(result, h('p', { class: 'error', role: 'alert' }, 'Paste a definition or choose a file first.')); return; }
    let parsed;
    try { parsed = JSON.parse(text); } catch { parsed = undefined; }
    const id = parsed && typeof parsed === 'object' && typeof parsed.id === 'string' && parsed.id ? parsed.id : null;
    checkButton.disabled = true;
    uploadButton.disabled = true;
    replace(result, h('p', { class: 'muted' }, store ? 'Uploading…' : 'Checking…'));
    try {
      // Without an id (or with malformed JSON) there is no URL to upload to: validation
      // reports what is wrong, with lines and pointers.
      if (store && id) {
        const r = await api(`/v1/workflows/${encodeURIComponent(id)}`, { method: 'PUT', body: text, type: 'application/json' });
        const msg = r.created ? `Stored ${r.id} as version ${r.version}.` : `Unchanged: ${r.id} version ${r.version} is the same definition.`;
        replace(result, h('p', { class: 'ok', role: 'status' }, msg));
        announce(msg);
        load();
      } else {
        const r = await api('/v1/workflows/validate', { method: 'POST', body: text, type: 'application/json' });
        const msg = `Valid: ${r.id} with ${r.stages.length} stages${store ? ', but it has no id to store it under' : ''}.`;
        replace(result, h('p', { class: 'ok', role: 'status' }, msg));
        announce(msg);
      }
    } catch (err) {
      if (err instanceof ApiError && err.errors.length && (err.status === 422 || err.status === 400)) {
        replace(result, annotated(text, err));
        // Show the first error in the listing, and put focus on the list of errors.
        const wrap = result.querySelector('.source-wrap');
        const firstError = result.querySelector('.src-error');
        if (wrap && firstError) wrap.scrollTop = Math.max(0, firstError.offsetTop - 80);
        // The list of every error, brought into view (it sits below the editor).
        const list = result.querySelector('.problems');
        if (list) list.scrollIntoView({ block: 'start' });
        const first = result.querySelector('.problems button');
        if (first) first.focus({ preventScroll: true });
      } else {
        replace(result, problem(err, { onSignIn: ctx.signOut }));
      }
    } finally {
      checkButton.disabled = false;
      uploadButton.disabled = false;
    }
  }

  /** The errors listed, then the source with each error under the line it points at. */
  function annotated(text, err) {
    const lines = text.split('\n');
    const map = pointerLines(text);
    const byLine = new Map();
    const located = err.errors.map((e, n) => {
      const where = e.line ? { line: e.line, exact: true } : lineOf(map, e.pointer || '');
      const entry = { ...e, n, line: Math.min(Math.max(1, where.line), lines.length), exact: where.exact };
      if (!byLine.has(entry.line)) byLine.set(entry.line, []);
      byLine.get(entry.line).push(entry);
      return entry;
    });
    const source = h('ol', { class: 'source', 'aria-label': 'The definition with its errors' });
    lines.forEach((text, i) => {
      const ln = i + 1;
      const errs = byLine.get(ln) || [];
      source.append(h('li', { class: errs.length ? 'src-line has-error' : 'src-line', dataset: { line: ln }, id: errs.length ? `src-line-${ln}` : false },
        h('span', { class: 'ln', 'aria-hidden': 'true' }, String(ln)), h('code', {}, text || ' ')));
      for (const e of errs) {
        source.append(h('li', { class: 'src-error', dataset: { line: ln, pointer: e.pointer || '' }, id: `src-error-${e.n}` },
          h('span', { class: 'ln', 'aria-hidden': 'true' }, '!'),
          h('span', {}, h('strong', {}, `Line ${ln}: `), e.message, ' ',
            e.pointer ? h('code', { class: 'pointer' }, e.pointer) : null,
            e.column ? ` (column ${e.column})` : '',
            !e.exact && e.pointer ? h('span', { class: 'muted' }, ' — reported at the enclosing member') : null)));
      }
    });
    const jump = (e) => {
      const target = document.getElementById(`src-error-${e.n}`);
      if (target) target.scrollIntoView({ block: 'center' });
      const offset = lines.slice(0, e.line - 1).reduce((a, l) => a + l.length + 1, 0);
      editor.focus();
      editor.setSelectionRange(offset, offset + (lines[e.line - 1] || '').length);
    };
    return h('div', { class: 'problems-box' },
      h('div', { class: 'problems', role: 'alert' },
        h('p', {}, h('strong', {}, `${err.title}: `), err.message),
        h('ul', {}, located.map((e) => h('li', {},
          h('button', { type: 'button', class: 'linklike', onclick: () => jump(e) }, `Line ${e.line}`), ' ',
          e.pointer ? h('code', {}, e.pointer) : null, ' ', e.message)))),
      h('div', { class: 'source-wrap', tabindex: '0', role: 'region', 'aria-label': 'Definition with errors' }, source));
  }

  load();
  return null;
}
