// The approvals inbox: the caller's open tasks, each approved or rejected with a comment.
// Tasks are updated in place when the list refreshes, so a comment being typed survives.

import { api } from './api.js';
import { h, replace, time, deadline, slaBadge, problem, announce, shortId, fieldList } from './dom.js';
import { poll } from './poll.js';

const REFRESH_MS = 8000;

export function mount(root, route, ctx) {
  const error = h('div');
  const note = h('p', { class: 'summary' });
  const list = h('ul', { class: 'inbox', 'aria-label': 'Open tasks' });
  const done = h('div', { class: 'decided', 'aria-live': 'polite' });
  const rows = new Map(); // task id -> <li>

  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Approvals')),
    h('p', { class: 'help' }, 'Tasks open for your approver roles. Your decision and comment go into the instance’s history with your token’s name.'),
    error, done, note, list);

  async function refresh(signal) {
    try {
      const { items } = await api('/v1/approvals', { signal });
      replace(error);
      const ids = new Set(items.map((t) => t.id));
      for (const [taskId, li] of rows) {
        if (!ids.has(taskId) && !li.dataset.busy) { li.remove(); rows.delete(taskId); }
      }
      let previous = null;
      for (const t of items) {
        let li = rows.get(t.id);
        if (!li) { li = row(t); rows.set(t.id, li); }
        if (previous ? previous.nextSibling !== li : list.firstChild !== li) {
          if (previous) previous.after(li); else list.prepend(li);
        }
        previous = li;
      }
      replace(note, items.length
        ? `${items.length} open task${items.length === 1 ? '' : 's'}, oldest first.`
        : 'No open tasks for your roles.');
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      replace(error, problem(err, { onSignIn: ctx.signOut }));
      throw err;
    }
  }

  function row(t) {
    const cid = `comment-${t.id.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
    const comment = h('textarea', { id: cid, rows: 2, maxlength: 2000, placeholder: 'Why (kept in the history)' });
    const out = h('div', { class: 'task-out' });
    const approve = h('button', { type: 'button', class: 'approve', onclick: () => decide('approve') }, 'Approve');
    const reject = h('button', { type: 'button', class: 'reject', onclick: () => decide('reject') }, 'Reject');
    const who = t.role ? `role ${t.role}` : `user ${t.user}`;
    const li = h('li', { class: 'task-card', dataset: { task: t.id, instance: t.instance_id } },
      h('h2', {}, t.key ? `${t.key} · ` : '', `${t.workflow} · ${t.stage} · level ${t.level}`),
      fieldList(t, t.for_approval, 'fields task-fields'),
      h('p', { class: 'task-meta' },
        'Instance ', h('a', { href: `#/instance/${encodeURIComponent(t.instance_id)}`, title: t.instance_id }, h('code', {}, shortId(t.instance_id))),
        ` · for ${who} · opened `, time(t.opened_at, { rel: true }),
        ...(t.deadline ? [' · ', deadline(t.deadline), ' ', slaBadge(t.sla)] : [])),
      h('label', { for: cid }, 'Comment'),
      comment,
      h('div', { class: 'actions' }, approve, reject),
      out);

    async function decide(decision) {
      li.dataset.busy = '1';
      approve.disabled = true;
      reject.disabled = true;
      replace(out, h('p', { class: 'muted' }, decision === 'approve' ? 'Approving…' : 'Rejecting…'));
      try {
        const body = { decision };
        if (comment.value.trim()) body.comment = comment.value.trim();
        const inst = await api(`/v1/approvals/${encodeURIComponent(t.id)}`, { method: 'POST', json: body, command: true });
        const msg = `${decision === 'approve' ? 'Approved' : 'Rejected'} ${t.stage} (level ${t.level}) of instance ${t.instance_id}: it is now ${inst.status}${inst.status === 'running' ? ` in ${inst.stage}` : ''}${inst.outcome ? ` (${inst.outcome})` : ''}.`;
        const next = li.nextElementSibling || li.previousElementSibling;
        li.remove();
        rows.delete(t.id);
        done.prepend(h('p', { class: `decided-line ${decision}` }, msg, ' ', h('a', { href: `#/instance/${encodeURIComponent(t.instance_id)}` }, 'See its history')));
        announce(msg);
        const focusTarget = next && next.querySelector('textarea');
        if (focusTarget) focusTarget.focus();
        poller.now();
      } catch (err) {
        delete li.dataset.busy;
        approve.disabled = false;
        reject.disabled = false;
        replace(out, problem(err, { onSignIn: ctx.signOut }));
        if (err.status === 409 || err.status === 404) poller.now();
      }
    }
    return li;
  }

  const poller = poll(refresh, REFRESH_MS);
  return { unmount: () => poller.stop() };
}
