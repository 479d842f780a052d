// Schedules: cron-timed starts of a workflow (issue 19) with their zone, catch-up policy,
// the last slot handled and the next run; administrators pause and resume them here.

import { api } from './api.js';
import { h, replace, time, problem, announce } from './dom.js';
import { poll } from './poll.js';

const REFRESH_MS = 5000;

export function mount(root, route, ctx) {
  const error = h('div');
  const table = h('div');
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Schedules')), error,
    h('section', { 'aria-labelledby': 'h-schedules' },
      h('h2', { id: 'h-schedules' }, 'Scheduled starts'),
      h('p', { class: 'help' }, 'Each slot of a schedule starts one instance of its workflow. Schedules are set with PUT /v1/schedules/{id} (administrators).'),
      table));

  async function load(signal) {
    try {
      const { items } = await api('/v1/schedules', { signal });
      replace(error);
      replace(table, items.length
        ? h('table', { class: 'list' },
          h('thead', {}, h('tr', {}, ['Schedule', 'Cron', 'Zone', 'Workflow', 'Catch-up', 'Last slot', 'Next run', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, items.map(row)))
        : h('p', { class: 'muted' }, 'No schedules yet.'));
    } catch (err) {
      if (err.name !== 'AbortError') replace(error, problem(err, { onSignIn: ctx.signOut }));
    }
  }

  function row(s) {
    const action = s.paused ? 'resume' : 'pause';
    const button = h('button', { type: 'button' }, s.paused ? 'Resume' : 'Pause');
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await api(`/v1/schedules/${encodeURIComponent(s.id)}/${action}`, { method: 'POST' });
        announce(`Schedule ${s.id} ${s.paused ? 'resumed' : 'paused'}.`);
        poller.now();
      } catch (err) {
        replace(error, problem(err, { onSignIn: ctx.signOut }));
        button.disabled = false;
      }
    });
    return h('tr', { dataset: { schedule: s.id } },
      h('td', {}, h('code', {}, s.id)),
      h('td', {}, h('code', {}, s.cron)),
      h('td', {}, s.zone),
      h('td', {}, h('code', {}, s.workflow)),
      h('td', {}, s.catch_up === 'last' ? 'Last missed slot' : 'Skip missed slots'),
      h('td', {}, time(s.last_slot)),
      h('td', {}, s.paused ? h('span', { class: 'muted' }, 'Paused') : time(s.next_run, { rel: true })),
      h('td', {}, button));
  }

  const poller = poll(load, REFRESH_MS);
  return { unmount: () => poller.stop() };
}
