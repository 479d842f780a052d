// Sign-in: the user pastes an API token. It is checked against the API (a 401 is shown as
// such) and kept in this tab's sessionStorage only.

import { api, session, ApiError } from './api.js';
import { h, problem, replace } from './dom.js';

/** Where a token can go first: the board for operators, the inbox for approvers, ... */
async function landing() {
  const probes = [
    ['#/board', '/v1/instances?limit=1'],
    ['#/inbox', '/v1/approvals'],
    ['#/workflows', '/v1/workflows'],
    ['#/plugins', '/v1/plugins'],
  ];
  const results = await Promise.allSettled(probes.map(([, path]) => api(path)));
  const ok = probes.filter((_, i) => results[i].status === 'fulfilled').map(([hash]) => hash);
  const refused = results.find((r) => r.status === 'rejected' && r.reason instanceof ApiError && r.reason.status === 401);
  if (!ok.length && refused) throw refused.reason;
  if (!ok.length) {
    const firstError = results.find((r) => r.status === 'rejected');
    throw firstError ? firstError.reason : new Error('no page answered');
  }
  return ok[0];
}

export function mount(root, { params }) {
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', required: true, autocomplete: 'off',
    spellcheck: 'false', 'aria-describedby': 'token-help',
  });
  const out = h('div', { class: 'signin-out' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'signin card-box', novalidate: true },
    h('h1', {}, 'Sign in to Waystation'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { id: 'token-help', class: 'help' },
      'Paste a token an administrator made for you (POST /v1/tokens; a fresh server prints its admin token once). ',
      'It stays in this browser tab only, and the dashboard can do exactly what the token may do in the API.'),
    button,
    out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) {
      replace(out, h('p', { class: 'error', role: 'alert' }, 'Paste a token first.'));
      input.focus();
      return;
    }
    button.disabled = true;
    replace(out, h('p', { class: 'muted' }, 'Checking the token…'));
    session.set(token);
    try {
      const first = await landing();
      const next = params.get('next');
      location.hash = next && next.startsWith('#/') && !next.startsWith('#/signin') ? next : first;
    } catch (err) {
      session.clear();
      replace(out, err instanceof ApiError ? problem(err) : h('p', { class: 'error', role: 'alert' }, String(err.message || err)));
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  root.append(form);
  input.focus();
  return null;
}
