// A workflow definition drawn as SVG: stages in layers from the start stage, transitions as
// arrows with their reason, the current stage outlined and labelled. Small on purpose: a
// layered layout is enough for playbook-sized workflows and needs no library.

import { s } from './dom.js';

const W = 176; // node width
const H = 62; // node height
const GAP_X = 32;
const GAP_Y = 84;
const PAD = 28;

const branches = (b) => (b == null ? [] : Array.isArray(b) ? b : [b]);

/** Every transition of `def` as {from, to, label, when}, in the order the engine tries them. */
export function edges(def) {
  const out = [];
  for (const [name, st] of Object.entries(def.stages || {})) {
    const add = (b, label) => { if (b && b.to) out.push({ from: name, to: b.to, label, when: b.when || '' }); };
    if (st.kind === 'task') branches(st.transitions).forEach((b) => add(b, b.when ? b.when : ''));
    for (const [ev, bs] of Object.entries(st.on || {})) branches(bs).forEach((b) => add(b, `on ${ev}`));
    if (st.kind === 'approval') {
      branches(st.on_approve).forEach((b) => add(b, 'approved'));
      branches(st.on_reject).forEach((b) => add(b, 'rejected'));
    }
    if (st.kind === 'parallel') {
      // The fork: one arrow per branch to its first stage; the join: the transitions.
      (st.branches || []).forEach((b) => add({ to: b.start }, `fork ${b.name}`));
      const j = st.join || {};
      const rule = j.rule === 'any' ? 'any' : j.rule === 'at_least' ? `at least ${j.count}` : 'all';
      branches(st.transitions).forEach((b) => add(b, `joined (${rule})`));
    }
    if (st.kind === 'subworkflow') {
      // A call of another workflow: one arrow per outcome of the child.
      for (const [outcome, bs] of Object.entries(st.on_outcome || {})) branches(bs).forEach((b) => add(b, `child ${outcome}`));
    }
    branches(st.timeout).forEach((b) => add(b, 'timeout'));
    branches(st.on_error).forEach((b) => add(b, 'error'));
  }
  return out.filter((e) => def.stages[e.to]);
}

/** Layers by distance from the start; unreachable stages go last. */
function layers(def, es) {
  const names = Object.keys(def.stages || {});
  const depth = new Map([[def.start, 0]]);
  const queue = [def.start];
  while (queue.length) {
    const n = queue.shift();
    for (const e of es) {
      if (e.from === n && !depth.has(e.to)) { depth.set(e.to, depth.get(n) + 1); queue.push(e.to); }
    }
  }
  const deepest = Math.max(0, ...depth.values());
  for (const n of names) if (!depth.has(n)) depth.set(n, deepest + 1);
  const rows = [];
  for (const n of names) {
    const d = depth.get(n);
    (rows[d] = rows[d] || []).push(n);
  }
  const out = rows.filter(Boolean);
  // One barycentre sweep: order each row by where its parents sit, to uncross arrows.
  const pos = new Map();
  out.forEach((row, r) => {
    if (r > 0) {
      const centre = (n) => {
        const parents = es.filter((e) => e.to === n && pos.has(e.from)).map((e) => pos.get(e.from));
        return parents.length ? parents.reduce((a, b) => a + b, 0) / parents.length : row.indexOf(n);
      };
      const keyed = row.map((n, i) => [centre(n), i, n]);
      keyed.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      out[r] = keyed.map((k) => k[2]);
    }
    out[r].forEach((n, i) => pos.set(n, i - (out[r].length - 1) / 2));
  });
  return out;
}

const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

/**
 * The SVG of `def`. `current`: the current stage; `sla`: its state class (on_time, at_risk,
 * breached, failed, done, cancelled); `visited`: stage names entered before; `branchStages`:
 * the current stages of running branches of a parallel stage, `{stage, sla}` each, outlined
 * as current in their own SLA colour.
 */
export function graph(def, { current = null, sla = 'on_time', label = '', visited = new Set(), branchStages = [] } = {}) {
  const inBranch = new Map(branchStages.map((b) => [b.stage, b.sla]));
  const es = edges(def);
  const rows = layers(def, es);
  const widest = Math.max(1, ...rows.map((r) => r.length));
  const width = widest * W + (widest - 1) * GAP_X + 2 * PAD + 90;
  const height = rows.length * H + (rows.length - 1) * GAP_Y + 2 * PAD + 24;
  const at = new Map();
  rows.forEach((row, r) => {
    const rowWidth = row.length * W + (row.length - 1) * GAP_X;
    const x0 = (width - 90 - rowWidth) / 2;
    row.forEach((n, i) => at.set(n, { x: x0 + i * (W + GAP_X), y: PAD + 24 + r * (H + GAP_Y) }));
  });

  const svg = s('svg', {
    class: 'graph', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img',
    'aria-labelledby': 'graph-title',
  },
  s('title', { id: 'graph-title' }, `Workflow ${def.id}: ${Object.keys(def.stages).length} stages${current ? `; current stage ${current}${label ? `, ${label}` : ''}` : ''}`),
  s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    s('path', { d: 'M0 0L10 5L0 10z', class: 'arrow-head' }))));

  // The start marker.
  const start = at.get(def.start);
  if (start) {
    svg.append(s('circle', { cx: start.x + W / 2, cy: start.y - 20, r: 6, class: 'start-dot' }),
      s('line', { x1: start.x + W / 2, y1: start.y - 14, x2: start.x + W / 2, y2: start.y - 1, class: 'edge', 'marker-end': 'url(#arrow)' }));
  }

  // Arrows: parallel ones between the same stages share a path and join their labels.
  const pairs = new Map();
  for (const e of es) {
    const k = `${e.from}\u0000${e.to}`;
    if (!pairs.has(k)) pairs.set(k, { ...e, labels: [] });
    if (e.label) pairs.get(k).labels.push(e.label);
  }
  const fanOut = new Map();
  const fanIn = new Map();
  for (const e of pairs.values()) {
    fanOut.set(e.from, (fanOut.get(e.from) || 0) + 1);
    fanIn.set(e.to, (fanIn.get(e.to) || 0) + 1);
  }
  const outIndex = new Map();
  const inIndex = new Map();
  const seenOut = new Map();
  const seenIn = new Map();
  for (const [k, e] of pairs) {
    outIndex.set(k, seenOut.get(e.from) || 0);
    seenOut.set(e.from, (seenOut.get(e.from) || 0) + 1);
    inIndex.set(k, seenIn.get(e.to) || 0);
    seenIn.set(e.to, (seenIn.get(e.to) || 0) + 1);
  }
  const rowOf = new Map();
  rows.forEach((row, r) => row.forEach((n) => rowOf.set(n, r)));
  const edgeLayer = s('g', { class: 'edges' });
  const labelLayer = s('g', { class: 'edge-labels' });
  for (const [key, e] of pairs) {
    const a = at.get(e.from);
    const b = at.get(e.to);
    let p;
    if (b.y > a.y) {
      const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y;
      const dy = (y2 - y1) / 2;
      p = [[x1, y1], [x1, y1 + dy], [x2, y2 - dy], [x2, y2]];
    } else if (e.from === e.to) {
      const x = a.x + W, y = a.y + H / 2;
      p = [[x, y - 10], [x + 50, y - 30], [x + 50, y + 30], [x, y + 10]];
    } else if (b.y === a.y) {
      const row = rows[rowOf.get(e.from)];
      const [i, j] = [row.indexOf(e.from), row.indexOf(e.to)];
      if (Math.abs(i - j) === 1) {
        // Neighbours: straight across the gap.
        const x1 = j > i ? a.x + W : a.x, x2 = j > i ? b.x : b.x + W, y = a.y + H / 2;
        p = [[x1, y], [(x1 + x2) / 2, y], [(x1 + x2) / 2, y], [x2, y]];
      } else {
        // Further along the row: an arc over the stages between.
        const x1 = a.x + W / 2, x2 = b.x + W / 2, y = a.y;
        p = [[x1, y], [x1, y - 36], [x2, y - 36], [x2, y]];
      }
    } else {
      // Back or sideways: around the right-hand side.
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x + W, y2 = b.y + H / 2;
      const bulge = 40 + Math.abs(y2 - y1) / 6;
      p = [[x1, y1], [Math.max(x1, x2) + bulge, y1], [Math.max(x1, x2) + bulge, y2], [x2, y2]];
    }
    const d = `M${p[0][0]} ${p[0][1]}C${p[1][0]} ${p[1][1]} ${p[2][0]} ${p[2][1]} ${p[3][0]} ${p[3][1]}`;
    const kind = e.labels.includes('timeout') ? ' edge-timeout'
      : e.labels.includes('rejected') || e.labels.includes('error') ? ' edge-bad'
        : e.labels.some((l) => l.startsWith('fork ')) ? ' edge-fork'
          : e.labels.some((l) => l.startsWith('joined')) ? ' edge-join' : '';
    edgeLayer.append(s('path', { d, class: `edge${kind}`, 'marker-end': 'url(#arrow)' }, s('title', {}, `${e.from} → ${e.to}${e.labels.length ? `: ${e.labels.join(', ')}` : ''}`)));
    if (e.labels.length) {
      // Where arrows fan out, label them near their targets; where they fan in, near
      // their sources: the labels then sit apart.
      // Siblings at the same end are staggered along their curves.
      const nearTarget = (fanOut.get(e.from) || 0) > (fanIn.get(e.to) || 0);
      const t = b.y > a.y
        ? (nearTarget ? 0.75 - 0.2 * (inIndex.get(key) % 3) : 0.25 + 0.2 * (outIndex.get(key) % 3))
        : 0.5;
      const u = 1 - t;
      const mx = u ** 3 * p[0][0] + 3 * u * u * t * p[1][0] + 3 * u * t * t * p[2][0] + t ** 3 * p[3][0];
      const my = u ** 3 * p[0][1] + 3 * u * u * t * p[1][1] + 3 * u * t * t * p[2][1] + t ** 3 * p[3][1];
      labelLayer.append(s('text', { x: mx, y: my + 4, class: 'edge-label', 'text-anchor': 'middle' }, clip(e.labels.join(' · '), 28)));
    }
  }
  svg.append(edgeLayer);

  for (const [name, { x, y }] of at) {
    const st = def.stages[name];
    const isCurrent = name === current || inBranch.has(name);
    const cls = ['node', `kind-${st.kind}`];
    if (isCurrent) cls.push('current', `st-${name === current ? sla : inBranch.get(name)}`);
    if (inBranch.has(name)) cls.push('branch-current');
    else if (visited.has(name)) cls.push('visited');
    const sub = st.kind === 'end' ? `end · ${st.outcome || ''}`
      : st.kind === 'parallel' ? `parallel · ${(st.branches || []).length} branches${st.owner ? ` · ${st.owner}` : ''}`
        : st.kind === 'subworkflow' ? `calls ${st.workflow}${st.owner ? ` · ${st.owner}` : ''}`
        : `${st.kind}${st.owner ? ` · ${st.owner}` : ''}${st.deadline && !String(st.deadline).includes(' ') ? ` · ${st.deadline}` : ''}`;
    const g = s('g', { class: cls.join(' '), dataset: { stage: name } },
      s('title', {}, `${st.title || name} (${name}): ${sub}${isCurrent ? ' — current stage' : ''}`),
      s('rect', { x, y, width: W, height: H, rx: st.kind === 'end' ? H / 2 : 8 }),
      s('text', { x: x + W / 2, y: y + (isCurrent ? 19 : 25), 'text-anchor': 'middle', class: 'node-title' }, clip(st.title || name, 22)),
      s('text', { x: x + W / 2, y: y + (isCurrent ? 35 : 43), 'text-anchor': 'middle', class: 'node-sub' }, clip(sub, 28)));
    if (isCurrent) {
      g.append(s('text', { x: x + W / 2, y: y + 53, 'text-anchor': 'middle', class: 'node-now' }, clip(`now${name === current ? (label ? ` · ${label}` : '') : ` · branch, ${inBranch.get(name).replace('_', ' ')}`}`, 26)));
    }
    svg.append(g);
  }
  svg.append(labelLayer);
  return svg;
}
