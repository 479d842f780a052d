// Sub-workflows on the instance page: the parent that started this instance (a link back)
// and the children its sub-workflow stages started (a table of links, each child's stage
// and status). The API gives them as `parent` and `children` on GET /v1/instances/{id}
// (see `engine/server/src/api/family_view.rs`).

import { h } from './dom.js';

const link = (id) => h('a', { href: `#/instance/${encodeURIComponent(id)}` }, h('code', {}, id));

/** The parent line and the children table, or null for an instance with neither. */
export function familyLinks(inst) {
  const parent = inst.parent;
  const children = inst.children || [];
  if (!parent && !children.length) return null;
  return h('section', { class: 'family' },
    parent ? h('p', { class: 'parent-link', dataset: { parent: parent.instance } },
      'Started by ', link(parent.instance),
      parent.workflow ? [' (', h('strong', {}, parent.workflow), ')'] : null,
      ' in its stage ', h('code', {}, parent.stage),
      parent.status ? h('span', { class: 'muted' }, ` · ${parent.status}`) : h('span', { class: 'muted' }, ' · no longer stored')) : null,
    children.length ? [
      h('h2', {}, 'Sub-workflows'),
      h('table', { class: 'child-table' },
        h('thead', {}, h('tr', {}, ['Child', 'Workflow', 'Started by stage', 'Its stage', 'Status'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, children.map((c) => h('tr', { class: 'child-row', dataset: { child: c.id, status: c.status || 'gone', waiting: String(c.waiting) } },
          h('th', { scope: 'row' }, link(c.id)),
          h('td', {}, c.workflow),
          h('td', {}, h('code', {}, c.stage), c.waiting ? h('span', { class: 'muted' }, ' (waiting for it)') : null),
          h('td', {}, c.child_stage ? h('code', {}, c.child_stage) : h('span', { class: 'muted' }, '—')),
          h('td', {}, c.status || 'not stored (not started, or removed)', c.outcome ? `: ${c.outcome}` : ''))))),
    ] : null);
}

/** The timeline's words for the history entries of sub-workflow stages; null for others. */
export function describeFamilyEvent(e) {
  switch (e.type) {
    case 'child_started': return { who: 'engine', what: `${e.stage}: started ${e.workflow} as ${e.child}` };
    case 'child_ended': return { who: 'engine', what: `${e.stage}: child ${e.child} ${e.status}${e.outcome ? ` (${e.outcome})` : ''}`, cls: e.status === 'completed' ? 'good' : 'bad' };
    case 'child_cancelled': return { who: 'engine', what: `${e.stage}: child ${e.child} cancelled` };
    default: return null;
  }
}
