// Alert overlays on top of the video: info and warning banners (dismissible)
// and the emergency panel (not dismissible: it leaves when it expires).
// Each shows who sent it and a countdown. An alert is acknowledged
// (`alert.ack`) as soon as it is on screen (page visible), once per
// connection, so the moderator's acknowledged count means "displayed".
//
// Expiry is measured on this device's clock from the alert's ttl, not from
// the server's `expires_ms`, so a viewer whose clock is off still sees the
// whole alert; an alert the server lists as active at join is shown for what
// remains of it, at least a few seconds.
import { el } from '/static/api.js';

const ORDER = { emergency: 0, warning: 1, info: 2 };
const LABEL = { emergency: 'Emergency', warning: 'Warning', info: 'Information' };
const MIN_SHOWN_MS = 5000;

function remaining(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s` : `${s} s`;
}

export function mountAlerts(rt, container) {
  const shown = new Map(); // id → { alert, node, until, countdown }
  const dismissed = new Set();
  let acked = new Set();

  // "Displayed" means on a visible page: a background tab acknowledges
  // when the viewer comes back to it.
  function ack(id) {
    if (acked.has(id) || document.visibilityState === 'hidden') return;
    if (rt.send({ type: 'alert.ack', id })) acked.add(id);
  }
  document.addEventListener('visibilitychange', () => { for (const id of shown.keys()) ack(id); });

  function remove(id) {
    const entry = shown.get(id);
    if (!entry) return;
    entry.node.remove();
    shown.delete(id);
    arrange();
  }

  function arrange() {
    const entries = [...shown.values()].sort((a, b) =>
      ORDER[a.alert.severity] - ORDER[b.alert.severity] || b.alert.created_ms - a.alert.created_ms);
    container.replaceChildren(...entries.map((e) => e.node));
    container.classList.toggle('has-emergency', entries.some((e) => e.alert.severity === 'emergency'));
  }

  function tick() {
    const now = Date.now();
    for (const [id, e] of shown) {
      if (now >= e.until) remove(id);
      else e.countdown.textContent = e.alert.severity === 'emergency'
        ? `Stays on screen for ${remaining(e.until - now)}`
        : `Ends in ${remaining(e.until - now)}`;
    }
  }

  function show(alert, fresh) {
    if (!ORDER.hasOwnProperty(alert.severity) || dismissed.has(alert.id)) return;
    if (shown.has(alert.id)) { ack(alert.id); return; }
    const ttl = Math.max(0, alert.expires_ms - alert.created_ms);
    const left = fresh ? ttl : Math.min(ttl, Math.max(alert.expires_ms - Date.now(), MIN_SHOWN_MS));
    if (left <= 0) return;
    const severity = alert.severity;
    const countdown = el('span', { className: 'alert-countdown' });
    const node = el('section', {
      className: `alert alert-${severity}`,
      role: severity === 'info' ? 'status' : 'alert',
      'aria-label': `${LABEL[severity]} alert`,
      'data-alert-id': String(alert.id),
      'data-severity': severity,
    },
    el('div', { className: 'alert-head' },
      el('strong', { className: 'alert-kind' }, LABEL[severity]),
      alert.sender_name ? el('span', { className: 'alert-from' }, `from ${alert.sender_name}`) : null,
      countdown),
    el('p', { className: 'alert-text' }, alert.text));
    if (severity !== 'emergency') {
      node.append(el('button', {
        type: 'button',
        className: 'alert-dismiss',
        textContent: 'Dismiss',
        'aria-label': `Dismiss ${LABEL[severity].toLowerCase()} alert`,
        onclick: () => { dismissed.add(alert.id); remove(alert.id); },
      }));
    }
    shown.set(alert.id, { alert, node, until: Date.now() + left, countdown });
    arrange();
    tick();
    ack(alert.id);
  }

  rt.on('open', () => { acked = new Set(); });
  rt.on('joined', (m) => { for (const a of m.alerts || []) show(a, false); });
  rt.on('alert', (m) => show(m.alert, true));
  setInterval(tick, 1000);
  return { show, get count() { return shown.size; } };
}
