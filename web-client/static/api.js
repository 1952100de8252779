// REST helpers and the viewer's identity. Every request carries the stored
// token (if any) as a Bearer token; every failure becomes an ApiError with
// the server's `{"error","message"}` so pages can show it as it is.
//
// The identity token lives in localStorage under one key per role of use:
// `relaycast.token` for the viewer (guest or account), and a separate key
// for the moderator console, so a moderator watching in another tab keeps
// both.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || `http_${status}`;
  }
}

/// `fetch` with JSON in and out. `token` null sends no Authorization.
export async function api(path, { method = 'GET', body, token = null, signal } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', 'The server cannot be reached.');
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: keep the text */ }
  if (!res.ok) throw new ApiError(res.status, json?.error, json?.message || text.trim() || res.statusText);
  return json;
}

/// A token kept in localStorage, plus who it says we are.
export class TokenStore {
  constructor(key) {
    this.key = key;
    this.identity = null;
  }

  get token() {
    try { return localStorage.getItem(this.key); } catch { return null; }
  }

  set token(value) {
    try {
      if (value) localStorage.setItem(this.key, value);
      else localStorage.removeItem(this.key);
    } catch { /* private mode: the token lives only as long as the page */ }
  }
}

/// The viewer's identity: a guest token made on first use, or an account.
export class Viewer extends TokenStore {
  constructor() {
    super('relaycast.token');
    this.listeners = new Set();
    this.pending = null;
  }

  onChange(fn) { this.listeners.add(fn); }

  async adopt({ token, identity }) {
    this.token = token;
    this.identity = identity || await api('/api/me', { token });
    for (const fn of this.listeners) fn(this.identity, token);
  }

  /// Resolves to a valid token, creating a guest identity when there is none
  /// or the stored one is refused.
  async ensure() {
    if (this.identity && this.token) return this.token;
    if (!this.pending) {
      this.pending = (async () => {
        if (this.token) {
          try {
            await this.adopt({ token: this.token, identity: await api('/api/me', { token: this.token }) });
            return this.token;
          } catch (err) {
            if (err.status !== 401 && err.status !== 403) throw err;
            this.token = null; // expired or signed with another secret
          }
        }
        const made = await api('/api/guest', { method: 'POST', body: {} });
        await this.adopt(made);
        return made.token;
      })().finally(() => { this.pending = null; });
    }
    return this.pending;
  }

  async rename(name) {
    await this.ensure();
    await this.adopt(await api('/api/me', { method: 'PATCH', body: { name }, token: this.token }));
  }

  async login(username, password) {
    await this.adopt(await api('/api/login', { method: 'POST', body: { username, password } }));
  }

  async register(username, password) {
    await this.adopt(await api('/api/accounts', { method: 'POST', body: { username, password } }));
  }

  async logout() {
    this.token = null;
    this.identity = null;
    await this.ensure();
  }
}

/// The stream name from `/watch/{stream}`-style paths.
export const streamFromPath = () => decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '');

/// Roles that get a badge next to their name.
export const ROLE_LABEL = { moderator: 'mod', admin: 'admin', broadcaster: 'host' };

/// `el('li', {className: 'x'}, child, 'text')`: small DOM builder.
/// Keys with a dash (`aria-label`, `data-id`) become attributes.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k.includes('-') || k === 'role') node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c != null && c !== false) node.append(c);
  return node;
}

export function timeOfDay(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}
