// Live updates by polling: one request set at a time, the next one `ms` after the last
// finished (a slow server is never flooded), paused while the tab is hidden.

function live(stateName, text) {
  const el = document.getElementById('live');
  if (!el) return;
  el.dataset.state = stateName;
  el.textContent = text;
}

/**
 * Runs `fn(signal)` now and every `ms` after it settles. Returns `{now(), stop()}`:
 * `now()` refreshes at once (after the run in flight, if any); `stop()` ends it and aborts
 * the run in flight.
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
    if (document.hidden) { live('paused', 'Paused'); return; }
    running = true;
    ctrl = new AbortController();
    try {
      await fn(ctrl.signal);
      live('ok', 'Live');
      const el = document.getElementById('live');
      if (el) el.title = `Live updates every ${ms / 1000} s; last at ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (e.name !== 'AbortError') live('error', 'Offline');
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
    stop() {
      stopped = true;
      clearTimeout(timer);
      if (ctrl) ctrl.abort();
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}
