// Live changes over server-sent events (GET /v1/.../stream), read with fetch so the
// bearer token goes in the Authorization header (EventSource cannot send one, and a token
// in a URL would end up in logs). A `change` event calls onChange; `resync` (this
// connection fell behind) and every reconnect call onResync, so the page reads again what
// it shows. When the stream cannot be opened or drops - the server restarts, a proxy
// cuts it, the server is at its stream cap (503) - it reconnects with a growing delay
// (1 s doubling to 30 s) and the page's polling carries on meanwhile.

import { session } from './api.js';

/** Sets the header's live dot: 'live' (streaming), 'polling', 'paused' or 'offline'. */
export function liveDot(state, title) {
  const el = document.getElementById('live');
  if (!el) return;
  const words = { live: 'Live', polling: 'Polling', paused: 'Paused', offline: 'Offline' };
  el.dataset.state = state === 'live' ? 'ok' : state === 'offline' ? 'error' : state;
  el.dataset.mode = state;
  el.textContent = words[state] || state;
  if (title) el.title = title;
}

let streaming = 0;
/** True while at least one stream of this page is open. */
export const isStreaming = () => streaming > 0;

/**
 * Follows the stream at `path`. Returns {stop()}.
 * onChange(change) per `change`; onResync() after a lag or a reconnect; onOpen(open)
 * with true when the stream is open and false when it dropped.
 */
export function follow(path, { onChange, onResync, onOpen } = {}) {
  let stopped = false;
  let ctrl = null;
  let delay = 1000;
  let timer = null;
  let wasOpen = false;

  const setOpen = (open) => {
    if (open === wasOpen) return;
    wasOpen = open;
    streaming += open ? 1 : -1;
    if (onOpen) onOpen(open);
  };

  async function connect(reconnect) {
    if (stopped) return;
    ctrl = new AbortController();
    try {
      const headers = { accept: 'text/event-stream' };
      if (session.token) headers.authorization = `Bearer ${session.token}`;
      const res = await fetch(path, { headers, signal: ctrl.signal, cache: 'no-store' });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      await read(res.body.getReader(), (type, data) => {
        if (type === 'ready') {
          setOpen(true);
          delay = 1000;
          if (reconnect && onResync) onResync();
        } else if (type === 'change' && onChange) {
          try { onChange(JSON.parse(data)); } catch { /* a malformed event is skipped */ }
        } else if (type === 'resync' && onResync) {
          onResync();
        }
      });
    } catch (e) {
      if (stopped || e.name === 'AbortError') return;
    }
    setOpen(false);
    if (stopped) return;
    timer = setTimeout(() => connect(true), delay);
    delay = Math.min(delay * 2, 30000);
  }

  connect(false);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      if (ctrl) ctrl.abort();
      setOpen(false);
    },
  };
}

/** Reads SSE frames from `reader` until it ends, calling emit(type, data) per event. */
async function read(reader, emit) {
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, '');
      let type = 'message';
      const data = [];
      for (const line of frame.split(/\r?\n/)) {
        if (line.startsWith(':')) continue; // keep-alive comment
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') type = val;
        else if (field === 'data') data.push(val);
      }
      if (data.length) emit(type, data.join('\n'));
    }
  }
}

/**
 * A page's refresh driven by a stream with polling as the fallback: `poller` (from
 * poll.js) is asked to refresh on a change - 150 ms after it, so a burst is one refresh,
 * and at most once a second, so a busy server's stream of changes costs each page one
 * refresh a second - and polls every `slowMs` while the stream is open, every `fastMs`
 * while not.
 */
export function drive(poller, path, { fastMs, slowMs = 60000, matches = () => true } = {}) {
  let pending = null;
  let last = 0;
  const soon = () => {
    if (pending) return;
    const wait = Math.max(150, 1000 - (Date.now() - last));
    pending = setTimeout(() => { pending = null; last = Date.now(); poller.now(); }, wait);
  };
  const stream = follow(path, {
    onChange: (c) => { if (matches(c)) soon(); },
    onResync: soon,
    onOpen: (open) => {
      poller.every(open ? slowMs : fastMs);
      liveDot(open ? 'live' : 'polling', open
        ? 'Live: changes arrive as they are committed'
        : `The live stream is not connected; reading again every ${fastMs / 1000} s`);
    },
  });
  return { stop() { clearTimeout(pending); stream.stop(); } };
}
