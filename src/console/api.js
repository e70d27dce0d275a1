// The console's only way to the server: the public API (docs/openapi.yaml), with the bearer
// token the operator signed in with. The token lives in this tab's session storage (gone when
// the tab closes) and in memory; it never goes into a URL.

const KEY = 'wachat.console';

export const session = {
  load() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY) || 'null');
    } catch {
      return null;
    }
  },
  save(value) {
    sessionStorage.setItem(KEY, JSON.stringify(value));
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error || {};
    super(error.message || `The server answered ${status}.`);
    this.status = status;
    this.code = error.code || 'http_error';
    this.graph = error.graph || null;
    this.body = body;
  }
}

// Meta's refusal in words: what the operator can act on, with the code for a search.
export function describeError(err) {
  if (!(err instanceof ApiError)) return err?.message || String(err);
  if (err.graph) {
    const g = err.graph;
    const text = [...new Set([g.title, g.details].filter(Boolean))].join(': ') || err.message;
    return `${err.message} Meta says: ${text} (code ${g.code}).`;
  }
  return err.message;
}

// `body` goes as JSON; `file` (a File or Blob) goes as it is, with its own type (uploads).
export async function api(path, { method = 'GET', body, file, raw } = {}) {
  const s = session.load();
  const headers = { Accept: 'application/json' };
  if (s?.token) headers.Authorization = `Bearer ${s.token}`;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  } else if (file !== undefined) {
    headers['Content-Type'] = file.type || 'application/octet-stream';
    payload = file;
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, cache: 'no-store', credentials: 'omit' });
  } catch {
    throw new ApiError(0, { error: { code: 'network', message: 'wachat cannot be reached. Check the connection and try again.' } });
  }
  if (raw) return res;
  const text = await res.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!res.ok && res.status !== 202) {
    const err = new ApiError(res.status, json);
    if (res.status === 401) window.dispatchEvent(new CustomEvent('wachat:unauthorized'));
    throw err;
  }
  return { status: res.status, body: json };
}

export const enc = encodeURIComponent;
