// Search: "where is order 202405-001?" One box in the header of every page; this page asks
// each workflow's indexes for the text as a business key and as a value of its fields
// (word prefixes for text fields, exact for keyword fields, equal for number fields), and
// shows the instances found as board cards.

import { api, withQuery } from './api.js';
import { h, replace, problem } from './dom.js';
import { card } from './board.js';

const PER_QUERY = 50;

/** The API queries that look for `q` in workflow `w` (with its declared key and fields). */
function queriesFor(w, stats, q) {
  const out = [];
  if (stats.key) out.push({ workflow: w.id, key: q });
  for (const f of stats.fields || []) {
    if (f.type === 'text' || f.type === 'keyword') out.push({ workflow: w.id, [`field.${f.name}`]: q });
    else if (f.type === 'number' && q.trim() !== '' && Number.isFinite(Number(q))) out.push({ workflow: w.id, [`field.${f.name}`]: q });
  }
  return out;
}

export function mount(root, route, ctx) {
  const q = (route.params.get('q') || '').trim();
  const summary = h('p', { class: 'summary', role: 'status' });
  const results = h('ul', { class: 'cards search-results', 'aria-label': 'Search results' });
  const error = h('div');
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Search')),
    h('p', { class: 'help' }, 'By business key (an order number) or by a field value: a customer name (any word, or its beginning), a tier, a category, an amount.'),
    error, summary, results);
  const input = document.getElementById('q');
  if (input && input !== document.activeElement) input.value = q;
  if (!q) {
    replace(summary, 'Type an order number, a customer or another field value in the search box above.');
    return null;
  }
  const controller = new AbortController();
  (async () => {
    try {
      replace(summary, `Searching for “${q}”…`);
      const { items: workflows } = await api('/v1/workflows', { signal: controller.signal });
      const stats = await Promise.all(workflows.map((w) => api(`/v1/stats/${encodeURIComponent(w.id)}`, { signal: controller.signal })));
      const queries = workflows.flatMap((w, i) => queriesFor(w, stats[i], q));
      const pages = await Promise.all(queries.map((query) =>
        api(withQuery('/v1/instances', { ...query, limit: PER_QUERY }), { signal: controller.signal })
          .catch((e) => (e.status === 400 ? { items: [] } : Promise.reject(e)))));
      const seen = new Set();
      const found = pages.flatMap((p) => p.items).filter((i) => (seen.has(i.id) ? false : (seen.add(i.id), true)));
      // Running first, then the newest.
      found.sort((a, b) => (a.status === 'running' ? 0 : 1) - (b.status === 'running' ? 0 : 1) || (b.started_at > a.started_at ? 1 : -1));
      replace(summary, found.length
        ? `${found.length} instance${found.length === 1 ? '' : 's'} match “${q}”.`
        : `Nothing matches “${q}”.`);
      replace(results, found.map((inst) => h('li', {}, card(inst))));
    } catch (err) {
      if (err.name === 'AbortError') return;
      replace(summary);
      replace(error, problem(err, { onSignIn: ctx.signOut }));
    }
  })();
  return { unmount: () => controller.abort() };
}
