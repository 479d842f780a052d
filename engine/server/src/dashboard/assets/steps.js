// The instance page's post-mortem: every stage visit with its time against its deadline,
// the response time (entering to the first action) and who acted when, from
// GET /v1/instances/{id}/postmortem.

import { h, time, duration } from './dom.js';

const sec = (s) => duration(s * 1000);

/** The table of `pm.visits`, newest last. */
export function steps(pm) {
  if (!pm.visits.length) return h('p', { class: 'muted' }, 'No stage entered yet.');
  return h('table', { class: 'list steps' },
    h('thead', {}, h('tr', {}, ['Stage', 'Entered', 'Time in stage', 'Deadline', 'Response', 'Who acted'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, pm.visits.map((v) => {
      const late = v.deadline && (v.left_at || null) && Date.parse(v.left_at) > Date.parse(v.deadline);
      return h('tr', { class: v.breached_at ? 'breach' : v.at_risk_at ? 'risk' : '', dataset: { stage: v.stage } },
        h('th', { scope: 'row' }, v.stage),
        h('td', {}, time(v.entered_at)),
        h('td', { class: 'spent' }, sec(v.seconds), v.left_at ? '' : ' so far'),
        h('td', { class: 'deadline' }, v.deadline
          ? [time(v.deadline), v.breached_at ? [' · ', h('strong', {}, 'breached'), late ? ` by ${duration(Date.parse(v.left_at) - Date.parse(v.deadline))}` : ''] : v.at_risk_at ? ' · went at risk' : ' · met']
          : h('span', { class: 'muted' }, 'none')),
        h('td', { class: 'response' }, v.response_seconds != null ? sec(v.response_seconds) : h('span', { class: 'muted' }, '–')),
        h('td', { class: 'acts' }, v.acts.length
          ? h('ul', { class: 'plain' }, v.acts.map((a) => h('li', {}, h('strong', {}, a.by || 'unknown'), ` ${a.what} after ${sec(a.after_seconds)}`)))
          : h('span', { class: 'muted' }, 'nobody')));
    })));
}
