// The board: instances by workflow and stage, coloured by SLA state, with counts per
// column, filters and the playbooks' one-click views. It never fetches all instances:
// counts come from /v1/stats, cards from small pages of indexed queries.

import { api, withQuery, serverNow } from './api.js';
import { h, append, replace, badge, slaBadge, icon, deadline, time, shortId, problem, announce, fieldList } from './dom.js';
import { poll } from './poll.js';
import { drive } from './live.js';
import { branchChips } from './branches.js';

const REFRESH_MS = 5000;
const PER_COLUMN = 30; // cards per stage column on the stage board
const ATTENTION = 200; // breached / at-risk / failed instances fetched per query
const LIST_PAGE = 100; // instances per page when filtered

/** The one-click views: presets of the filters, each answered by one indexed query. */
const VIEWS = {
  stale: { label: 'No update for 24 hours', help: 'Running instances no person or outside system has acted on for a day (the engine\'s own SLA changes do not count).', filters: { idle: '24', status: 'running' } },
  near: { label: 'Deadline near, work not started', help: 'At risk or breached, and no event or decision accepted in the current stage (nor the one that led into it).', filters: { sla: 'at_risk,breached', untouched: 'true' } },
  breached: { label: 'Breached at any point', help: 'Instances that missed a stage deadline, even if they moved on since.', filters: { breached: 'true' } },
  special: { label: 'Tagged special-approval', help: 'Temporary fixes run under special approval, for audit.', filters: { tag: 'special-approval' } },
};

// The card last opened from the board, focused again when Back returns to it.
const LAST_OPENED = 'waystation.board.opened';

const FILTERS = ['sla', 'status', 'tag', 'idle', 'untouched', 'stage', 'breached'];

function readState(params) {
  const st = { workflow: params.get('workflow') || '', view: params.get('view') || '' };
  for (const f of FILTERS) st[f] = params.get(f) || '';
  return st;
}

function writeState(st) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(st)) if (v) q.set(k, v);
  const s = q.toString();
  history.replaceState(null, '', s ? `#/board?${s}` : '#/board');
}

const filtered = (st) => FILTERS.some((f) => st[f]);

/** The API query for the filters of `st`. */
function queryOf(st) {
  return {
    workflow: st.workflow,
    stage: st.workflow ? st.stage : '',
    sla: st.sla,
    status: st.status,
    tag: st.tag,
    untouched: st.untouched,
    breached: st.breached,
    // "No update": nobody acted; the engine's SLA bookkeeping is not an update.
    acted_before: st.idle ? new Date(serverNow() - Number(st.idle) * 3600e3).toISOString() : '',
  };
}

/** Stage names of a definition in its own order, end stages last. */
function stageOrder(def) {
  const names = Object.keys(def.stages || {});
  const ends = names.filter((n) => def.stages[n].kind === 'end');
  return names.filter((n) => def.stages[n].kind !== 'end').concat(ends);
}

export function mount(root, route, ctx) {
  const st = readState(route.params);
  if (st.view && VIEWS[st.view]) Object.assign(st, VIEWS[st.view].filters);
  const defs = new Map(); // "id@version" -> definition
  let workflows = [];
  let listPages = 1;
  let lastSignature = '';

  const tiles = h('ul', { class: 'tiles', 'aria-label': 'Workflows' });
  const views = h('div', { class: 'views', role: 'group', 'aria-label': 'Views' });
  const form = filtersForm();
  const summary = h('p', { class: 'summary' });
  const columns = h('div', { class: 'columns', 'aria-label': 'Board columns' });
  const more = h('div', { class: 'more' });
  const error = h('div');
  columns.addEventListener('keydown', arrowKeys);

  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Board'),
      h('p', { class: 'legend', 'aria-label': 'Legend' },
        slaBadge('on_time'), slaBadge('at_risk'), slaBadge('breached'),
        h('span', { class: 'badge st-failed' }, icon('fail'), h('span', {}, 'Failed')))),
    h('nav', { 'aria-label': 'Workflows' }, tiles),
    h('section', { class: 'controls', 'aria-label': 'Views and filters' }, views, form),
    error, summary, columns, more);

  function setState(changes, { resetView = true } = {}) {
    Object.assign(st, changes);
    if (resetView) st.view = '';
    if (!st.workflow) st.stage = '';
    listPages = 1;
    writeState(st);
    syncControls();
    lastSignature = '';
    restream();
    poller.now();
  }

  // Views: toggle buttons; a pressed view is a preset of the filters.
  function renderViews() {
    replace(views, h('span', { class: 'views-label' }, 'Views:'),
      Object.entries(VIEWS).map(([name, v]) => h('button', {
        type: 'button', class: 'view', 'aria-pressed': String(st.view === name), title: v.help,
        dataset: { view: name },
        onclick: () => {
          const on = st.view !== name;
          const cleared = Object.fromEntries(FILTERS.map((f) => [f, '']));
          setState({ ...cleared, ...(on ? v.filters : {}), view: on ? name : '' }, { resetView: false });
          announce(on ? `View: ${v.label}` : 'View cleared');
        },
      }, v.label)));
  }

  function filtersForm() {
    const field = (label, control) => h('label', { class: 'field' }, h('span', {}, label), control);
    const select = (name, options) => h('select', { name, dataset: { filter: name } },
      options.map(([value, text]) => h('option', { value }, text)));
    const f = h('form', { class: 'filters', 'aria-label': 'Filters' },
      field('SLA', select('sla', [['', 'Any'], ['on_time', 'On time'], ['at_risk', 'At risk'], ['breached', 'Breached'], ['at_risk,breached', 'At risk or breached']])),
      field('Status', select('status', [['', 'Any'], ['running', 'Running'], ['completed', 'Completed'], ['failed', 'Failed'], ['cancelled', 'Cancelled']])),
      field('Tag', h('input', { name: 'tag', type: 'text', placeholder: 'e.g. special-approval', dataset: { filter: 'tag' }, size: 16 })),
      field('Not updated for', select('idle', [['', 'Any time'], ['1', '1 hour'], ['4', '4 hours'], ['24', '24 hours'], ['72', '3 days']])),
      h('label', { class: 'field check' }, h('input', { type: 'checkbox', name: 'untouched', dataset: { filter: 'untouched' } }), h('span', {}, 'Work not started')),
      h('button', { type: 'submit', class: 'apply' }, 'Apply'),
      h('button', { type: 'button', class: 'clear', onclick: () => setState(Object.fromEntries(FILTERS.map((k) => [k, '']))) }, 'Clear filters'));
    f.addEventListener('change', (e) => {
      if (e.target.name === 'tag') return; // typed: applied on Enter or Apply
      apply();
    });
    f.addEventListener('submit', (e) => { e.preventDefault(); apply(); });
    function apply() {
      const changes = {};
      for (const el of f.querySelectorAll('[data-filter]')) {
        changes[el.name] = el.type === 'checkbox' ? (el.checked ? 'true' : '') : el.value.trim();
      }
      setState(changes);
    }
    return f;
  }

  function syncControls() {
    for (const el of form.querySelectorAll('[data-filter]')) {
      if (el.type === 'checkbox') el.checked = st[el.name] === 'true';
      else if (el !== document.activeElement) el.value = st[el.name] || '';
    }
    renderViews();
  }

  async function definition(id, version, signal) {
    const key = `${id}@${version}`;
    if (!defs.has(key)) {
      const d = await api(`/v1/workflows/${encodeURIComponent(id)}/versions/${version}`, { signal });
      defs.set(key, d.definition);
    }
    return defs.get(key);
  }

  async function refresh(signal) {
    try {
      const list = await api('/v1/workflows', { signal });
      workflows = list.items || [];
      const stats = await Promise.all(workflows.map((w) =>
        api(`/v1/stats/${encodeURIComponent(w.id)}`, { signal }).catch((e) => (e.name === 'AbortError' ? Promise.reject(e) : null))));
      let model;
      if (filtered(st)) model = await listModel(signal);
      else if (st.workflow) model = await stageModel(signal, stats[workflows.findIndex((w) => w.id === st.workflow)]);
      else model = await attentionModel(signal);
      const signature = JSON.stringify([workflows, stats, model, st]);
      if (signature === lastSignature) return;
      lastSignature = signature;
      replace(error);
      renderTiles(stats);
      render(model);
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      replace(error, problem(err, { onSignIn: ctx.signOut }));
      lastSignature = '';
      throw err;
    }
  }

  function renderTiles(stats) {
    const tile = (id, title, counts, extra) => h('li', {},
      h('a', {
        class: 'tile', href: id ? `#/board?workflow=${encodeURIComponent(id)}` : '#/board',
        'aria-current': st.workflow === id ? 'true' : false,
        onclick: (e) => { e.preventDefault(); setState({ workflow: id, stage: '' }, { resetView: false }); },
      },
      h('span', { class: 'tile-title' }, title), extra,
      counts ? h('span', { class: 'tile-counts' },
        ['breached', 'at_risk', 'on_time'].map((k) => slaBadge(k, `${counts[k] || 0} ${k === 'on_time' ? 'on time' : k.replace('_', ' ')}`))) : null));
    const total = { on_time: 0, at_risk: 0, breached: 0 };
    stats.forEach((s) => { if (s) for (const k of Object.keys(total)) total[k] += s.by_sla[k] || 0; });
    replace(tiles,
      tile('', 'All workflows', total),
      workflows.map((w, i) => tile(w.id, w.title || w.id, stats[i] && stats[i].by_sla, h('span', { class: 'tile-sub' }, `${w.id} · v${w.version}`))));
    if (!workflows.length) {
      replace(tiles, h('li', { class: 'empty' }, 'No workflows yet. ', h('a', { href: '#/workflows' }, 'Upload one on the Workflows page.')));
    }
  }

  /** One workflow, unfiltered: a column per stage with its count; red, yellow and failed first. */
  async function stageModel(signal, stats) {
    const wf = workflows.find((w) => w.id === st.workflow);
    if (!wf) return { kind: 'missing', workflow: st.workflow };
    const def = await definition(wf.id, wf.version, signal);
    const byStage = (stats && stats.by_stage) || {};
    const q = (extra) => api(withQuery('/v1/instances', { workflow: wf.id, limit: ATTENTION, ...extra }), { signal });
    // Instances still running on an older version may stand in stages the newest lacks.
    const older = await olderStages(wf, def, byStage, signal);
    const info = (n) => def.stages[n] || older.get(n) || {};
    const newest = stageOrder(def);
    const order = newest.filter((n) => def.stages[n].kind !== 'end')
      .concat([...older.keys()], newest.filter((n) => def.stages[n].kind === 'end'));
    const live = order.filter((n) => info(n).kind !== 'end' && byStage[n]);
    const [breached, atRisk, failed, ...pages] = await Promise.all([
      q({ sla: 'breached' }), q({ sla: 'at_risk' }), api(withQuery('/v1/instances', { status: 'failed', limit: ATTENTION }), { signal }),
      ...live.map((n) => q({ stage: n, status: 'running', limit: PER_COLUMN })),
    ]);
    const failedHere = failed.items.filter((i) => i.workflow === wf.id);
    const columns = order.map((name) => {
      const stage = info(name);
      const pick = (set) => set.items.filter((i) => i.stage === name);
      const page = live.includes(name) ? pages[live.indexOf(name)] : { items: [], next_cursor: null };
      const cards = dedupe([...pick(breached), ...failedHere.filter((i) => i.stage === name), ...pick(atRisk), ...page.items]);
      return {
        key: `${wf.id}/${name}`, workflow: wf.id, stage: name,
        title: `${stage.title || name}${stage.version ? ` (version ${stage.version})` : ''}`,
        kind: stage.kind, owner: stage.owner || null, outcome: stage.outcome || null,
        count: byStage[name] || 0,
        breakdown: {
          breached: approx(pick(breached).length, breached), at_risk: approx(pick(atRisk).length, atRisk),
          failed: approx(failedHere.filter((i) => i.stage === name).length, failed),
        },
        cards: cards.slice(0, PER_COLUMN),
        more: (byStage[name] || 0) > cards.slice(0, PER_COLUMN).length,
      };
    });
    return { kind: 'stages', workflow: wf.id, title: wf.title || wf.id, columns, by_sla: (stats && stats.by_sla) || {} };
  }

  /**
   * Stages that instances are in (by the counts) but the newest version `def` does not
   * have, found in the older versions, newest first (at most 20 back): name -> the
   * stage with its `version`. A stage found in none still gets a column, by its name.
   */
  async function olderStages(wf, def, byStage, signal) {
    const missing = Object.keys(byStage).filter((n) => byStage[n] && !def.stages[n]);
    const found = new Map();
    for (let v = wf.version - 1; v >= 1 && v >= wf.version - 20 && found.size < missing.length; v -= 1) {
      const old = await definition(wf.id, v, signal);
      for (const n of missing) {
        if (!found.has(n) && old.stages && old.stages[n]) found.set(n, { ...old.stages[n], version: v });
      }
    }
    for (const n of missing) if (!found.has(n)) found.set(n, { title: n, kind: 'task' });
    for (const [n, st] of found) if (st.kind === 'end') found.delete(n);
    return found;
  }

  /** All workflows, unfiltered: whatever is red or yellow, by workflow and stage. */
  async function attentionModel(signal) {
    const q = (extra) => api(withQuery('/v1/instances', { limit: ATTENTION, ...extra }), { signal });
    const [breached, atRisk, failed] = await Promise.all([q({ sla: 'breached' }), q({ sla: 'at_risk' }), q({ status: 'failed' })]);
    const items = dedupe([...breached.items, ...failed.items, ...atRisk.items]);
    const truncated = Boolean(breached.next_cursor || atRisk.next_cursor || failed.next_cursor);
    return { kind: 'attention', columns: await group(items, signal), truncated };
  }

  /** Filtered: one indexed query, a page at a time, grouped by workflow and stage. */
  async function listModel(signal) {
    const items = [];
    let cursor = null;
    let next = null;
    for (let i = 0; i < listPages; i += 1) {
      const page = await api(withQuery('/v1/instances', { ...queryOf(st), limit: LIST_PAGE, cursor }), { signal });
      items.push(...page.items);
      next = page.next_cursor;
      if (!next) break;
      cursor = next;
    }
    return { kind: 'list', columns: await group(items, signal), shown: items.length, more: Boolean(next) };
  }

  async function group(items, signal) {
    const groups = new Map();
    for (const inst of items) {
      const key = `${inst.workflow}/${inst.stage}`;
      if (!groups.has(key)) groups.set(key, { key, workflow: inst.workflow, stage: inst.stage, cards: [] });
      groups.get(key).cards.push(inst);
    }
    // Titles and the definition's stage order, from the (cached) definitions.
    const cols = [...groups.values()];
    const wfIndex = new Map(workflows.map((w, i) => [w.id, i]));
    const orders = new Map();
    for (const col of cols) {
      const inst = col.cards[0];
      try {
        const def = await definition(inst.workflow, inst.version, signal);
        const stage = def.stages[col.stage] || {};
        col.title = stage.title || col.stage;
        col.kind = stage.kind;
        col.owner = stage.owner || null;
        if (!orders.has(inst.workflow)) orders.set(inst.workflow, stageOrder(def));
      } catch (e) {
        if (e.name === 'AbortError') throw e;
        col.title = col.stage;
      }
      col.count = col.cards.length;
      col.breakdown = countStates(col.cards);
    }
    const pos = (c) => [wfIndex.get(c.workflow) ?? 1e9, (orders.get(c.workflow) || []).indexOf(c.stage)];
    cols.sort((a, b) => { const [x, y] = [pos(a), pos(b)]; return x[0] - y[0] || x[1] - y[1]; });
    return cols;
  }

  function render(model) {
    const focused = document.activeElement && columns.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    replace(more);
    if (model.kind === 'missing') {
      replace(summary, `No workflow named “${model.workflow}”.`);
      replace(columns);
      return;
    }
    const showWorkflow = !st.workflow;
    if (model.kind === 'stages') {
      const b = model.by_sla;
      replace(summary, `${model.title}: ${(b.breached || 0)} breached, ${(b.at_risk || 0)} at risk, ${(b.on_time || 0)} on time among running instances. Columns show every stage; red and yellow first. `,
        h('a', { class: 'start-link', href: `#/start/${encodeURIComponent(model.workflow)}` }, 'Start an instance'));
    } else if (model.kind === 'attention') {
      replace(summary, model.columns.length
        ? 'Everything breached, failed or at risk, in every workflow. Pick a workflow above for its full board.'
        : 'Nothing needs attention: no instance is breached, failed or at risk. Pick a workflow above for its full board.');
      if (model.truncated) append(more, ['More than 200 in one state: use the filters to narrow down.']);
    } else {
      const view = st.view && VIEWS[st.view];
      replace(summary, `${view ? `${view.label}: ` : 'Filtered: '}${model.shown} instance${model.shown === 1 ? '' : 's'}${model.more ? ' so far' : ''}${st.workflow ? ` in ${st.workflow}` : ''}${st.stage ? `, stage ${st.stage}` : ''}.`);
      if (!model.shown) append(summary, [' None match.']);
      if (model.more) {
        append(more, [h('button', { type: 'button', onclick: () => { listPages += 1; lastSignature = ''; poller.now(); } }, `Load ${LIST_PAGE} more`)]);
      }
    }
    replace(columns, model.columns.map((col) => column(col, showWorkflow, model.kind)));
    // Back from an instance: focus returns to the card that was opened.
    const opened = sessionStorage.getItem(LAST_OPENED);
    if (opened) {
      sessionStorage.removeItem(LAST_OPENED);
      const again = columns.querySelector(`.card[data-key="${CSS.escape(opened)}"]`);
      if (again) { again.focus({ preventScroll: true }); again.scrollIntoView({ block: 'nearest', inline: 'nearest' }); }
    }
    if (focused) {
      const again = columns.querySelector(`[data-key="${CSS.escape(focused)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  function column(col, showWorkflow, kind) {
    const id = `col-${col.key.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
    const b = col.breakdown || {};
    const parts = [];
    if (b.breached) parts.push(slaBadge('breached', `${b.breached} breached`));
    if (b.failed) parts.push(h('span', { class: 'badge st-failed' }, icon('fail'), h('span', {}, `${b.failed} failed`)));
    if (b.at_risk) parts.push(slaBadge('at_risk', `${b.at_risk} at risk`));
    const isEnd = col.kind === 'end';
    return h('section', { class: `column${isEnd ? ' end' : ''}${col.cards.length ? '' : ' empty'}`, 'aria-labelledby': id, dataset: { stage: col.stage, workflow: col.workflow } },
      h('header', { class: 'column-head' },
        h('h2', { id },
          showWorkflow ? h('span', { class: 'col-wf' }, `${col.workflow} › `) : null,
          h('span', { class: 'col-title' }, col.title),
          ' ', h('span', { class: 'count', 'aria-label': `${col.count} instances` }, String(col.count))),
        h('p', { class: 'col-meta' }, isEnd ? `end · ${col.outcome || ''}` : [col.kind, col.owner ? ` · owner ${col.owner}` : '']),
        parts.length ? h('p', { class: 'col-states' }, parts) : null),
      col.cards.length
        ? h('ul', { class: 'cards' }, col.cards.map((inst) => h('li', {}, card(inst))))
        : h('p', { class: 'col-empty muted' }, isEnd && col.count ? 'Finished instances are not listed here.' : 'None'),
      kind === 'stages' && (col.more || (isEnd && col.count))
        ? h('p', { class: 'col-more' }, h('a', {
          href: `#/board?workflow=${encodeURIComponent(col.workflow)}&stage=${encodeURIComponent(col.stage)}`,
          onclick: (e) => { e.preventDefault(); setState({ workflow: col.workflow, stage: col.stage }); },
        }, `List all ${col.count} in ${col.title}`))
        : null);
  }

  columns.addEventListener('click', (e) => {
    const opened = e.target.closest && e.target.closest('.card');
    if (opened) sessionStorage.setItem(LAST_OPENED, opened.dataset.key);
  });
  const poller = poll(refresh, REFRESH_MS);
  let stream = null;
  let streamFor = null;
  /** Follows the changes of the workflow shown (all workflows without one). */
  function restream() {
    if (stream && streamFor === st.workflow) return;
    if (stream) stream.stop();
    streamFor = st.workflow;
    stream = drive(poller, st.workflow ? `/v1/workflows/${encodeURIComponent(st.workflow)}/stream` : '/v1/stream', { fastMs: REFRESH_MS });
  }
  restream();
  const skip = skipToCards(columns);
  syncControls();
  return { unmount: () => { skip.stop(); if (stream) stream.stop(); poller.stop(); } };
}

/** A card: a link to the instance with its badge, business key, shown fields, deadline and age. */
export function card(inst) {
  const running = inst.status === 'running';
  return h('a', {
    class: `card st-${badgeClass(inst)}`, href: `#/instance/${encodeURIComponent(inst.id)}`,
    dataset: { key: inst.id, sla: inst.sla, status: inst.status, businessKey: inst.key || '' },
    title: inst.id,
  },
  h('span', { class: 'card-top' }, badge(inst), inst.key
    ? h('strong', { class: 'card-key' }, inst.key)
    : h('code', { class: 'card-id' }, shortId(inst.id))),
  fieldList(inst, inst.shown, 'fields card-fields'),
  inst.assignee ? h('span', { class: 'card-line' }, 'assigned to ', h('strong', {}, inst.assignee)) : null,
  branchChips(inst),
  inst.breached_ever && inst.sla !== 'breached' ? h('span', { class: 'card-line muted' }, 'breached earlier') : null,
  running && inst.deadline ? h('span', { class: 'card-line' }, icon('clock'), deadline(inst.deadline)) : null,
  h('span', { class: 'card-line muted' }, 'updated ', time(inst.updated_at, { rel: true })),
  inst.tags && inst.tags.length ? h('span', { class: 'tags' }, inst.tags.map((t) => h('span', { class: 'tag' }, t))) : null);
}

/**
 * The page's "Skip to the cards" link (index.html, second after "Skip to content"): shown
 * while the board is, it puts focus on the first card. Returns {stop()}.
 */
function skipToCards(columns) {
  const link = document.getElementById('skip-cards');
  if (!link) return { stop() {} };
  const go = (e) => {
    e.preventDefault();
    const first = columns.querySelector('.card');
    if (first) { first.focus(); first.scrollIntoView({ block: 'nearest' }); } else { columns.setAttribute('tabindex', '-1'); columns.focus(); }
  };
  link.hidden = false;
  link.addEventListener('click', go);
  return { stop() { link.hidden = true; link.removeEventListener('click', go); } };
}

function badgeClass(inst) {
  if (inst.status === 'failed') return 'failed';
  if (inst.status === 'completed') return 'done';
  if (inst.status === 'cancelled') return 'cancelled';
  return inst.sla || 'on_time';
}

function dedupe(items) {
  const seen = new Set();
  return items.filter((i) => (seen.has(i.id) ? false : (seen.add(i.id), true)));
}

/** `n`, or "n+" when the set it came from was cut at a page. */
function approx(n, set) {
  return n && set.next_cursor ? `${n}+` : n;
}

function countStates(items) {
  const c = { breached: 0, at_risk: 0, failed: 0 };
  for (const i of items) {
    if (i.status === 'failed') c.failed += 1;
    else if (i.status === 'running' && i.sla === 'breached') c.breached += 1;
    else if (i.status === 'running' && i.sla === 'at_risk') c.at_risk += 1;
  }
  return c;
}

/** Arrow keys move between cards: up/down in a column, left/right across columns. */
function arrowKeys(e) {
  const cardEl = e.target.closest && e.target.closest('.card');
  if (!cardEl || e.altKey || e.ctrlKey || e.metaKey) return;
  const col = cardEl.closest('.column');
  const cards = [...col.querySelectorAll('.card')];
  const i = cards.indexOf(cardEl);
  let target = null;
  if (e.key === 'ArrowDown') target = cards[i + 1];
  else if (e.key === 'ArrowUp') target = cards[i - 1];
  else if (e.key === 'Home') target = cards[0];
  else if (e.key === 'End') target = cards[cards.length - 1];
  else if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
    const cols = [...col.parentElement.querySelectorAll('.column')].filter((c) => c.querySelector('.card'));
    const j = cols.indexOf(col) + (e.key === 'ArrowRight' ? 1 : -1);
    if (cols[j]) {
      const other = [...cols[j].querySelectorAll('.card')];
      target = other[Math.min(i, other.length - 1)];
    }
  }
  if (target) {
    e.preventDefault();
    target.focus();
    target.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  }
}
