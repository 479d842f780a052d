// Plugins: the registry with versions, worlds and digests, and an upload of a component
// (`PUT /v1/plugins/{name}`, application/wasm; developers only).

import { api } from './api.js';
import { h, replace, time, problem, announce } from './dom.js';

const NAME = '^[a-z0-9][a-z0-9-]*$';

export function mount(root, route, ctx) {
  const error = h('div');
  const table = h('div');
  const name = h('input', { id: 'plugin-name', type: 'text', required: true, pattern: NAME, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'plugin-help' });
  const file = h('input', { id: 'plugin-file', type: 'file', accept: '.wasm,application/wasm', required: true });
  const result = h('div', { class: 'upload-result' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Upload');
  file.addEventListener('change', () => {
    const f = file.files && file.files[0];
    if (f && !name.value) name.value = f.name.replace(/\.wasm$/, '').toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  });
  const form = h('form', { class: 'upload', 'aria-labelledby': 'h-plugin-upload', novalidate: true },
    h('h2', { id: 'h-plugin-upload' }, 'Upload a plugin'),
    h('p', { id: 'plugin-help', class: 'help' },
      'A WebAssembly component implementing a world of plugins/wit (scorer, notifier). Uploading new bytes under a name makes its next version; the same bytes again change nothing.'),
    h('label', { for: 'plugin-file' }, 'Component (.wasm)'), file,
    h('label', { for: 'plugin-name' }, 'Name (lower case, digits and dashes)'), name,
    h('div', { class: 'actions' }, button),
    result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = file.files && file.files[0];
    if (!f) { replace(result, h('p', { class: 'error', role: 'alert' }, 'Choose a .wasm file.')); file.focus(); return; }
    if (!new RegExp(NAME).test(name.value)) { replace(result, h('p', { class: 'error', role: 'alert' }, 'The name may hold lower-case letters, digits and dashes.')); name.focus(); return; }
    button.disabled = true;
    replace(result, h('p', { class: 'muted' }, 'Uploading…'));
    try {
      const r = await api(`/v1/plugins/${encodeURIComponent(name.value)}`, { method: 'PUT', body: f, type: 'application/wasm' });
      const msg = r.created === false
        ? `Unchanged: these bytes are already ${r.name} version ${r.version}.`
        : `Stored ${r.name} version ${r.version} (${r.world}).`;
      replace(result, h('p', { class: 'ok', role: 'status' }, msg, ' ', h('code', {}, r.digest || '')));
      announce(msg);
      load();
    } catch (err) {
      replace(result, problem(err, { onSignIn: ctx.signOut }));
    } finally {
      button.disabled = false;
    }
  });

  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Plugins')), error,
    h('section', { 'aria-labelledby': 'h-plugins' }, h('h2', { id: 'h-plugins' }, 'Registered plugins'), table),
    form);

  async function load() {
    try {
      const { items } = await api('/v1/plugins');
      replace(error);
      replace(table, items.length
        ? h('table', { class: 'list' },
          h('thead', {}, h('tr', {}, ['Plugin', 'Newest version', 'World', 'Digest', 'Size', 'Added', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, items.map(row)))
        : h('p', { class: 'muted' }, 'No plugins yet.'));
    } catch (err) {
      if (err.status === 404) replace(error, h('p', { class: 'muted' }, 'This server has no plugin registry (GET /v1/plugins answered 404).'));
      else replace(error, problem(err, { onSignIn: ctx.signOut }));
    }
  }

  function row(p) {
    const detail = h('tr', { class: 'detail-row', hidden: true }, h('td', { colspan: 7 }));
    const toggle = h('button', { type: 'button', 'aria-expanded': 'false' }, `Versions (${p.versions || 1})`);
    toggle.addEventListener('click', async () => {
      const open = toggle.getAttribute('aria-expanded') !== 'true';
      toggle.setAttribute('aria-expanded', String(open));
      detail.hidden = !open;
      if (!open) return;
      const cell = detail.firstChild;
      replace(cell, h('p', { class: 'muted' }, 'Loading…'));
      try {
        const d = await api(`/v1/plugins/${encodeURIComponent(p.name)}`);
        replace(cell, h('ul', { class: 'plain' }, (d.versions || []).map((v) => h('li', {},
          h('strong', {}, `version ${v.version}`), ` · ${v.world} · `, h('code', { class: 'digest' }, v.pinned || v.digest), ' · ', size(v.size), ' · ', time(v.added_at)))),
        d.limits ? h('details', {}, h('summary', {}, 'Sandbox limits'), h('pre', {}, JSON.stringify(d.limits, null, 2))) : null);
      } catch (err) {
        replace(cell, problem(err, { onSignIn: ctx.signOut }));
      }
    });
    return [h('tr', { dataset: { plugin: p.name } },
      h('td', {}, h('code', {}, p.name)),
      h('td', {}, `v${p.version}`),
      h('td', {}, p.world),
      h('td', {}, h('code', { class: 'digest', title: p.digest }, String(p.digest || '').slice(0, 19))),
      h('td', {}, size(p.size)),
      h('td', {}, time(p.added_at)),
      h('td', {}, toggle)), detail];
  }

  load();
  return null;
}

function size(n) {
  if (typeof n !== 'number') return '';
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
}
