// The messages of an instance and where each stands - pending, delivered, retrying (with
// the error and the next attempt) or dead (with the reason) - read from its history
// (message_queued, delivery_attempted, delivery_retried entries), which the outbox
// dispatcher writes with each attempt. A customer message that did not arrive is shown
// as such, in red, not as a neutral "delivery attempted".

import { h, replace, time } from './dom.js';

const WORDS = { pending: 'Pending', delivered: 'Delivered', retrying: 'Retrying', dead: 'Dead' };

/** The panel: {el, add(historyEntries)}. Entries are added oldest first, as they come. */
export function messagesPanel() {
  const el = h('div', { class: 'messages' }, h('p', { class: 'muted' }, 'No messages queued.'));
  const byId = new Map();

  function add(entries) {
    let changed = false;
    for (const e of entries) {
      if (e.type === 'message_queued') {
        byId.set(e.message_id, { id: e.message_id, channel: e.channel, recipient: e.recipient, status: 'pending', at: e.at, attempts: 0 });
        changed = true;
      } else if (e.type === 'delivery_attempted' && byId.has(e.message_id)) {
        const m = byId.get(e.message_id);
        m.status = e.outcome;
        m.attempts = e.attempt;
        m.error = e.error || null;
        m.next = e.next_attempt_at || null;
        m.at = e.at;
        changed = true;
      } else if (e.type === 'delivery_retried' && byId.has(e.message_id)) {
        const m = byId.get(e.message_id);
        Object.assign(m, { status: 'pending', error: null, next: null, at: e.at, retriedBy: e.by });
        changed = true;
      }
    }
    if (changed) render();
  }

  function render() {
    replace(el, h('ul', { class: 'plain message-list' }, [...byId.values()].map((m) => h('li', {
      class: `message msg-${m.status}`, dataset: { message: m.id, status: m.status },
    },
    h('span', { class: `badge msg-badge msg-${m.status}` }, WORDS[m.status] || m.status), ' ',
    h('strong', {}, m.recipient), ` by ${m.channel}`,
    m.attempts ? ` · ${m.attempts} attempt${m.attempts === 1 ? '' : 's'}` : '',
    ' · ', time(m.at, { rel: true }),
    m.error ? h('p', { class: m.status === 'dead' ? 'error' : 'muted' }, m.status === 'dead' ? 'Not delivered: ' : 'Last error: ', m.error) : null,
    m.status === 'retrying' && m.next ? h('p', { class: 'muted' }, 'Next attempt ', time(m.next)) : null,
    m.retriedBy ? h('p', { class: 'muted' }, `Sent again at ${m.retriedBy}'s request`) : null))));
  }

  return { el, add };
}
