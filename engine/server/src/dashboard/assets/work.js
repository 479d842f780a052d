// My work: the running instances whose current stage's work is assigned to the signed-in
// token (claimed by it or given to it by a supervisor), soonest deadline first.

import { api } from './api.js';
import { h, replace, problem } from './dom.js';
import { poll } from './poll.js';
import { card } from './board.js';

const REFRESH_MS = 8000;

export function mount(root, route, ctx) {
  const summary = h('p', { class: 'summary' });
  const list = h('ul', { class: 'cards my-work', 'aria-label': 'My work' });
  const error = h('div');
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'My work')),
    h('p', { class: 'help' }, 'Stages whose work is yours: claimed by you or assigned to you. Finishing or leaving the stage takes it off this list.'),
    error, summary, list);

  async function refresh(signal) {
    try {
      const { items } = await api('/v1/work?limit=200', { signal });
      items.sort((a, b) => (a.deadline || '9999') < (b.deadline || '9999') ? -1 : 1);
      replace(error);
      replace(summary, items.length ? `${items.length} stage${items.length === 1 ? '' : 's'} assigned to you.` : 'Nothing is assigned to you.');
      replace(list, items.map((inst) => h('li', {}, card(inst))));
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      replace(error, problem(err, { onSignIn: ctx.signOut }));
      throw err;
    }
  }

  const poller = poll(refresh, REFRESH_MS);
  return { unmount: () => poller.stop() };
}
