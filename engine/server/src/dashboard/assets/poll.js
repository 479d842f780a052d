// Refreshing by polling: one request set at a time, the next one `ms` after the last
// finished (a slow server is never flooded), paused while the tab is hidden. Pages that
// follow a live stream (live.js) poll rarely and refresh on each change instead; the
// header's dot says which ("Live" or "Polling"), and "Offline" only when the server did
// not answer at all - a 403 or 404 is the page's business, not the connection's.

import { liveDot, isStreaming } from './live.js';

/**
 * Runs `fn(signal)` now and every `ms` after it settles. Returns `{now(), every(ms), stop()}`:
 * `now()` refreshes at once (after the run in flight, if any); `every(ms)` changes the
 * interval; `stop()` ends it and aborts the run in flight.
 */
export function poll(fn, ms) {
  let timer = null;
  let stopped = false;
  let running = false;
  let again = false;
  let ctrl = null;

  async function run() {
    if (stopped) return;
    if (running) { again = true; return; }
    clearTimeout(timer);
    if (document.hidden) { liveDot('paused', 'Paused while the tab is hidden'); return; }
    running = true;
    ctrl = new AbortController();
    try {
      await fn(ctrl.signal);
      const streaming = isStreaming();
      liveDot(streaming ? 'live' : 'polling', streaming
        ? `Live: changes arrive as they are committed; last read at ${new Date().toLocaleTimeString()}`
        : `Reading again every ${ms / 1000} s; last at ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      // Only an unanswered request means the server is unreachable.
      if (e.name !== 'AbortError' && !e.status) liveDot('offline', 'The server did not answer');
    } finally {
      running = false;
    }
    if (stopped) return;
    if (again) { again = false; run(); return; }
    timer = setTimeout(run, ms);
  }

  const onVisibility = () => { if (!document.hidden) run(); };
  document.addEventListener('visibilitychange', onVisibility);
  run();
  return {
    now: run,
    every(next) {
      if (next === ms) return;
      ms = next;
      if (!running && !stopped) { clearTimeout(timer); timer = setTimeout(run, ms); }
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      if (ctrl) ctrl.abort();
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}
