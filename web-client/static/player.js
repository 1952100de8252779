// The player: a viewer session negotiated over the realtime websocket, or
// over WHEP when the websocket is unavailable (or the server does not speak
// `viewer.offer`); automatic reconnection with exponential backoff; a
// quality menu built from the broadcast's measured layers (switched on the
// server without renegotiation); what the player shows, reported so an
// automatic layer fits it and a hidden page costs no video (viewport.js);
// live status; a stats panel.
//
// Playback starts only when `start()` is called: the page calls it once the
// disclaimer gate (if any) is passed.
import { watch as whepWatch } from '/static/whep.js';
import { watchOverRealtime } from '/static/wsview.js';
import { watchViewport } from '/static/viewport.js';

const $ = (id) => document.getElementById(id);
/// Errors meaning "this server has no websocket negotiation": use WHEP.
const NOT_SUPPORTED = new Set(['unknown_type', 'bad_message', 'timeout', 'disconnected']);

export function createPlayer({ rt, stream }) {
  const video = $('video');
  const overlay = $('overlay');
  let session = null;
  let choice = new URLSearchParams(location.search).get('layer') || 'auto';
  let broadcast = null; // last known broadcast state: live, viewers, layers
  let mine = null; // last GET of our own viewer resource: layer, estimate, pause
  let backoff = 1000;
  let everLive = false;
  let reconnectTimer = null;
  let started = false;
  let wsNegotiation = true; // false once the server showed it cannot
  let generation = 0; // bumps on every connect/stop so stale attempts give up

  function show(text) {
    overlay.textContent = text;
    overlay.hidden = !text;
  }

  function setState() {
    const live = broadcast?.live;
    $('live').hidden = !live;
    if (live) everLive = true;
    $('viewers').textContent = live && broadcast.viewers != null ? `${broadcast.viewers} watching` : '';
    const shed = !!(live && mine?.limited_by_server_load);
    $('load-notice').hidden = !shed || mine?.width == null;
    if (!started) return;
    const decoding = video.readyState >= 2 && !video.paused;
    if (session && session.pc.connectionState !== 'connected') return;
    if (!live) show(everLive ? 'The stream has ended.' : 'Waiting for the broadcaster…');
    else if (mine?.paused_low_bandwidth) show('Video paused: low bandwidth (audio continues)');
    else if (shed && mine?.width == null) show('Video paused: the server is busy (audio continues)');
    else if (!decoding) show('Starting…');
    else show('');
  }

  async function negotiate(replace) {
    if (wsNegotiation && rt.open) {
      try {
        return await watchOverRealtime(rt, stream, video, { layer: choice, replace });
      } catch (err) {
        if (!NOT_SUPPORTED.has(err.code)) throw err;
        if (err.code === 'unknown_type' || err.code === 'bad_message') wsNegotiation = false;
      }
    }
    const s = await whepWatch(`/whep/${encodeURIComponent(stream)}?layer=${choice}`, video);
    return { ...s, via: 'whep', session: new URL(s.resource).pathname.split('/').pop() };
  }

  async function connect() {
    clearTimeout(reconnectTimer);
    const mineGen = ++generation;
    const previous = session;
    session = null;
    // A websocket session is replaced by the new offer (`session` in it);
    // anything else is ended first.
    const replace = previous?.via === 'ws' && rt.open ? previous.session : null;
    if (replace) previous.pc.close();
    else if (previous) await previous.stop();
    try {
      const next = await negotiate(replace);
      if (mineGen !== generation) { await next.stop(); return; }
      session = next;
      viewport.resend();
      window.relaycastViewer = session.pc; // for tests and debugging
      $('s-via').textContent = session.via === 'ws' ? 'websocket' : 'WHEP';
      backoff = 1000;
      const pc = session.pc;
      pc.addEventListener('connectionstatechange', () => {
        if (session?.pc !== pc) return;
        const state = pc.connectionState;
        if (state === 'failed' || state === 'disconnected' || state === 'closed') scheduleReconnect();
        setState();
      });
    } catch (err) {
      if (mineGen !== generation) return;
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

  async function chooseLayer(value) {
    choice = value;
    const url = new URL(location.href);
    url.searchParams.set('layer', value);
    history.replaceState(null, '', url);
    if (!session) return started ? connect() : undefined;
    if (rt.send({ type: 'viewer.layer', stream, session: session.session, layer: value })) return;
    // No realtime channel: the same request over HTTP.
    const res = await fetch(`${session.resource}/layer`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ layer: value }),
    }).catch(() => null);
    if (!res?.ok) await connect();
  }

  /// What the player shows, to the server: over the websocket when this
  /// session was negotiated there, else on its WHEP resource.
  function sendView(view) {
    const s = session;
    if (!s) return;
    if (s.via === 'ws' && rt.send({ type: 'viewer.view', stream, session: s.session, ...view })) return;
    fetch(`${s.resource}/view`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(view),
    }).catch(() => {});
  }
  const viewport = watchViewport(video, sendView);

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
      if (res.ok) update(await res.json());
      else if (res.status === 404) update({ live: false, layers: [] });
    } catch { /* keep the last answer */ }
    if (session?.resource) {
      try {
        const res = await fetch(session.resource);
        mine = res.ok ? await res.json() : null;
      } catch { /* keep the last answer */ }
    }
    renderMenu();
    setState();
  }

  /// Merges a (possibly partial) broadcast state from REST or a push.
  function update(b) {
    broadcast = { ...broadcast, ...b };
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
  // The player box, not the video, goes fullscreen, so alert overlays stay on top.
  $('fullscreen').addEventListener('click', () => $('player').requestFullscreen?.());
  $('nerds').addEventListener('click', () => {
    const panel = $('stats');
    panel.hidden = !panel.hidden;
    $('nerds').setAttribute('aria-expanded', String(!panel.hidden));
    stats();
  });
  $('layer').addEventListener('change', (e) => chooseLayer(e.target.value));
  video.addEventListener('playing', setState);
  video.addEventListener('waiting', setState);

  // The server ends websocket-negotiated sessions with the socket:
  // renegotiate as soon as it is back.
  rt.on('close', () => {
    if (session?.via === 'ws') show('Connection lost — reconnecting…');
  });
  rt.on('open', () => {
    if (started && session?.via === 'ws') connect();
  });
  rt.on('viewers', (m) => update({ viewers: m.count }));
  // The server ended our session (e.g. a DELETE on its resource): no need
  // to wait for ICE to notice.
  rt.on('viewer.ended', (m) => {
    if (started && session?.session === m.session) scheduleReconnect();
  });

  poll();
  setInterval(poll, 2000);
  setInterval(stats, 1000);

  return {
    update,
    start() {
      if (started) return;
      started = true;
      show('Connecting…');
      connect();
    },
    /// Stops playback (a new disclaimer must be accepted first).
    async stop(text) {
      started = false;
      generation++;
      clearTimeout(reconnectTimer);
      const s = session;
      session = null;
      await s?.stop();
      video.srcObject = null;
      show(text || '');
    },
    get started() { return started; },
  };
}
