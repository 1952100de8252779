// The player: WHEP session with automatic reconnection (exponential backoff),
// a quality menu built from the broadcast's measured layers (switched on the
// server without renegotiation), live status and a stats panel.
import { watch } from '/static/whep.js';

const $ = (id) => document.getElementById(id);
const stream = decodeURIComponent(location.pathname.split('/').pop());
const video = $('video');
const overlay = $('overlay');
$('name').textContent = stream;
document.title = `${stream} — relaycast`;

let session = null;
let choice = new URLSearchParams(location.search).get('layer') || 'auto';
let broadcast = null; // last /api/broadcasts/{id} answer
let mine = null; // last GET of our own WHEP resource: layer, estimate, pause
let backoff = 1000;
let everLive = false;
let reconnectTimer = null;

function show(text) {
  overlay.textContent = text;
  overlay.hidden = !text;
}

function setState() {
  const live = broadcast?.live;
  $('live').hidden = !live;
  if (live) everLive = true;
  const decoding = video.readyState >= 2 && !video.paused;
  if (session?.pc.connectionState !== 'connected' && session) return;
  if (!live) show(everLive ? 'The stream has ended.' : 'Waiting for the broadcaster…');
  else if (mine?.paused_low_bandwidth) show('Video paused: low bandwidth (audio continues)');
  else if (!decoding) show('Starting…');
  else show('');
}

async function connect() {
  clearTimeout(reconnectTimer);
  if (session) await session.stop();
  session = null;
  try {
    session = await watch(`/whep/${encodeURIComponent(stream)}?layer=${choice}`, video);
    window.relaycastViewer = session.pc; // for tests and debugging
    backoff = 1000;
    session.pc.addEventListener('connectionstatechange', () => {
      const state = session?.pc.connectionState;
      if (state === 'failed' || state === 'disconnected' || state === 'closed') scheduleReconnect();
      setState();
    });
  } catch (err) {
    show(`${err.message} — retrying…`);
    scheduleReconnect();
  }
}

function scheduleReconnect() {
  clearTimeout(reconnectTimer);
  show(`Reconnecting in ${Math.round(backoff / 1000)} s…`);
  reconnectTimer = setTimeout(connect, backoff);
  backoff = Math.min(backoff * 2, 15000);
}

// The realtime channel: the quality choice goes over /ws; the server
// switches at the next keyframe, without renegotiation.
let ws = null;
function realtime() {
  const url = new URL('/ws', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  ws = new WebSocket(url);
  ws.onclose = () => setTimeout(realtime, 2000);
}

async function chooseLayer(value) {
  choice = value;
  const url = new URL(location.href);
  url.searchParams.set('layer', value);
  history.replaceState(null, '', url);
  if (!session?.resource) return connect();
  const sessionId = new URL(session.resource).pathname.split('/').pop();
  if (ws?.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ type: 'viewer.layer', stream, session: sessionId, layer: value }));
    return;
  }
  // No realtime channel: the same request over HTTP.
  const res = await fetch(`${session.resource}/layer`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ layer: value }),
  }).catch(() => null);
  if (!res?.ok) await connect();
}

const names = ['high', 'medium', 'low'];
function layerOptions(layers) {
  // Layers come best first; with two, "medium" is the lower one.
  const picks = layers.length >= 3 ? names : layers.length === 2 ? ['high', 'low'] : ['high'];
  return picks.map((name, i) => {
    const l = layers[Math.min(i === picks.length - 1 ? layers.length - 1 : i, layers.length - 1)];
    const size = l.width ? `${l.width}×${l.height}` : `${l.bitrate_kbps} kbit/s`;
    return { value: name, label: `${name[0].toUpperCase()}${name.slice(1)} — ${size}` };
  });
}

function renderMenu() {
  const select = $('layer');
  const options = [{ value: 'auto', label: 'Auto' }, ...layerOptions(broadcast?.layers || [])];
  const key = options.map((o) => o.label).join('|');
  if (select.dataset.key !== key) {
    select.replaceChildren(...options.map((o) => new Option(o.label, o.value)));
    select.dataset.key = key;
  }
  select.value = options.some((o) => o.value === choice) ? choice : 'auto';
}

async function poll() {
  try {
    const res = await fetch(`/api/broadcasts/${encodeURIComponent(stream)}`);
    broadcast = res.ok ? await res.json() : null;
  } catch { /* keep the last answer */ }
  $('viewers').textContent = broadcast?.live ? `${broadcast.viewers} watching` : '';
  if (session?.resource) {
    try {
      const res = await fetch(session.resource);
      mine = res.ok ? await res.json() : null;
    } catch { /* keep the last answer */ }
  }
  renderMenu();
  setState();
}

let last = null;
async function stats() {
  if (!session || $('stats').hidden) return;
  const report = await session.pc.getStats();
  let inbound = null;
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') inbound = s;
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
  });
  if (!inbound) return;
  const kbps = last ? ((inbound.bytesReceived - last.bytes) * 8) / (inbound.timestamp - last.t) : 0;
  last = { bytes: inbound.bytesReceived, t: inbound.timestamp };
  $('s-res').textContent = inbound.frameWidth ? `${inbound.frameWidth}×${inbound.frameHeight}` : '—';
  $('s-bitrate').textContent = `${Math.round(kbps)} kbit/s`;
  $('s-rtt').textContent = pair?.currentRoundTripTime != null ? `${Math.round(pair.currentRoundTripTime * 1000)} ms` : '—';
  $('s-lost').textContent = String(inbound.packetsLost ?? 0);
  $('s-jb').textContent = inbound.jitterBufferEmittedCount
    ? `${Math.round((inbound.jitterBufferDelay / inbound.jitterBufferEmittedCount) * 1000)} ms` : '—';
  $('s-frames').textContent = String(inbound.framesDecoded ?? 0);
  $('s-layer').textContent = `${choice}${inbound.frameWidth ? ` (${inbound.frameWidth}×${inbound.frameHeight})` : ''}`;
  $('s-estimate').textContent = mine?.estimate_kbps != null ? `${mine.estimate_kbps} kbit/s` : '—';
}

$('unmute').addEventListener('click', () => {
  video.muted = !video.muted;
  $('unmute').textContent = video.muted ? 'Unmute' : 'Mute';
  $('unmute').setAttribute('aria-pressed', String(!video.muted));
  video.play().catch(() => {});
});
$('fullscreen').addEventListener('click', () => video.parentElement.requestFullscreen?.());
$('nerds').addEventListener('click', () => {
  const panel = $('stats');
  panel.hidden = !panel.hidden;
  $('nerds').setAttribute('aria-expanded', String(!panel.hidden));
  stats();
});
$('layer').addEventListener('change', (e) => chooseLayer(e.target.value));
video.addEventListener('playing', setState);
video.addEventListener('waiting', setState);

realtime();
poll();
setInterval(poll, 2000);
setInterval(stats, 1000);
connect();
