// The moderator console (/moderate): a moderator (or admin) token pasted
// once and kept in this browser; send alerts and watch their delivered and
// acknowledged counts; list active alerts; moderate one broadcast's chat
// (delete, mute, slow mode); edit a broadcast's details (the server allows
// that to the broadcaster of that stream or an admin only); start ad breaks
// and read the broadcast's ad figures (modads.js).
//
// Everything goes over the realtime websocket, except what is REST by
// nature (loading alerts and details, saving details); sending an alert
// falls back to `POST /api/alerts` when the websocket is down.
import { TokenStore, api, el } from '/static/api.js';
import { Realtime } from '/static/realtime.js';
import { mountChat } from '/static/chat.js';
import { mountAdConsole } from '/static/modads.js';

const $ = (id) => document.getElementById(id);
const auth = new TokenStore('relaycast.modToken');
const rt = new Realtime();
window.relaycastRealtime = rt; // for tests and debugging
let stream = null;
let identity = null;

const alerts = new Map(); // id → { alert, delivered, acked, row }

function say(node, text, bad = false) {
  node.textContent = text;
  node.className = bad ? 'error' : 'ok';
}

// ---- connection and identity
rt.on('open', () => { $('conn').textContent = 'Connected'; });
rt.on('close', () => { $('conn').textContent = 'Offline — reconnecting…'; });
rt.on('identity', ({ identity: who }) => {
  identity = who;
  const can = who.role === 'moderator' || who.role === 'admin';
  say($('who'), can
    ? `Signed in as ${who.name} (${who.role}).`
    : `This token is for ${who.name}, a ${who.role}: the server will refuse alerts, deletes and mutes.`, !can);
  loadAlerts();
});
rt.on('auth.failed', (err) => say($('who'), `The server refused this token: ${err.message}`, true));

function useToken(token) {
  auth.token = token;
  rt.auth(token);
  if (!rt.ws) rt.connect();
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  useToken($('token').value.trim());
  $('token').value = '';
});
$('token-forget').addEventListener('click', () => {
  auth.token = null;
  identity = null;
  rt.token = null;
  // A fresh, anonymous connection: the old one keeps its authentication.
  rt.close();
  rt.connect();
  say($('who'), 'Token forgotten.');
});

// ---- broadcasts
async function listBroadcasts() {
  try {
    const res = await api('/api/broadcasts?limit=100');
    const items = Array.isArray(res) ? res : res.broadcasts || [];
    $('streams').replaceChildren(...items.map((b) => el('option', { value: b.id }, b.title || b.id)));
    if (!$('stream').value && items.length) $('stream').value = items[0].id;
  } catch { /* the name can still be typed */ }
}

const ads = mountAdConsole({
  form: $('break-form'), seconds: $('break-secs'), result: $('break-result'), body: $('ad-report'),
  refresh: $('ad-report-refresh'), token: () => auth.token, stream: () => stream,
});

async function open(name) {
  stream = name;
  ads.report();
  $('picked').textContent = `Opening ${name}…`;
  const url = new URL(location.href);
  url.searchParams.set('stream', name);
  history.replaceState(null, '', url);
  loadDetails();
  try {
    await rt.whenOpen(5000);
    await rt.join(name);
  } catch (err) {
    $('picked').textContent = `Could not open ${name}: ${err.message}`;
  }
}
rt.on('joined', (m) => {
  const b = m.broadcast || {};
  $('picked').textContent = `${b.title || m.stream} — ${b.live ? `live, ${b.viewers ?? 0} watching` : 'not live'}`;
  $('slow').value = String(m.slow_mode || 0);
});
rt.on('chat.slow', (m) => { $('slow').value = String(m.secs || 0); });
$('pick-form').addEventListener('submit', (e) => {
  e.preventDefault();
  open($('stream').value.trim());
});

// ---- alerts
function row(entry) {
  const a = entry.alert;
  const cells = {
    ends: el('td', { className: 'num' }),
    delivered: el('td', { className: 'num', 'data-field': 'delivered' }),
    acked: el('td', { className: 'num', 'data-field': 'acked' }),
  };
  entry.cells = cells;
  entry.row = el('tr', { 'data-alert-id': String(a.id) },
    el('td', {}, el('span', { className: `sev sev-${a.severity}` }, a.severity)),
    el('td', {}, a.text),
    el('td', {}, a.scope === 'all' ? 'everyone' : a.scope),
    cells.ends, cells.delivered, cells.acked);
  return entry.row;
}

function renderAlert(entry) {
  const left = Math.ceil((entry.alert.expires_ms - Date.now()) / 1000);
  entry.cells.ends.textContent = left > 0 ? `${left} s` : 'ended';
  entry.cells.delivered.textContent = String(entry.delivered ?? '—');
  entry.cells.acked.textContent = String(entry.acked ?? '—');
}

function track(alert, delivered, acked) {
  let entry = alerts.get(alert.id);
  if (!entry) {
    entry = { alert };
    alerts.set(alert.id, entry);
    $('alerts-body').prepend(row(entry));
  }
  // Counts only grow; a late REST answer must not undo a newer push.
  if (delivered != null) entry.delivered = Math.max(entry.delivered ?? 0, delivered);
  if (acked != null) entry.acked = Math.max(entry.acked ?? 0, acked);
  renderAlert(entry);
}

async function loadAlerts() {
  if (!auth.token) return;
  try {
    const res = await api('/api/alerts?active=true', { token: auth.token });
    for (const a of Array.isArray(res) ? res : res.alerts || []) track(a.alert || a, a.delivered, a.acked);
    $('alerts-error').textContent = '';
  } catch (err) {
    $('alerts-error').textContent = `Active alerts could not be loaded: ${err.message}`;
  }
}
setInterval(() => { for (const e of alerts.values()) renderAlert(e); }, 1000);
setInterval(loadAlerts, 10_000);

rt.on('alert.sent', (m) => track(m.alert, m.delivered, null));
rt.on('alert.status', (m) => {
  const entry = alerts.get(m.id);
  if (entry) track(entry.alert, m.delivered, m.acked);
  else loadAlerts();
});

$('alert-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const severity = new FormData(e.target).get('severity');
  const text = $('alert-text').value.trim();
  const ttl = Number($('alert-ttl').value);
  let scope = $('alert-scope').value;
  if (scope === 'stream') {
    if (!stream) { say($('alert-result'), 'Open a broadcast first, or send to everyone.', true); return; }
    scope = stream;
  }
  if (!auth.token) { say($('alert-result'), 'Paste your moderator token first.', true); return; }
  const body = { severity, text, scope, ttl };
  $('alert-send').disabled = true;
  try {
    let sent;
    if (rt.open) {
      sent = await rt.request({ type: 'alert.send', ...body }, 'alert.sent');
    } else {
      const made = await api('/api/alerts', { method: 'POST', body, token: auth.token });
      sent = { alert: made.alert || made, delivered: made.delivered };
      track(sent.alert, sent.delivered, null);
    }
    say($('alert-result'), `Sent ${severity} alert to ${sent.delivered ?? 0} connection(s).`);
    $('alert-text').value = '';
  } catch (err) {
    say($('alert-result'), `Not sent: ${err.message}`, true);
  } finally {
    $('alert-send').disabled = false;
  }
});

// ---- chat moderation
const chatError = $('chat-error');
mountChat(rt, {
  list: $('chat-list'),
  mode: $('chat-mode'),
  me: () => identity,
  actions: (msg) => [
    el('button', {
      type: 'button', className: 'delete', textContent: 'Delete', 'aria-label': `Delete message from ${msg.user?.name}`,
      onclick: () => { if (!rt.send({ type: 'chat.delete', id: msg.id })) chatError.textContent = 'Not connected.'; },
    }),
    el('button', {
      type: 'button', className: 'mute', textContent: 'Mute', 'aria-label': `Mute ${msg.user?.name}`,
      onclick: () => {
        const secs = Math.round(Number($('mute-minutes').value) * 60);
        if (!rt.send({ type: 'chat.mute', user_id: msg.user?.id, secs })) chatError.textContent = 'Not connected.';
      },
    }),
  ],
});
rt.on('chat.muted', (m) => {
  const who = document.querySelector(`#chat-list li[data-user="${CSS.escape(m.user_id)}"] .who`)?.textContent || m.user_id;
  say(chatError, `${who} is muted until ${new Date(m.until).toLocaleTimeString()}.`);
});
rt.on('error', (m) => {
  if (['chat.delete', 'chat.mute', 'chat.slow', 'join'].includes(m.ref) || (!m.ref && m.code === 'forbidden')) {
    say(chatError, `${m.ref || 'Refused'}: ${m.message || m.code}`, true);
  }
});
$('slow-form').addEventListener('submit', (e) => {
  e.preventDefault();
  if (!rt.send({ type: 'chat.slow', secs: Number($('slow').value) })) say(chatError, 'Not connected.', true);
});

// ---- broadcast details
async function loadDetails() {
  if (!stream) return;
  try {
    const b = await api(`/api/broadcasts/${encodeURIComponent(stream)}`);
    $('edit-title').value = b.title || '';
    $('edit-description').value = b.description || '';
    $('edit-tags').value = (b.tags || []).join(', ');
    $('edit-disclaimer').value = b.disclaimer || '';
    $('edit-result').textContent = '';
    $('edit-form').dataset.loaded = stream;
  } catch (err) {
    say($('edit-result'), `Details could not be loaded: ${err.message}`, true);
  }
}
$('edit-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!stream) { say($('edit-result'), 'Open a broadcast first.', true); return; }
  const disclaimer = $('edit-disclaimer').value.trim();
  const body = {
    title: $('edit-title').value.trim(),
    description: $('edit-description').value.trim(),
    tags: $('edit-tags').value.split(',').map((t) => t.trim()).filter(Boolean),
    disclaimer: disclaimer || null,
  };
  try {
    await api(`/api/broadcasts/${encodeURIComponent(stream)}`, { method: 'PUT', body, token: auth.token });
    say($('edit-result'), 'Saved. Viewers see the new details at once.');
  } catch (err) {
    const why = err.status === 403
      ? `Not allowed: only the broadcaster of ${stream} (its stream key) or an admin may edit it${identity ? `; this token is a ${identity.role}` : ''}. (${err.message})`
      : err.status === 401 ? `The server does not accept this token: ${err.message}` : `Not saved: ${err.message}`;
    say($('edit-result'), why, true);
  }
});

// ---- start
listBroadcasts();
const wanted = new URLSearchParams(location.search).get('stream');
if (wanted) $('stream').value = wanted;
// Reading chat needs no token; moderating does.
if (auth.token) rt.auth(auth.token);
rt.connect();
if (wanted) open(wanted);
