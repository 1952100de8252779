// Recorded broadcasts for the directory: `GET /api/videos?q=` (title
// search, newest first), each a link to its on-demand page. Elements are
// passed in; a newer query aborts an older one.
import { api, el } from '/static/api.js';

const duration = (s) => {
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
};

function card(v) {
  const best = v.layers?.[0];
  const meta = [
    v.status === 'recording' ? 'recording now' : duration(v.duration_secs),
    new Date(v.started_ms).toLocaleString(),
    best ? `up to ${best.height}p` : null,
  ].filter(Boolean).join(' · ');
  return el('li', {},
    el('img', {
      className: 'poster', alt: '', loading: 'lazy', width: 160, height: 90, src: v.poster_url,
      onerror: (e) => e.target.remove(),
    }),
    el('a', { className: 'title', href: v.watch_url }, v.title || v.broadcast),
    v.status === 'recording' ? el('span', { className: 'badge' }, 'RECORDING') : null,
    el('span', { className: 'meta' }, meta));
}

export function videoList({ list, summary }) {
  let inflight = null;
  return async function load(q = '') {
    inflight?.abort();
    const ctl = new AbortController();
    inflight = ctl;
    const p = new URLSearchParams({ limit: '20' });
    if (q) p.set('q', q);
    try {
      const res = await api(`/api/videos?${p}`, { signal: ctl.signal });
      if (inflight !== ctl) return;
      const videos = res.videos || [];
      list.replaceChildren(...(videos.length
        ? videos.map(card)
        : [el('li', {}, q ? 'No video matches.' : 'No videos yet: every broadcast is recorded.')]));
      summary.textContent = `${videos.length}${res.next_before ? '+' : ''} video${videos.length === 1 ? '' : 's'}`;
    } catch (err) {
      if (err.name !== 'AbortError') summary.textContent = `Could not load videos: ${err.message}`;
    }
  };
}
