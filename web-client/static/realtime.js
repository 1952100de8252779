// Client of the `/ws` realtime protocol (docs/protocol.md): one websocket,
// reconnected with exponential backoff (0.5 s doubling to 15 s, with jitter
// so a server restart is not met by every viewer at the same instant).
//
// - `on(type, fn)` listens to server messages by `type`; the pseudo types
//   `open` and `close` report the connection; `rt.identity` is who the
//   server last said we are (its `identity` message).
// - `request(msg, replyType)` sends and resolves with the first reply of that
//   type, or rejects with a RealtimeError from the server's `error` message
//   (matched by its `ref`, else to the oldest pending request: the server
//   answers one connection's messages in order).
// - `auth(token)` and `join(stream)` are remembered and replayed after a
//   reconnect, so pages only react to `identity` and `joined`.

export class RealtimeError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

const MAX_BACKOFF = 15_000;
/// `joinedAs` while the join waits behind an `auth` the server has not answered.
const AFTER_AUTH = Symbol('after auth');

export class Realtime {
  constructor({ path = '/ws' } = {}) {
    this.path = path;
    this.ws = null;
    this.listeners = new Map();
    this.pending = [];
    this.backoff = 500;
    this.token = null;
    this.stream = null;
    this.identity = null;
    this.joinedAs = null; // identity id when the last join was sent
    this.authPending = false;
    this.retryTimer = null;
    this.closed = false;
  }

  get open() { return this.ws?.readyState === WebSocket.OPEN; }

  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  emit(type, msg) {
    for (const fn of this.listeners.get(type) || []) {
      try { fn(msg); } catch (err) { console.error(`relaycast: ${type} handler failed`, err); }
    }
  }

  connect() {
    this.closed = false;
    clearTimeout(this.retryTimer);
    const url = new URL(this.path, location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.backoff = 500;
      this.authPending = false;
      if (!this.token) this.identity = null;
      if (this.token) this.sendAuth();
      if (this.stream) this.sendJoin();
      this.emit('open');
    };
    ws.onmessage = (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch { return; }
      if (typeof msg?.type !== 'string') return;
      if (msg.type === 'identity') {
        this.identity = msg.identity;
        // What `joined` says depends on who we are (our own like): join
        // again when the identity changed after joining.
        if (this.joinedAs === AFTER_AUTH) this.joinedAs = msg.identity.id;
        else if (this.stream && this.joinedAs !== msg.identity.id) this.sendJoin();
      }
      this.settle(msg);
      this.emit(msg.type, msg);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const err = new RealtimeError('disconnected', 'The realtime connection closed.');
      for (const p of this.pending.splice(0)) p.reject(err);
      this.emit('close', event);
      if (this.closed) return;
      const delay = this.backoff * (0.75 + Math.random() * 0.5);
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF);
      this.retryTimer = setTimeout(() => this.connect(), delay);
    };
    return this;
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.ws?.close(1000, 'page closed');
  }

  /// Resolves once the socket is open (rejects after `ms`).
  whenOpen(ms = 3000) {
    if (this.open) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = this.on('open', () => { clearTimeout(timer); off(); resolve(); });
      const timer = setTimeout(() => { off(); reject(new RealtimeError('timeout', 'The realtime connection did not open.')); }, ms);
    });
  }

  /// Sends when open; returns whether it was sent.
  send(msg) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /// Sends and waits for the reply of type `replyType` (or the error).
  request(msg, replyType, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      if (!this.send(msg)) {
        reject(new RealtimeError('disconnected', 'Not connected to the server.'));
        return;
      }
      const entry = { type: msg.type, replyType, resolve, reject };
      entry.timer = setTimeout(() => {
        this.pending = this.pending.filter((p) => p !== entry);
        reject(new RealtimeError('timeout', `No answer to ${msg.type}.`));
      }, timeoutMs);
      this.pending.push(entry);
    });
  }

  settle(msg) {
    let i;
    if (msg.type === 'error') {
      i = this.pending.findIndex((p) => (msg.ref ? p.type === msg.ref : true));
    } else {
      i = this.pending.findIndex((p) => p.replyType === msg.type);
    }
    if (i < 0) return;
    const [p] = this.pending.splice(i, 1);
    clearTimeout(p.timer);
    if (msg.type === 'error') p.reject(new RealtimeError(msg.code, msg.message));
    else p.resolve(msg);
  }

  sendAuth() {
    this.authPending = true;
    const token = this.token;
    this.request({ type: 'auth', token }, 'identity').then(() => {
      this.authPending = false;
    }, (err) => {
      this.authPending = false;
      // A join sent meanwhile was handled without an identity.
      if (this.joinedAs === AFTER_AUTH) this.joinedAs = null;
      err.token = token;
      if (err.code !== 'disconnected' && err.code !== 'timeout') this.emit('auth.failed', err);
    });
  }

  /// Presents a token now and after every reconnect.
  auth(token) {
    if (token === this.token && (this.identity || this.authPending)) return;
    this.token = token;
    if (this.open) this.sendAuth();
  }

  /// Who the server will take us for when it handles a join sent now (it
  /// handles one connection's messages in order).
  joiningAs() {
    return this.authPending ? AFTER_AUTH : this.identity?.id ?? null;
  }

  sendJoin() {
    this.joinedAs = this.joiningAs();
    this.send({ type: 'join', stream: this.stream });
  }

  /// Joins a broadcast now and after every reconnect (listeners hear every
  /// `joined`); resolves with the first one.
  join(stream) {
    this.stream = stream;
    this.joinedAs = this.joiningAs();
    return this.request({ type: 'join', stream }, 'joined');
  }
}
