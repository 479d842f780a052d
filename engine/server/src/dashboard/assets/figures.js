// Figures: per workflow, this month's numbers beside the previous month's, a small chart
// of each figure over the last 12 months, the month broken down by a keyword field, and
// the report as CSV. Everything comes from GET /v1/reports/{workflow} (rollups, not a
// walk of the instances). Months are the browser's time zone unless ?tz= names another.
//
// #/figures, #/figures/<workflow>?by=<field>&tz=<IANA zone>

import { api, serverNow, withQuery, session } from './api.js';
import { h, s, replace, problem, duration } from './dom.js';

const MONTHS = 12;

/** "2026-11" of now in `tz`, and the month `back` months before it. */
function month(tz, back = 0) {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit' })
    .formatToParts(new Date(serverNow()));
  const y = Number(parts.find((p) => p.type === 'year').value);
  const m = Number(parts.find((p) => p.type === 'month').value) - 1 - back;
  const d = new Date(Date.UTC(y, m, 1));
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

const hours = (sec) => (sec === undefined || sec === null ? null : duration(sec * 1000));
const percent = (r) => (r === undefined || r === null ? null : `${(r * 100).toFixed(1)} %`);
const count = (n) => (n === undefined || n === null ? null : String(n));
const number = (n) => (n === undefined || n === null ? null : String(Math.round(n * 100) / 100));

/** The figures shown, from the rows seen: [{label, get(row) -> number, show(number)}]. */
function figures(rows) {
  const out = [
    { label: 'Started', get: (r) => r.started, show: count },
    { label: 'Ended', get: (r) => Object.values(r.ended).reduce((a, b) => a + b, 0), show: count },
    { label: 'Still running (of those started)', get: (r) => r.running, show: count },
    { label: 'Cycle time, mean', get: (r) => r.cycle.mean, show: hours },
    { label: 'Cycle time, p90', get: (r) => r.cycle.p90, show: hours },
  ];
  const seen = (pick) => [...new Set(rows.flatMap((r) => Object.keys(pick(r))))].sort();
  for (const status of seen((r) => r.ended)) {
    out.push({ label: `Ended ${status}`, get: (r) => r.ended[status] || 0, show: count });
  }
  for (const tag of seen((r) => r.tags)) {
    out.push({ label: `Tagged ${tag}`, get: (r) => (r.tags[tag] ? r.tags[tag].rate : 0), show: percent });
  }
  for (const field of seen((r) => r.numbers)) {
    out.push({ label: `${field}, mean`, get: (r) => (r.numbers[field] ? r.numbers[field].mean : null), show: number });
  }
  for (const stage of (rows[0] ? rows[0].stages : []).map((x) => x.name)) {
    const of = (r) => r.stages.find((x) => x.name === stage);
    out.push({ label: `${stage}: response, mean`, get: (r) => of(r).response.mean, show: hours });
    out.push({ label: `${stage}: time in stage, mean`, get: (r) => of(r).time.mean, show: hours });
    out.push({ label: `${stage}: breached`, get: (r) => of(r).breached, show: count });
  }
  return out;
}

/** Bars of `values` (null: no bar), the last one marked, with a text alternative. */
function chart(label, values, periods, show) {
  const w = 12 * values.length, ht = 36;
  const max = Math.max(0, ...values.filter((v) => v !== null && v !== undefined));
  const desc = values.map((v, i) => `${periods[i]}: ${show(v) ?? 'none'}`).join('; ');
  return s('svg', { class: 'spark', viewBox: `0 0 ${w} ${ht}`, width: w, height: ht, role: 'img', 'aria-label': `${label} over ${values.length} months: ${desc}` },
    values.map((v, i) => {
      const bh = max > 0 && v ? Math.max(1, (v / max) * (ht - 2)) : 0;
      return s('rect', { x: i * 12 + 1, y: ht - bh, width: 10, height: bh, class: i === values.length - 1 ? 'now' : '' },
        s('title', {}, `${periods[i]}: ${show(v) ?? 'none'}`));
    }));
}

export function mount(root, route, ctx) {
  const tz = route.params.get('tz') || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  const workflow = route.args[0] || '';
  const by = route.params.get('by') || '';
  const error = h('div');
  const pick = h('select', { id: 'figures-workflow', 'aria-label': 'Workflow' });
  const body = h('div', { id: 'figures-body' });
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Figures'), pick),
    h('p', { class: 'help' }, `Months in ${tz}. Counts are exact; p90 is within 1 %.`), error, body);
  pick.addEventListener('change', () => ctx.navigate(withQuery(`#/figures/${encodeURIComponent(pick.value)}`, { tz: route.params.get('tz') })));

  const reportPath = (params) => withQuery(`/v1/reports/${encodeURIComponent(workflow)}`, { period: 'month', tz, ...params });

  async function load() {
    try {
      const { items } = await api('/v1/workflows');
      replace(pick, h('option', { value: '' }, 'Choose a workflow'), items.map((w) => h('option', { value: w.id, selected: w.id === workflow }, w.title || w.id)));
      if (!workflow) return;
      const [report, stats] = await Promise.all([
        api(reportPath({ from: month(tz, MONTHS - 1), to: month(tz) })),
        api(`/v1/stats/${encodeURIComponent(workflow)}`),
      ]);
      replace(error);
      replace(body, overview(report.rows), await breakdown(stats.fields || []), download());
    } catch (err) {
      replace(error, problem(err, { onSignIn: ctx.signOut }));
    }
  }

  function overview(rows) {
    const periods = rows.map((r) => r.period);
    const [now, before] = [rows[rows.length - 1], rows[rows.length - 2]];
    return h('section', { 'aria-labelledby': 'h-month' }, h('h2', { id: 'h-month' }, `${now.period} and ${before.period}`),
      h('table', { class: 'list figures' },
        h('thead', {}, h('tr', {}, ['Figure', now.period, before.period, `Last ${MONTHS} months`].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, figures(rows).map((f) => {
          const values = rows.map(f.get);
          return h('tr', { dataset: { figure: f.label } },
            h('th', { scope: 'row' }, f.label),
            h('td', { class: 'now', 'data-label': now.period }, f.show(f.get(now)) ?? '–'),
            h('td', { class: 'before', 'data-label': before.period }, f.show(f.get(before)) ?? '–'),
            h('td', {}, chart(f.label, values, periods, f.show)));
        }))));
  }

  async function breakdown(fields) {
    const keywords = fields.filter((f) => f.type === 'keyword');
    const section = h('section', { 'aria-labelledby': 'h-by' }, h('h2', { id: 'h-by' }, 'This month by field'));
    if (!keywords.length) return append(section, h('p', { class: 'muted' }, 'The workflow has no keyword fields to break the figures down by.'));
    const select = h('select', { id: 'figures-by', 'aria-label': 'Break down by' },
      h('option', { value: '' }, 'Choose a field'),
      keywords.map((f) => h('option', { value: f.name, selected: f.name === by }, f.title || f.name)));
    select.addEventListener('change', () => ctx.navigate(withQuery(`#/figures/${encodeURIComponent(workflow)}`, { by: select.value, tz: route.params.get('tz') })));
    section.append(select);
    if (!by) return section;
    const { rows } = await api(reportPath({ from: month(tz), by: `field.${by}` }));
    section.append(h('table', { class: 'list breakdown' },
      h('thead', {}, h('tr', {}, [by, 'Started', 'Ended', 'Still running', 'Cycle time, mean'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows.map((r) => h('tr', { dataset: { group: r.group } },
        h('th', { scope: 'row' }, r.group),
        h('td', { 'data-label': 'Started' }, String(r.started)),
        h('td', { 'data-label': 'Ended' }, String(Object.values(r.ended).reduce((a, b) => a + b, 0))),
        h('td', { 'data-label': 'Still running' }, String(r.running)),
        h('td', { 'data-label': 'Cycle time, mean' }, hours(r.cycle.mean) ?? '–'))))));
    return section;
  }

  function download() {
    const button = h('button', { type: 'button', id: 'figures-csv' }, `Download ${MONTHS} months as CSV`);
    button.addEventListener('click', async () => {
      // A plain link cannot carry the bearer token: fetch, then save the answer.
      const res = await fetch(reportPath({ from: month(tz, MONTHS - 1), to: month(tz) }), {
        headers: { accept: 'text/csv', authorization: `Bearer ${session.token}` },
      });
      const link = h('a', { href: URL.createObjectURL(await res.blob()), download: `${workflow}-figures.csv` });
      document.body.append(link);
      link.click();
      link.remove();
    });
    return h('p', {}, button);
  }

  load();
  return {};
}

function append(el, ...children) {
  el.append(...children);
  return el;
}
