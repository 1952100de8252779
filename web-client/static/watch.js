// The watch page: wires the player (player.js) to the realtime connection,
// the viewer's identity, the disclaimer gate, alerts, chat, reactions,
// likes and comments. Watching needs no identity; the first action that
// does (chat, react, like, comment) or the page start creates a guest one.
import { Viewer, api, streamFromPath, el } from '/static/api.js';
import { Realtime } from '/static/realtime.js';
import { createPlayer } from '/static/player.js';
import { createGate } from '/static/gate.js';
import { mountAlerts } from '/static/alerts.js';
import { mountChat } from '/static/chat.js';
import { mountReactions } from '/static/reactions.js';
import { mountLikes } from '/static/likes.js';
import { mountCommentsSection } from '/static/comments.js';
import { mountAccount } from '/static/account.js';
import { mountAdBreaks } from '/static/adbreak.js';

const $ = (id) => document.getElementById(id);
const stream = streamFromPath();
$('name').textContent = stream;
document.title = `${stream} — relaycast`;

const viewer = new Viewer();
const rt = new Realtime();
window.relaycastRealtime = rt; // for tests and debugging
// Connect first, set up the page while the socket opens. A stored token
// goes first on the socket, so `joined` already knows us.
if (viewer.token) rt.auth(viewer.token);
rt.connect();
const player = createPlayer({ rt, stream });
const gate = createGate(stream);

mountAccount(viewer);
mountAlerts(rt, $('alerts'));
mountAdBreaks(rt, { screen: $('screen'), video: $('video'), companion: $('companion') });
mountChat(rt, {
  list: $('chat-list'), form: $('chat-form'), input: $('chat-input'), error: $('chat-error'), mode: $('chat-mode'),
  me: () => rt.identity || viewer.identity,
  beforeSend: () => identify(),
});
mountReactions(rt, viewer, { bar: $('reactions'), floaters: $('floaters'), error: $('engage-error') });
mountLikes(rt, viewer, stream, {
  like: $('like'), dislike: $('dislike'), likes: $('likes'), dislikes: $('dislikes'), error: $('engage-error'),
});
mountCommentsSection(rt, viewer, stream, $('comments'));

/// Makes sure the websocket carries our identity (creating a guest one).
async function identify() {
  const token = await viewer.ensure();
  if (rt.token !== token) rt.auth(token);
}
viewer.onChange((_, token) => rt.auth(token));
let fresh = 0;
rt.on('auth.failed', (err) => {
  // A token the server no longer accepts (expired, new secret): start over
  // as a guest, a couple of times at most (never a loop against a server
  // that refuses everything).
  if (err.code === 'unauthorized' && err.token === viewer.token && fresh++ < 2) viewer.logout().catch(() => {});
});

let meta = null;
function showMeta(b) {
  if (!b) return;
  meta = { ...meta, ...b };
  $('title').textContent = meta.title || stream;
  $('name').textContent = meta.title || stream;
  document.title = `${meta.title || stream} — relaycast`;
  $('owner').textContent = meta.owner ? `by ${meta.owner}` : '';
  $('description').textContent = meta.description || '';
  $('tags').replaceChildren(...(meta.tags || []).map((t) =>
    el('li', {}, el('a', { href: `/?tag=${encodeURIComponent(t)}` }, `#${t}`))));
  player.update(b);
}

/// Plays once the disclaimer (if any) is accepted; a disclaimer that
/// appears or changes while playing stops playback until accepted.
async function gateThenPlay() {
  if (!gate.accepted(meta?.disclaimer) && player.started) await player.stop('');
  await gate.require(meta?.disclaimer);
  player.start();
}

rt.on('joined', (m) => {
  showMeta(m.broadcast);
  // Rejoined after a disconnect during which the disclaimer changed.
  if (player.started && !gate.accepted(meta?.disclaimer)) gateThenPlay();
});
rt.on('broadcast', (m) => {
  showMeta(m.broadcast);
  if (!gate.accepted(meta?.disclaimer)) gateThenPlay();
});

/// Milestones of the page's start, in ms since navigation (for tests).
window.relaycastTimings = { script: Math.round(performance.now()) };
const mark = (name) => { window.relaycastTimings[name] ??= Math.round(performance.now()); };
if (rt.open) mark('ws_open');
rt.on('open', () => mark('ws_open'));
rt.on('joined', () => mark('joined'));
rt.on('viewer.answer', () => mark('answer'));
$('video').addEventListener('loadeddata', () => mark('first_frame'), { once: true });

/// Rewinding leaves WebRTC for the broadcast's recording (it grows while
/// live) at 10 s before now by the recording's start time (kept within what
/// is written, whatever this machine's clock says); its page has "Back to
/// live".
$('rewind').addEventListener('click', async () => {
  try {
    const { videos } = await api(`/api/videos?broadcast=${encodeURIComponent(stream)}&limit=1`);
    const rec = videos?.[0];
    if (rec?.status !== 'recording') {
      $('engage-error').textContent = 'This broadcast is not being recorded, so it cannot be rewound.';
      return;
    }
    const now = (Date.now() - rec.started_ms) / 1000;
    const t = Math.min(Math.max(0, now - 10), rec.duration_secs);
    location.href = `${rec.watch_url}?t=${t.toFixed(1)}`;
  } catch (err) {
    $('engage-error').textContent = `Cannot rewind: ${err.message}`;
  }
});

async function start() {
  identify().catch((err) => { $('chat-error').textContent = `No identity yet: ${err.message}`; });
  try {
    await rt.whenOpen(3000);
    await rt.join(stream);
  } catch {
    // No realtime path (yet): the broadcast's description comes over REST
    // and playback falls back to WHEP; the socket keeps retrying.
    try { showMeta(await api(`/api/broadcasts/${encodeURIComponent(stream)}`)); } catch { /* the player shows its own state */ }
  }
  mark('gate_passed_or_shown');
  gateThenPlay();
}
start();
