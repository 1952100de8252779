// A recorded broadcast: its HLS renditions (one per simulcast layer) played
// with hls.js over plain HTTP, from `?t=SECONDS` when given, with a quality
// menu (Auto, then each rendition). Elements are passed in; the state is
// one value: loading → playing | failed. A recording still in progress
// plays its DVR window (the live playlists), `?t=` still counting from the
// recording's start.
//
// hls.js is the classic-script build vendored from npm (window.Hls); a
// browser that plays HLS natively (Safari) uses its own player. A VP8
// recording is WebM, which no HLS player reads: webmplayer.js plays it.

import { WebmPlayer } from '/static/webmplayer.js';

const fmt = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;

export async function startVideo({ id, start, video, quality, status, playing, title, about, recording, backToLive }) {
  const state = { phase: 'loading', levels: [] };
  const show = (text) => { status.textContent = text; status.hidden = !text; };

  // The page may have asked already (before hls.js was parsed).
  const res = await (window.relaycastVideoInfo || fetch(`/api/videos/${encodeURIComponent(id)}`));
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    state.phase = 'failed';
    show(body.message || `This video is not available (${res.status}).`);
    return state;
  }
  const info = await res.json();
  state.info = info;
  document.title = `relaycast — ${info.title}`;
  title.textContent = info.title;
  // Still live: the playlists grow (hls.js reloads them) and one click
  // returns to the live broadcast over WebRTC.
  recording.hidden = info.status !== 'recording';
  backToLive.hidden = info.status !== 'recording';
  backToLive.href = `/watch/${encodeURIComponent(info.broadcast)}`;
  about.textContent = `${info.broadcast} · ${new Date(info.started_ms).toLocaleString()} · ${fmt(info.duration_secs)}`;

  const webm = info.layers?.some((l) => l.codecs?.startsWith('vp8'));
  const Hls = webm ? WebmPlayer : window.Hls;
  if (webm && !window.MediaSource?.isTypeSupported('video/webm; codecs="vp8, opus"')) {
    show('This browser cannot play VP8 recordings.');
    state.phase = 'failed';
    return state;
  }
  if (!webm && !Hls?.isSupported()) {
    if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = info.hls_url;
      video.addEventListener('loadedmetadata', () => { if (start) video.currentTime = start; }, { once: true });
      quality.disabled = true;
    } else {
      show('This browser cannot play recordings.');
      state.phase = 'failed';
    }
    return state;
  }
  // A recording in progress plays its DVR window (live.m3u8), whose
  // timeline starts at the window's first segment: `start` (seconds into
  // the recording) is placed in it by that segment's program date. (hls.js
  // reads the playlist a moment later; should the window slide in between,
  // playback starts one segment off.)
  // (The WebM player's timeline is the recording's own: no offset.)
  const origin = info.status === 'recording' && !webm ? await windowStart(info).catch(() => 0) : 0;
  state.origin = origin;
  video.dataset.origin = String(origin);
  const from = start ? Math.max(0, start - origin) : -1;
  // fMP4 needs no transmuxing, so no worker (starting one costs ~0.2 s).
  // The first segment comes from the largest rendition of at most 360
  // lines: decoding from its keyframe up to `t` is about 4x cheaper than at
  // 720p (first frame ~120 ms sooner), and Auto moves up a segment later.
  // hls.js numbers renditions by bitrate, lowest first.
  const byRate = [...(info.layers || [])].sort((a, b) => a.bitrate_bps - b.bitrate_bps);
  const fits = byRate.map((l, i) => [l.height, i]).filter(([h]) => h > 0 && h <= 360);
  const startLevel = fits.length ? fits.at(-1)[1] : -1;
  const hls = webm
    ? new WebmPlayer({ startPosition: from, origin: info.started_ms, startHeight: 360 })
    : new Hls({ startPosition: from, enableWorker: false, startLevel });
  state.hls = hls;
  hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
    state.levels = data.levels.map((l, i) => ({ i, height: l.height, kbps: Math.round(l.bitrate / 1000) }));
    for (const l of [...state.levels].sort((a, b) => b.height - a.height)) {
      const o = document.createElement('option');
      o.value = String(l.i);
      o.textContent = `${l.height}p (${l.kbps} kbit/s)`;
      quality.append(o);
    }
    video.play().catch(() => show('Press play to start.'));
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_, { level }) => {
    const l = state.levels[level];
    if (l) playing.textContent = `Playing ${l.height}p`;
    video.dataset.level = l ? String(l.height) : '';
  });
  hls.on(Hls.Events.ERROR, (_, data) => {
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      hls.recoverMediaError();
    } else {
      state.phase = 'failed';
      show(`Playback failed: ${data.details}`);
    }
  });
  video.addEventListener('playing', () => { state.phase = 'playing'; show(''); });
  video.addEventListener('waiting', () => { if (state.phase === 'playing') show('Buffering…'); });
  quality.addEventListener('change', () => {
    // Auto lets hls.js choose by measured bandwidth; a rendition pins it.
    hls.currentLevel = Number(quality.value);
  });
  hls.loadSource(info.hls_url);
  hls.attachMedia(video);
  return state;
}

/// Where a recording's DVR window starts, in seconds into the recording:
/// the program date of the first rendition's first listed segment.
async function windowStart(info) {
  const text = async (url) => {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: ${res.status}`);
    return res.text();
  };
  const master = await text(info.hls_url);
  const variant = master.split('\n').find((l) => l && !l.startsWith('#'));
  const media = await text(new URL(variant, new URL(info.hls_url, location.href)).href);
  const date = /^#EXT-X-PROGRAM-DATE-TIME:(.+)$/m.exec(media)?.[1];
  const at = date ? (Date.parse(date) - info.started_ms) / 1000 : 0;
  return Number.isFinite(at) && at > 0 ? at : 0;
}
