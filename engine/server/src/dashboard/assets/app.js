// The shell: hash routes (#/board, #/inbox, #/work, #/search?q=, #/instance/<id>, #/figures/<workflow>,
// #/workflows, #/plugins, #/schedules, #/signin), the navigation, the search box, sign-out, the 401
// banner and the one-second clock.

import { session } from './api.js';
import { h, replace, tick } from './dom.js';
import * as signin from './signin.js';
import * as board from './board.js';
import * as inbox from './inbox.js';
import * as instance from './instance.js';
import * as workflows from './workflows.js';
import * as plugins from './plugins.js';
import * as search from './search.js';
import * as work from './work.js';
import * as schedules from './schedules.js';
import * as figures from './figures.js';
import * as start from './startform.js';

const PAGES = { signin, board, inbox, instance, workflows, plugins, search, work, schedules, figures, start };

/** `#/page/arg?x=1` as {page, args, params}. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const cut = raw.indexOf('?');
  const path = cut < 0 ? raw : raw.slice(0, cut);
  const query = cut < 0 ? '' : raw.slice(cut + 1);
  const parts = path.split('/').filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  return { page: parts[0] || 'board', args: parts.slice(1), params: new URLSearchParams(query) };
}

let current = null;
let first = true;

const ctx = {
  navigate(hash) { location.hash = hash; },
  signOut() {
    session.clear();
    location.hash = '#/signin';
  },
};

function route() {
  const r = parseHash();
  const main = document.getElementById('main');
  if (current && current.unmount) current.unmount();
  current = null;
  document.getElementById('banner').hidden = true;
  if (!session.token && r.page !== 'signin') {
    const next = location.hash && location.hash !== '#/signin' ? location.hash : '';
    location.replace(next ? `#/signin?next=${encodeURIComponent(next)}` : '#/signin');
    return;
  }
  const signedIn = Boolean(session.token) && r.page !== 'signin';
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('session').hidden = !signedIn;
  document.getElementById('search').hidden = !signedIn;
  const navPage = r.page === 'instance' || r.page === 'start' ? 'board' : r.page;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === navPage) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  const page = PAGES[r.page];
  if (!page) {
    replace(main, h('h1', {}, 'No such page'), h('p', {}, h('a', { href: '#/board' }, 'Go to the board')));
  } else {
    current = page.mount(main, r, ctx) || null;
  }
  // After a navigation, move focus to the new page so keyboard and screen reader users
  // start there; the first load leaves focus where the browser put it.
  if (!first) main.focus({ preventScroll: true });
  first = false;
  window.scrollTo(0, 0);
}

window.addEventListener('hashchange', route);

window.addEventListener('ws:unauthorized', (e) => {
  if (parseHash().page === 'signin') return;
  const banner = document.getElementById('banner');
  replace(banner,
    h('strong', {}, 'The API refused the token (401). '),
    e.detail && e.detail.message ? `${e.detail.message}. ` : '',
    h('button', { type: 'button', onclick: ctx.signOut }, 'Sign in again'));
  banner.hidden = false;
});

document.getElementById('signout').addEventListener('click', ctx.signOut);

// "Skip to content": the hash names pages here, so the link moves focus itself.
document.querySelector('.skip[href="#main"]').addEventListener('click', (e) => {
  e.preventDefault();
  document.getElementById('main').focus();
});

// The search box of every page: a search is a page of its own, so it can be linked.
document.getElementById('search').addEventListener('submit', (e) => {
  e.preventDefault();
  const q = document.getElementById('q').value.trim();
  location.hash = `#/search?q=${encodeURIComponent(q)}`;
});

setInterval(() => tick(document), 1000);

route();
