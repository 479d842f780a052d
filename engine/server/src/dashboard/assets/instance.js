// One instance: where it stands in its workflow's graph, its variables, armed timers with
// countdowns, open approval tasks, and its history as a timeline of who did what, when.

import { api } from './api.js';
import { h, replace, badge, state, deadline, time, problem, pretty, icon, fieldList } from './dom.js';
import { poll } from './poll.js';
import { graph, edges } from './graph.js';
import { steps } from './steps.js';
import { actionsPanel } from './actions.js';
import { messagesPanel } from './deliveries.js';
import { drive } from './live.js';
import { progressLinkPanel } from './progresslink.js';
import { branchStages, branchTable, describeBranchEvent } from './branches.js';
import { familyLinks, describeFamilyEvent } from './family.js';

const REFRESH_MS = 3000;

export function mount(root, route, ctx) {
  const id = route.args[0] || '';
  const path = `/v1/instances/${encodeURIComponent(id)}`;
  let def = null;
  let defKey = '';
  let lastInstance = '';
  let nextFrom = 0;
  const entered = new Set();

  const title = h('h1', {}, 'Instance ', h('code', {}, id));
  const head = h('div', { class: 'page-head' }, title);
  const error = h('div');
  const facts = h('div', { class: 'facts' });
  const figure = h('div', { class: 'graph-wrap', tabindex: '0', role: 'region', 'aria-label': 'Workflow graph (scrolls)' });
  const textGraph = h('div');
  const tasks = h('div');
  const timers = h('div');
  const vars = h('div');
  const fields = h('div');
  const slaRecord = h('div');
  const stepTable = h('div', { class: 'table-wrap' });
  const timeline = h('ol', { class: 'timeline', 'aria-label': 'History, oldest first' });
  const historyNote = h('p', { class: 'muted' });
  const actions = actionsPanel(id, { refresh: () => poller.now(), ctx });
  const messages = messagesPanel();
  const customerLink = progressLinkPanel(id, ctx);

  root.append(head, error, facts,
    h('div', { class: 'instance-grid' },
      h('section', { class: 'panel wide', 'aria-labelledby': 'h-actions' }, h('h2', { id: 'h-actions' }, 'Actions'), actions.el),
      h('section', { class: 'panel wide', 'aria-labelledby': 'h-graph' }, h('h2', { id: 'h-graph' }, 'Where it stands'), figure, textGraph),
      h('section', { class: 'panel', 'aria-labelledby': 'h-fields' }, h('h2', { id: 'h-fields' }, 'Fields'), fields),
      h('section', { class: 'panel', 'aria-labelledby': 'h-sla' }, h('h2', { id: 'h-sla' }, 'SLA record'), slaRecord),
      h('section', { class: 'panel', 'aria-labelledby': 'h-tasks' }, h('h2', { id: 'h-tasks' }, 'Open tasks'), tasks),
      h('section', { class: 'panel', 'aria-labelledby': 'h-timers' }, h('h2', { id: 'h-timers' }, 'Armed timers'), timers),
      h('section', { class: 'panel', 'aria-labelledby': 'h-messages' }, h('h2', { id: 'h-messages' }, 'Messages'), messages.el),
      h('section', { class: 'panel', 'aria-labelledby': 'h-customer' }, h('h2', { id: 'h-customer' }, 'Customer progress link'), customerLink.el),
      h('section', { class: 'panel wide', 'aria-labelledby': 'h-steps' }, h('h2', { id: 'h-steps' }, 'Step by step'), stepTable),
      h('section', { class: 'panel wide', 'aria-labelledby': 'h-vars' }, h('h2', { id: 'h-vars' }, 'Variables'), vars),
      h('section', { class: 'panel wide', 'aria-labelledby': 'h-history' }, h('h2', { id: 'h-history' }, 'History'), historyNote, timeline)));

  async function refresh(signal) {
    try {
      const inst = await api(path, { signal });
      const key = `${inst.workflow}@${inst.version}`;
      if (key !== defKey) {
        const d = await api(`/v1/workflows/${encodeURIComponent(inst.workflow)}/versions/${inst.version}`, { signal });
        def = d.definition;
        defKey = key;
        lastInstance = '';
      }
      // New history entries only: the history is append-only.
      let added = [];
      for (;;) {
        const page = await api(`${path}/history?from=${nextFrom}&limit=500`, { signal });
        added = added.concat(page.items);
        if (page.items.length) nextFrom = page.items[page.items.length - 1].seq + 1;
        if (page.next_from == null) break;
      }
      for (const e of added) if (e.type === 'entered') entered.add(e.stage);
      replace(error);
      appendHistory(added);
      messages.add(added);
      actions.update(inst, def);
      const sig = JSON.stringify(inst);
      if (sig !== lastInstance || added.length) {
        lastInstance = sig;
        render(inst);
        replace(stepTable, steps(await api(`${path}/postmortem`, { signal })));
      }
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      replace(error, problem(err, { onSignIn: ctx.signOut }));
      throw err;
    }
  }

  function render(inst) {
    const stage = def.stages[inst.stage] || {};
    const st = state(inst);
    document.title = `${inst.key || id} · Waystation`;
    replace(title, inst.key ? [h('span', { class: 'instance-key' }, inst.key), ' ', h('code', { class: 'muted' }, id)] : ['Instance ', h('code', {}, id)]);
    const names = Object.keys(inst.fields || {});
    replace(fields, names.length
      ? fieldList(inst, names, 'fields kv')
      : h('p', { class: 'muted' }, 'No fields have a value.'));
    const record = inst.sla_record || [];
    replace(slaRecord, record.length
      ? h('ul', { class: 'plain sla-record' }, record.map((r) => h('li', { class: r.breached_at ? 'breach' : 'risk', dataset: { stage: r.stage } },
        h('strong', {}, r.stage), ': ',
        r.breached_at ? ['breached ', time(r.breached_at)] : ['at risk ', time(r.at_risk_at)],
        r.overdue_seconds != null ? ` · ${Math.round(r.overdue_seconds / 60)} min over the deadline` : '',
        r.left_at ? [' · left ', time(r.left_at)] : ' · still there')))
      : h('p', { class: 'muted' }, 'No stage has gone at risk or breached.'));
    replace(facts,
      h('p', { class: 'fact-line' }, badge(inst),
        ' in ', h('strong', {}, inst.stage_title || stage.title || inst.stage), ' ', h('code', {}, inst.stage),
        inst.owner ? [' · owner ', h('strong', {}, inst.owner)] : null,
        inst.assignee ? [' · assigned to ', h('strong', { class: 'assignee' }, inst.assignee.user), ` by ${inst.assignee.by}`] : null,
        inst.status === 'running' && inst.sla && inst.sla.deadline ? [' · ', icon('clock'), ' ', deadline(inst.sla.deadline)] : null),
      h('dl', { class: 'kv' },
        h('dt', {}, 'Workflow'), h('dd', {}, h('a', { href: `#/board?workflow=${encodeURIComponent(inst.workflow)}` }, inst.workflow), ` version ${inst.version}`),
        h('dt', {}, 'Status'), h('dd', {}, inst.status, inst.outcome ? ` (${inst.outcome})` : '', inst.failure ? [': ', h('span', { class: 'error' }, inst.failure)] : ''),
        h('dt', {}, 'Started'), h('dd', {}, time(inst.started_at)),
        h('dt', {}, 'In this stage since'), h('dd', {}, time(inst.stage_entered_at), ' (', time(inst.stage_entered_at, { rel: true }), ')'),
        h('dt', {}, 'Last update'), h('dd', {}, time(inst.updated_at, { rel: true })),
        inst.sla && inst.sla.at_risk_at ? [h('dt', {}, 'At risk from'), h('dd', {}, time(inst.sla.at_risk_at))] : null,
        inst.sla && inst.sla.deadline ? [h('dt', {}, 'Deadline'), h('dd', {}, time(inst.sla.deadline))] : null,
        h('dt', {}, 'Tags'), h('dd', {}, inst.tags && inst.tags.length ? h('span', { class: 'tags' }, inst.tags.map((t) => h('span', { class: 'tag' }, t))) : h('span', { class: 'muted' }, 'none'))),
      branchTable(inst),
      familyLinks(inst));

    const svg = graph(def, { current: inst.stage, sla: st.cls, label: st.label, visited: entered, branchStages: branchStages(inst) });
    replace(figure, svg);
    replace(textGraph, h('details', {}, h('summary', {}, 'Stages and transitions as text'),
      h('ul', { class: 'text-graph' }, Object.entries(def.stages).map(([name, s]) => h('li', {},
        name === inst.stage ? h('strong', {}, `${s.title || name} (${name}) — current`) : `${s.title || name} (${name})`,
        ` [${s.kind}]`,
        h('ul', {}, edges(def).filter((e) => e.from === name).map((e) => h('li', {}, `→ ${e.to}${e.label ? `: ${e.label}` : ''}`))))))));

    const open = inst.approvals || [];
    replace(tasks, open.length
      ? h('ul', { class: 'plain' }, open.map((t) => h('li', { class: 'task' },
        h('strong', {}, `Level ${t.level}`), ' · ', approverText(t.approver), ' · opened ', time(t.opened_at, { rel: true }),
        h('br'), h('a', { href: '#/inbox' }, 'Decide in the approvals inbox'), ' ', h('code', { class: 'muted' }, t.id))))
      : h('p', { class: 'muted' }, 'No open approval tasks.'));

    const armed = inst.timers || [];
    replace(timers, armed.length
      ? h('ul', { class: 'plain' }, armed.map((t) => h('li', { class: 'timer', dataset: { purpose: t.purpose } },
        icon('clock'), ' ', h('strong', {}, timerLabel(t)), ' of ', h('code', {}, t.stage), ': ',
        deadline(t.due), h('br'), h('span', { class: 'muted' }, time(t.due)))))
      : h('p', { class: 'muted' }, 'No timers armed.'));

    const entries = Object.entries(inst.vars || {});
    replace(vars,
      entries.length
        ? h('table', { class: 'vars' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Variable'), h('th', { scope: 'col' }, 'Value'))),
          h('tbody', {}, entries.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, h('code', {}, k)), h('td', {}, h('pre', {}, pretty(v)))))))
        : h('p', { class: 'muted' }, 'No variables set.'),
      h('details', {}, h('summary', {}, 'Start input'), h('pre', {}, pretty(inst.input))));
  }

  function appendHistory(items) {
    for (const e of items) {
      const d = describe(e);
      // The token behind the request, when one caused the entry.
      if (e.actor) d.who = e.actor.name;
      timeline.append(h('li', { class: `event ev-${e.type}${d.cls ? ` ${d.cls}` : ''}`, dataset: { seq: e.seq, type: e.type } },
        h('span', { class: 'when' }, time(e.at)),
        h('span', { class: 'who' }, d.who),
        h('span', { class: 'what' }, d.what),
        d.comment ? h('blockquote', { class: 'comment' }, d.comment) : null,
        d.detail !== undefined ? h('details', { class: 'detail' }, h('summary', {}, 'Details'), h('pre', {}, pretty(d.detail))) : null));
    }
    replace(historyNote, `${timeline.children.length} entr${timeline.children.length === 1 ? 'y' : 'ies'}; new ones appear at the end.`);
  }

  const poller = poll(refresh, REFRESH_MS);
  const stream = drive(poller, `${path}/stream`, { fastMs: REFRESH_MS });
  return { unmount: () => { stream.stop(); poller.stop(); } };
}

function approverText(a) {
  if (!a) return '';
  if (a.role) return `role ${a.role}`;
  if (a.user) return `user ${a.user}`;
  return JSON.stringify(a);
}

const CAUSES = { transition: 'transition', event: 'event', approved: 'approved', rejected: 'rejected', timeout: 'deadline passed', error: 'plugin error' };
const SLA = { on_time: 'on time', at_risk: 'at risk', breached: 'breached' };

/** Who did it and what happened, in words. */
/** What an armed timer will do, in words. */
function timerLabel(t) {
  switch (t.purpose) {
    case 'at_risk': return 'Turns at risk';
    case 'escalation': return `Escalation step ${(t.step || 0) + 1}`;
    case 'reminder': return `Reminder ${t.round || 1}`;
    default: return 'Deadline';
  }
}

const TIMERS = { at_risk: 'at-risk', deadline: 'deadline', escalation: 'escalation', reminder: 'reminder' };

function describe(e) {
  switch (e.type) {
    case 'started': return { who: 'operator', what: `Started ${e.workflow} version ${e.version}`, detail: e.input };
    case 'entered': return { who: 'engine', what: `Entered stage ${e.stage}` };
    case 'transitioned': return { who: 'engine', what: `Moved from ${e.from} to ${e.to} (${CAUSES[e.cause] || e.cause})` };
    case 'variables_set': return { who: 'engine', what: `Set ${Object.keys(e.vars || {}).join(', ')}`, detail: e.vars };
    case 'tagged': return { who: 'engine', what: `Tagged ${e.tag}` };
    case 'plugin_called': return { who: 'plugin', what: `Called plugin ${typeof e.plugin === 'string' ? e.plugin : JSON.stringify(e.plugin)} (${e.world})` };
    case 'plugin_returned': return { who: 'plugin', what: `Plugin call ${e.call_id} returned`, detail: e };
    case 'plugin_failed': return { who: 'plugin', what: `Plugin call ${e.call_id} failed: ${e.kind}: ${e.message}`, cls: 'bad', detail: e };
    case 'timer_armed': return { who: 'engine', what: `Armed the ${TIMERS[e.purpose] || e.purpose} timer for ${new Date(e.due).toLocaleString()}` };
    case 'escalated': return { who: 'timer', what: `Escalation step ${e.step + 1} in stage ${e.stage} (due ${new Date(e.due).toLocaleString()}); the stage keeps waiting`, cls: 'st-at_risk' };
    case 'reminded': return { who: 'timer', what: `Reminder ${e.round} of ${e.times} in stage ${e.stage}` };
    case 'timer_ignored': return { who: 'timer', what: `A timer fired with nothing to do: ${e.reason}` };
    case 'sla_changed': return { who: 'timer', what: `Stage ${e.stage} is now ${SLA[e.sla] || e.sla}`, cls: `st-${e.sla}` };
    case 'event_received': return { who: 'operator', what: `Event ${e.name}`, detail: e.data };
    case 'approval_opened': return { who: 'engine', what: `Approval task opened at level ${e.level} for ${approverText(e.approver)}` };
    case 'level_skipped': return { who: 'engine', what: `Level ${e.level} skipped: ${e.because}` };
    case 'decided': return {
      who: e.decider,
      what: `${e.decision === 'approve' ? 'Approved' : e.decision === 'reject' ? 'Rejected' : e.decision} at level ${e.level}`,
      comment: e.comment,
      cls: e.decision === 'reject' ? 'bad' : 'good',
    };
    case 'message_queued': return { who: 'engine', what: `Message to ${e.recipient} by ${e.channel} queued` };
    case 'completed': return { who: 'engine', what: `Completed: ${e.outcome}`, cls: 'good' };
    case 'failed': return { who: 'engine', what: `Failed: ${e.reason}`, cls: 'bad' };
    case 'cancelled': return { who: e.by, what: `Cancelled${e.reason ? `: ${e.reason}` : ''}`, cls: 'bad' };
    case 'assigned': return {
      who: e.by,
      what: e.assignee
        ? `${e.previous ? `Reassigned ${e.stage} from ${e.previous} to` : `Assigned ${e.stage} to`} ${e.assignee}`
        : `Released ${e.stage}${e.previous ? ` (was ${e.previous})` : ''}`,
    };
    case 'delivery_retried': return { who: e.by, what: `Retried delivery of message ${e.message_id}` };
    case 'delivery_attempted': return {
      who: 'engine',
      what: e.outcome === 'delivered' ? `Message ${e.message_id} delivered by ${e.channel}`
        : e.outcome === 'dead' ? `Message ${e.message_id} NOT delivered (dead): ${e.error || 'no reason given'}`
          : `Message ${e.message_id} not delivered yet (attempt ${e.attempt}): ${e.error || ''}`,
      cls: e.outcome === 'delivered' ? 'good' : 'bad',
      detail: e,
    };
    case 'progress_link_revoked': return { who: e.by, what: 'Revoked the customer progress link; a new one replaces it' };
    case 'retried': return { who: e.by, what: `Retried in ${e.stage} after: ${e.failure}`, cls: 'good' };
    default: {
      const branch = describeBranchEvent(e) || describeFamilyEvent(e);
      if (branch) return branch;
      const { seq, at, type, ...rest } = e;
      return { who: 'engine', what: String(type).replace(/_/g, ' '), detail: rest };
    }
  }
}
