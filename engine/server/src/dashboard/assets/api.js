// The JSON API client: the token from sessionStorage as a bearer token, problem+json errors
// as ApiError, and the server's clock (from the Date header) for countdowns.

const TOKEN = 'waystation.token';

/** The token of this tab. sessionStorage: it ends with the tab and is never sent elsewhere. */
export const session = {
  get token() { return sessionStorage.getItem(TOKEN); },
  set(token) { sessionStorage.setItem(TOKEN, token); },
  clear() { sessionStorage.removeItem(TOKEN); },
};

/** An answer that was not 2xx, with the problem details the API sent. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
  /** `[{pointer|parameter, message, line?, column?}]` */
  get errors() { return Array.isArray(this.problem.errors) ? this.problem.errors : []; }
  get title() {
    const t = this.problem.title;
    return this.status ? `${this.status} ${t || ''}`.trim() : (t || 'Error');
  }
}

// Milliseconds to add to Date.now() to get the server's time.
let skew = 0;
/** The server's idea of now, in milliseconds. */
export const serverNow = () => Date.now() + skew;

/** A random idempotency key (crypto.getRandomValues works on plain http too). */
export function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return 'ui-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** `path` with the non-empty entries of `params` as its query. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/**
 * Calls the API. `json` is sent as the JSON body; `body` and `type` send anything else.
 * Commands get an Idempotency-Key, so a retried click applies once; `key` sends a given one
 * (a form's, so a double submit of the same form applies once too).
 * Resolves to the parsed JSON (or text); rejects with ApiError.
 */
export async function api(path, { method = 'GET', json, body, type, signal, command = false, key } = {}) {
  const headers = { accept: 'application/json, application/problem+json' };
  const token = session.token;
  if (token) headers.authorization = `Bearer ${token}`;
  if (json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (type) {
    headers['content-type'] = type;
  }
  if (key) headers['idempotency-key'] = key;
  else if (command) headers['idempotency-key'] = newKey();
  let res;
  try {
    res = await fetch(path, { method, headers, body, signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { title: 'The server did not answer', detail: `${e.message}. Is it running?` });
  }
  const date = Date.parse(res.headers.get('date') || '');
  // The header has whole seconds: follow it only when the clocks differ by more than that.
  const measured = date + 500 - Date.now();
  if (!Number.isNaN(date) && Math.abs(measured - skew) > 1500) skew = measured;
  const contentType = res.headers.get('content-type') || '';
  const text = res.status === 204 ? '' : await res.text();
  let data = text;
  if (contentType.includes('json') && text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok) {
    const problem = data && typeof data === 'object' ? data : { title: res.statusText, detail: String(data || '') };
    const err = new ApiError(res.status, problem);
    if (res.status === 401) window.dispatchEvent(new CustomEvent('ws:unauthorized', { detail: err }));
    throw err;
  }
  return data;
}
