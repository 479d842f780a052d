// The customer's progress link on an instance page: the signed URL an operator can give
// the customer (notifier plugins get it too, as instance.progress_link), and a button that
// revokes it - every link given out stops working - and shows the new one.

import { api } from './api.js';
import { h, replace, problem, announce } from './dom.js';

/** The panel for instance `id`: {el}. Loads the link once. */
export function progressLinkPanel(id, ctx) {
  const path = `/v1/instances/${encodeURIComponent(id)}/progress-link`;
  const out = h('div', { class: 'progress-link' }, h('p', { class: 'muted' }, 'Loading…'));

  function show(link) {
    replace(out,
      h('p', {}, h('a', { href: link.url, class: 'customer-link', target: '_blank', rel: 'noopener noreferrer' }, link.url)),
      h('p', { class: 'muted' }, `Shows the customer the step titles and what the workflow marks customer-visible; works until ${link.expires_days_after_end} days after the instance ends.`),
      h('button', { type: 'button', class: 'revoke-link', onclick: revoke }, 'Revoke and make a new link'));
  }

  async function revoke(e) {
    e.target.disabled = true;
    try {
      show(await api(path, { method: 'DELETE' }));
      announce('The old link no longer works; a new one is shown.');
    } catch (err) {
      replace(out, problem(err, { onSignIn: ctx.signOut }));
    }
  }

  api(path).then(show, (err) => replace(out, problem(err, { onSignIn: ctx.signOut })));
  return { el: out };
}
