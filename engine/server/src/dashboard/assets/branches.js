// The branches of a parallel stage: where each stands, with its own SLA. Shared by the
// board's cards (one chip per running branch) and the instance page (a table of every
// branch, and the branch stages outlined in the graph). The API lists them under
// `branches` (see `engine/server/src/api/branch_view.rs`), flattened depth first.

import { h, slaBadge, deadline } from './dom.js';

const STATUS = { waiting: 'waiting to start', running: 'running', ended: 'ended', cancelled: 'cancelled' };

/** The branches still running, as `{stage, sla}` for the graph to outline. */
export function branchStages(inst) {
  return (inst.branches || []).filter((b) => b.status === 'running').map((b) => ({ stage: b.stage, sla: b.sla }));
}

/** One chip per running branch for a board card: its name and SLA colour. */
export function branchChips(inst) {
  const running = (inst.branches || []).filter((b) => b.status === 'running');
  if (!running.length) return null;
  return h('span', { class: 'branch-chips', 'aria-label': 'branches still running' },
    running.map((b) => h('span', {
      class: `branch-chip st-${b.sla}`,
      dataset: { branch: b.branch, stage: b.stage, sla: b.sla },
      title: `${b.branch}: ${b.stage} (${b.sla.replace('_', ' ')})${b.deadline ? `, due ${new Date(b.deadline).toLocaleString()}` : ''}`,
    }, b.title || b.branch)));
}

/** The instance page's table of branches, or null outside parallel stages. */
export function branchTable(inst) {
  const all = inst.branches || [];
  if (!all.length) return null;
  return h('section', { class: 'branches' },
    h('h2', {}, 'Branches of ', h('code', {}, all[0].parallel)),
    h('table', { class: 'branch-table' },
      h('thead', {}, h('tr', {}, ['Branch', 'Stage', 'Owner', 'SLA', 'Due', 'Assignee', 'Status'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, all.map((b) => h('tr', { class: `branch-row branch-${b.status}`, dataset: { branch: b.branch, stage: b.stage, sla: b.sla, status: b.status } },
        h('th', { scope: 'row' }, '\u00a0'.repeat(b.depth * 3), b.title || b.branch, b.depth ? h('span', { class: 'muted' }, ` in ${b.parallel}`) : null),
        h('td', {}, b.stage_title || b.stage, ' ', h('code', {}, b.stage)),
        h('td', {}, b.owner || h('span', { class: 'muted' }, '—')),
        h('td', {}, b.status === 'running' ? slaBadge(b.sla) : h('span', { class: 'muted' }, '—')),
        h('td', {}, b.status === 'running' && b.deadline ? deadline(b.deadline) : h('span', { class: 'muted' }, '—')),
        h('td', {}, b.assignee || h('span', { class: 'muted' }, '—')),
        h('td', {}, STATUS[b.status] || b.status, b.outcome ? `: ${b.outcome}` : ''))))));
}

/** The timeline's words for the history entries of parallel stages; null for others. */
export function describeBranchEvent(e) {
  switch (e.type) {
    case 'branch_started': return { who: 'engine', what: `Branch ${e.branch} of ${e.stage} started` };
    case 'branch_ended': return { who: 'engine', what: `Branch ${e.branch} of ${e.stage} ended: ${e.outcome}${e.counted ? '' : ' (does not count towards the join)'}`, cls: e.counted ? 'good' : '' };
    case 'branch_cancelled': return { who: 'engine', what: `Branch ${e.branch} of ${e.stage} cancelled in ${e.in_stage}` };
    case 'joined': return { who: 'engine', what: `${e.stage}: joined (${Object.entries(e.outcomes || {}).map(([b, o]) => `${b}: ${o ?? 'not ended'}`).join(', ')})`, cls: 'good' };
    default: return null;
  }
}
