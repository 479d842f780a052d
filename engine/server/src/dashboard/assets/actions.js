// What an operator can do on an instance page: send an event the current stage accepts
// (from the definition; each with a small JSON data form), send any other event, cancel
// with a reason, retry a failed instance. A refusal (409: not accepted here, no branch
// holds for the data, not running) is shown beside the form that sent it, in the API's
// words. Each form keeps one Idempotency-Key until it succeeds or is edited, so a double
// click applies once. The panel is rebuilt only when the stage or status changes, so
// what someone is typing survives a refresh.

import { api, newKey } from './api.js';
import { h, replace, problem, announce } from './dom.js';

/**
 * The actions panel. `refresh()` is called after a command succeeded.
 * Returns {el, update(inst, def)}.
 */
export function actionsPanel(instanceId, { refresh, ctx }) {
  const el = h('div', { class: 'actions' });
  const path = `/v1/instances/${encodeURIComponent(instanceId)}`;
  let shown = '';

  function update(inst, def) {
    const sig = `${inst.status}/${inst.stage}/${inst.version}`;
    if (sig === shown) return;
    shown = sig;
    const stage = (def.stages || {})[inst.stage] || {};
    if (inst.status === 'running') {
      const accepted = Object.keys(stage.on || {}).sort();
      replace(el,
        accepted.length
          ? [h('h3', {}, `Events ${stage.title || inst.stage} accepts`),
            h('ul', { class: 'plain event-forms' }, accepted.map((name) => h('li', {}, eventForm(name, stage.on[name]))))]
          : h('p', { class: 'muted' }, `Stage ${stage.title || inst.stage} takes no events${stage.kind === 'approval' ? '; its approvers decide in the inbox' : ''}.`),
        h('details', { class: 'other-event' }, h('summary', {}, 'Send another event'), eventForm(null)),
        cancelForm());
    } else if (inst.status === 'failed') {
      replace(el, retryForm(inst));
    } else {
      replace(el, h('p', { class: 'muted' }, `The instance is ${inst.status}; nothing more can be done to it.`));
    }
  }

  /** Sends `body` to `to`; shows the outcome in `out`. */
  async function command(to, body, out, button, key) {
    button.disabled = true;
    replace(out);
    try {
      const r = await api(`${path}/${to}`, { method: 'POST', json: body, key });
      const msg = `Done: now ${r.status} in ${r.stage}.`;
      replace(out, h('p', { class: 'ok', role: 'status' }, msg));
      announce(msg);
      refresh();
      return true;
    } catch (err) {
      replace(out, problem(err, { onSignIn: ctx.signOut }));
      return false;
    } finally {
      button.disabled = false;
    }
  }

  function eventForm(name, branches) {
    let key = newKey();
    const slug = (name || 'other').replace(/[^A-Za-z0-9_-]/g, '_');
    const nameInput = name ? null : h('input', { type: 'text', name: 'event', id: 'ev-other-name', required: true, placeholder: 'event name' });
    const data = h('textarea', { name: 'data', rows: 2, id: `ev-${slug}-data`, spellcheck: 'false' }, '{}');
    const out = h('div', { class: 'action-result', 'aria-live': 'polite' });
    const send = h('button', { type: 'submit' }, name ? `Send ${name}` : 'Send');
    const hints = (Array.isArray(branches) ? branches : branches ? [branches] : [])
      .map((b) => (b && b.when ? `when ${b.when} → ${b.to}` : b && b.to ? `→ ${b.to}` : '')).filter(Boolean);
    const form = h('form', { class: 'event-form', dataset: { event: name || '' } },
      name ? h('strong', {}, name) : h('label', { for: 'ev-other-name' }, 'Event name '), nameInput,
      hints.length ? h('span', { class: 'muted' }, ` (${hints.join('; ')})`) : null,
      h('label', { for: `ev-${slug}-data`, class: 'small' }, 'Data (JSON)'), data, send, out);
    form.addEventListener('input', () => { key = newKey(); });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const type = name || nameInput.value.trim();
      if (!type) { replace(out, h('p', { class: 'error', role: 'alert' }, 'Name the event.')); nameInput.focus(); return; }
      let parsed;
      try { parsed = data.value.trim() ? JSON.parse(data.value) : null; } catch (err) {
        replace(out, h('p', { class: 'error', role: 'alert' }, `The data is not JSON: ${err.message}`));
        data.focus();
        return;
      }
      if (await command('events', { type, data: parsed }, out, send, key)) key = newKey();
    });
    return form;
  }

  function cancelForm() {
    let key = newKey();
    const reason = h('input', { type: 'text', name: 'reason', id: 'cancel-reason', required: true, size: 40, placeholder: 'why, for the history' });
    const out = h('div', { class: 'action-result', 'aria-live': 'polite' });
    const go = h('button', { type: 'submit', class: 'danger' }, 'Cancel instance');
    const form = h('form', { class: 'cancel-form' },
      h('h3', {}, 'Cancel'),
      h('label', { for: 'cancel-reason' }, 'Reason '), reason, ' ', go, out);
    form.addEventListener('input', () => { key = newKey(); });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!reason.value.trim()) { replace(out, h('p', { class: 'error', role: 'alert' }, 'Give a reason: it goes in the history.')); reason.focus(); return; }
      await command('cancel', { reason: reason.value.trim() }, out, go, key);
    });
    return form;
  }

  function retryForm(inst) {
    let key = newKey();
    const out = h('div', { class: 'action-result', 'aria-live': 'polite' });
    const go = h('button', { type: 'submit', class: 'primary' }, 'Retry');
    const form = h('form', { class: 'retry-form' },
      h('h3', {}, 'Failed'),
      h('p', {}, h('span', { class: 'error' }, inst.failure || 'no reason recorded')),
      h('p', { class: 'muted' }, `Retry runs the step that failed again, in ${inst.stage}, on version ${inst.version}; what ran before it is not repeated.`),
      go, out);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      // A retry that fails again leaves the same page: the next click is a new request.
      if (await command('retry', undefined, out, go, key)) key = newKey();
    });
    return form;
  }

  return { el, update };
}
