// The chat panel: history on join, live messages in server order, deleted
// messages removed, role badges, and the server's refusals (rate limit,
// slow mode, mute) shown next to the form. The text box keeps what was
// typed until the server echoes the message back (matched by nonce), so a
// refused message can be sent again. `chatItem` is shared with the
// moderator console, which adds its own buttons.
import { el, ROLE_LABEL, timeOfDay } from '/static/api.js';

const KEEP = 300; // messages kept in the DOM
const REFUSALS = {
  rate_limited: 'You are sending messages too fast. Wait a moment.',
  slow_mode: 'Slow mode is on. Wait before sending another message.',
  muted: 'A moderator muted you.',
  unauthorized: 'Chat needs an identity; reconnecting it…',
  not_joined: 'Not connected to this broadcast yet.',
};

export function chatItem(msg, actions = []) {
  const role = msg.user?.role;
  return el('li', { 'data-id': String(msg.id), 'data-user': msg.user?.id || '' },
    el('span', { className: 'who' }, msg.user?.name || 'someone'),
    ROLE_LABEL[role] ? el('span', { className: `role role-${role}`, title: role }, ROLE_LABEL[role]) : null,
    el('span', { className: 'text' }, msg.text),
    el('time', { className: 'when', dateTime: new Date(msg.ts).toISOString() }, timeOfDay(msg.ts)),
    ...actions);
}

/// Mounts a chat list (and, with `form`, the send box). `actions(msg)`
/// returns extra buttons per message.
export function mountChat(rt, { list, form, input, error, mode, me = () => null, beforeSend = async () => {}, actions = () => [] }) {
  let slow = 0;
  let mutedUntil = 0;
  let nextAllowed = 0;
  let pendingNonce = null;
  let cooldownTimer = null;

  const nearBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 60;

  function append(msg) {
    if (list.querySelector(`li[data-id="${CSS.escape(String(msg.id))}"]`)) return;
    const stick = nearBottom();
    list.append(chatItem(msg, actions(msg)));
    while (list.children.length > KEEP) list.firstElementChild.remove();
    if (stick) list.scrollTop = list.scrollHeight;
  }

  function showMode() {
    if (!mode) return;
    const parts = [];
    if (slow > 0) parts.push(`Slow mode: one message every ${slow} s.`);
    if (mutedUntil > Date.now()) parts.push(`You are muted until ${timeOfDay(mutedUntil)}.`);
    mode.textContent = parts.join(' ');
  }

  function say(text) { if (error) error.textContent = text; }

  function cooldown() {
    if (!form) return;
    clearTimeout(cooldownTimer);
    const wait = Math.max(nextAllowed, mutedUntil) - Date.now();
    const button = form.querySelector('button[type="submit"]');
    button.disabled = wait > 0;
    button.textContent = wait > 0 ? `Wait ${Math.ceil(wait / 1000)} s` : 'Send';
    if (wait > 0) cooldownTimer = setTimeout(cooldown, Math.min(wait, 1000));
    else showMode();
  }

  rt.on('joined', (m) => {
    list.replaceChildren();
    for (const msg of m.chat || []) append(msg);
    list.scrollTop = list.scrollHeight;
    slow = m.slow_mode || 0;
    showMode();
  });
  rt.on('chat', (msg) => {
    append(msg);
    if (msg.nonce && msg.nonce === pendingNonce && msg.user?.id === me()?.id) {
      pendingNonce = null;
      if (input) input.value = '';
      say('');
      if (slow > 0) { nextAllowed = Date.now() + slow * 1000; cooldown(); }
    }
  });
  rt.on('chat.deleted', (m) => list.querySelector(`li[data-id="${CSS.escape(String(m.id))}"]`)?.remove());
  rt.on('chat.slow', (m) => { slow = m.secs || 0; showMode(); });
  rt.on('chat.muted', (m) => {
    if (m.user_id === me()?.id) { mutedUntil = m.until; cooldown(); }
    showMode();
  });
  rt.on('error', (m) => {
    if (m.ref !== 'chat.send' && !(m.ref == null && pendingNonce && REFUSALS[m.code])) return;
    pendingNonce = null;
    say(REFUSALS[m.code] ? `${REFUSALS[m.code]}${m.message ? ` (${m.message})` : ''}` : m.message || m.code);
    if (m.code === 'slow_mode' && slow > 0) { nextAllowed = Date.now() + 1000; cooldown(); }
  });

  form?.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    try {
      await beforeSend();
    } catch (err) {
      say(err.message);
      return;
    }
    pendingNonce = Math.random().toString(36).slice(2, 10);
    if (!rt.send({ type: 'chat.send', text, nonce: pendingNonce })) {
      pendingNonce = null;
      say('Not connected; the chat reconnects by itself. Try again in a moment.');
    }
  });

  return { append, get slow() { return slow; } };
}
