// The directory: search (`GET /api/broadcasts?q=`, ranked by the server)
// with the recorded videos matching it below (videolist.js),
// live and tag filters, sort by viewers or recency, "more" by cursor;
// "Recorded only" shows just the videos (`recorded=true` in the URL). The
// search is debounced (250 ms) and a newer query aborts an older one, so
// results never arrive out of order. Filters live in the URL, so a search
// can be shared and survives a reload. The first page refreshes every 5 s.
import { api, el } from '/static/api.js';
import { videoList } from '/static/videolist.js';

const $ = (id) => document.getElementById(id);
const list = $('list');
const DEBOUNCE_MS = 250;
let items = [];
let cursor = null;
let inflight = null;
let debounce = null;
let paged = false; // "more" was used: the periodic refresh would drop those pages
const loadVideos = videoList({ list: $('videos'), summary: $('videos-summary') });

function since(seconds) {
  const ago = Math.max(0, Math.round(Date.now() / 1000 - seconds));
  if (ago < 60) return `${ago} s`;
  if (ago < 3600) return `${Math.floor(ago / 60)} min`;
  return `${Math.floor(ago / 3600)} h ${Math.floor((ago % 3600) / 60)} min`;
}

function filters() {
  return { q: $('q').value.trim(), live: $('live').checked, recorded: $('recorded').checked, tag: $('tag').value.trim(), sort: $('sort').value };
}

function query(f, after) {
  const p = new URLSearchParams();
  if (f.q) p.set('q', f.q);
  if (f.live) p.set('live', 'true');
  if (f.recorded) p.set('recorded', 'true');
  if (f.tag) p.set('tag', f.tag);
  p.set('sort', f.sort);
  if (after) p.set('cursor', after);
  return p;
}

function card(b) {
  const tags = (b.tags || []).map((t) => el('button', {
    type: 'button', className: 'tag link', textContent: `#${t}`, 'aria-label': `Only broadcasts tagged ${t}`,
    onclick: () => { $('tag').value = t; changed(true); },
  }));
  const meta = b.live
    ? `${b.viewers ?? 0} watching · live for ${b.live_since ? since(b.live_since) : '—'}`
    : 'offline';
  const rating = b.likes != null ? ` · ${b.likes} like${b.likes === 1 ? '' : 's'}` : '';
  // A live broadcast's poster is refreshed by the server every ~30 s; the
  // URL changes as often, so the browser's cache serves it in between.
  const poster = b.live
    ? el('img', {
      className: 'poster', alt: '', loading: 'lazy', width: 160, height: 90,
      src: `/api/broadcasts/${encodeURIComponent(b.id)}/poster.jpg?at=${Math.floor(Date.now() / 30_000)}`,
      onerror: (e) => e.target.remove(),
    })
    : null;
  return el('li', {},
    poster,
    el('a', { className: 'title', href: `/watch/${encodeURIComponent(b.id)}` }, b.title || b.id),
    b.live ? el('span', { className: 'badge' }, 'LIVE') : el('span', { className: 'off' }, 'offline'),
    el('span', { className: 'meta' }, (b.owner ? `by ${b.owner} · ` : '') + meta + rating),
    b.description ? el('p', { className: 'desc' }, b.description) : null,
    ...tags);
}

function render(f) {
  $('heading').textContent = f.q || f.tag ? 'Search results' : f.live ? 'Live now' : 'All broadcasts';
  if (!items.length) {
    list.replaceChildren(el('li', {}, f.q || f.tag
      ? 'No broadcast matches. Try fewer words or clear the tag.'
      : f.live ? 'Nothing is live right now.' : 'No broadcasts yet.'));
  } else {
    list.replaceChildren(...items.map(card));
  }
  $('summary').textContent = `${items.length}${cursor ? '+' : ''} broadcast${items.length === 1 ? '' : 's'}${f.q ? ` for “${f.q}”` : ''}${f.tag ? ` tagged ${f.tag}` : ''}`;
  $('more').hidden = !cursor;
  const known = new Set(items.flatMap((b) => b.tags || []));
  $('known-tags').replaceChildren(...[...known].sort().map((t) => el('option', { value: t })));
}

/// Older servers answer a bare array without search: filter here.
function localFilter(all, f) {
  const words = f.q.toLowerCase().split(/\s+/).filter(Boolean);
  return all.filter((b) => (!f.live || b.live)
    && (!f.tag || (b.tags || []).includes(f.tag))
    && words.every((w) => `${b.title || b.id} ${b.description || ''} ${(b.tags || []).join(' ')}`.toLowerCase().includes(w)));
}

async function load(more = false) {
  const f = filters();
  $('broadcasts').hidden = f.recorded;
  $('live').disabled = f.recorded;
  $('videos-heading').hidden = f.recorded;
  if (f.recorded) {
    $('heading').textContent = 'Videos';
    inflight?.abort();
    loadVideos(f.q);
    return;
  }
  inflight?.abort();
  const ctl = new AbortController();
  inflight = ctl;
  try {
    const res = await api(`/api/broadcasts?${query(f, more ? cursor : null)}`, { signal: ctl.signal });
    if (inflight !== ctl) return;
    const page = Array.isArray(res) ? localFilter(res, f) : res.broadcasts || [];
    paged = more;
    items = more ? items.concat(page.filter((b) => !items.some((x) => x.id === b.id))) : page;
    cursor = Array.isArray(res) ? null : res.next_cursor ?? null;
    render(f);
    if (!more) loadVideos(f.q);
  } catch (err) {
    if (err.name === 'AbortError') return;
    $('summary').textContent = `Could not load broadcasts: ${err.message}`;
  }
}

function changed(now = false) {
  const f = filters();
  const url = new URL(location.href);
  url.search = query(f).toString();
  history.replaceState(null, '', url);
  clearTimeout(debounce);
  if (now) load();
  else debounce = setTimeout(load, DEBOUNCE_MS);
}

const initial = new URLSearchParams(location.search);
$('q').value = initial.get('q') || '';
$('tag').value = initial.get('tag') || '';
if (initial.has('live')) $('live').checked = initial.get('live') === 'true';
else if (initial.has('q') || initial.has('tag')) $('live').checked = false;
if (initial.get('sort') === 'recent') $('sort').value = 'recent';
$('recorded').checked = initial.get('recorded') === 'true';

$('q').addEventListener('input', () => changed());
$('tag').addEventListener('input', () => changed());
$('live').addEventListener('change', () => changed(true));
$('recorded').addEventListener('change', () => changed(true));
$('sort').addEventListener('change', () => changed(true));
$('filters').addEventListener('submit', (e) => { e.preventDefault(); changed(true); });
$('more').addEventListener('click', () => load(true));
load();
// Refresh the first page (viewer counts, who is live) unless the reader paged on.
setInterval(() => { if (!paged) load(); }, 5000);
