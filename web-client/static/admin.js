// The operator page (/admin): an admin token pasted once and kept in this
// browser; `GET /api/admin/overview` every 2 s; charts of the last 5
// minutes computed from successive snapshots (rates are deltas over the
// interval, so a restarted counter shows as a gap, never as a negative
// spike); per broadcast its layers, layer mix and a viewer-health table,
// worst viewers first; the ads (adsadmin.js).
import { TokenStore, api, el } from '/static/api.js';
import { LineChart, StackedBar } from '/static/charts.js';
import { mountAdsAdmin } from '/static/adsadmin.js';

const $ = (id) => document.getElementById(id);
const auth = new TokenStore('relaycast.adminToken');
const EVERY_MS = 2000;
const KEEP = 150; // 5 minutes of samples
const samples = [];
let timer = null;

const charts = $('charts');
const audience = new LineChart(charts, { title: 'Audience', series: [{ name: 'viewers' }, { name: 'websockets' }] });
const egress = new LineChart(charts, { title: 'Egress', unit: 'pkt/s', series: [{ name: 'RTP forwarded' }, { name: 'resends' }] });
const bitrate = new LineChart(charts, { title: 'Bitrate per layer (publisher)', unit: 'kbit/s' });
const mixBar = new StackedBar(charts, { title: 'Layer mix (viewers now)' });
const loss = new LineChart(charts, { title: 'Viewer loss', unit: '%', series: [{ name: 'mean' }, { name: 'worst' }] });
const join = new LineChart(charts, { title: 'Join time (session to first video)', unit: 'ms', series: [{ name: 'mean of new joins' }] });
const cpu = new LineChart(charts, { title: 'Worker CPU', unit: '%' });
const drops = new LineChart(charts, { title: 'Drops by reason', unit: '/s' });

function say(node, text, bad = false) {
  node.textContent = text;
  node.className = bad ? 'error' : 'status';
}

function rate(prev, cur, pick) {
  if (!prev) return null;
  const dt = (cur.at_ms - prev.at_ms) / 1000;
  const d = pick(cur) - pick(prev);
  return dt > 0 && d >= 0 ? d / dt : null;
}

function allViewers(o) {
  return o.broadcasts.flatMap((b) => b.viewer_table);
}

/// One value per sample (oldest first) from `f(sample, previous)`.
function series(f) {
  return samples.map((s, i) => f(s, samples[i - 1]));
}

function draw() {
  const cur = samples[samples.length - 1];
  if (!cur) return;
  const viewers = cur.workers.reduce((n, w) => n + w.viewers, 0);
  const publishers = cur.workers.reduce((n, w) => n + w.publishers, 0);
  $('summary').textContent = `${viewers} viewers, ${publishers} publishers, ${cur.ws_connections} websockets, ${cur.workers.length} media workers`
    + (cur.workers.some((w) => w.shed_level > 0) ? ' — shedding load' : '');

  audience.draw([series((s) => s.workers.reduce((n, w) => n + w.viewers, 0)), series((s) => s.ws_connections)], KEEP);
  egress.draw([
    series((s, p) => rate(p, s, (o) => o.counters.rtp_packets_forwarded)),
    series((s, p) => rate(p, s, (o) => o.counters.resends)),
  ], KEEP);

  const layerNames = [...new Set(samples.flatMap((s) => s.broadcasts.flatMap((b) => b.layers.map((l) => `${b.name} ${l.label}`))))];
  bitrate.series = layerNames.map((name) => ({ name }));
  bitrate.draw(layerNames.map((name) => series((s) => {
    for (const b of s.broadcasts) for (const l of b.layers) if (`${b.name} ${l.label}` === name) return l.kbps;
    return null;
  })), KEEP);

  const mix = new Map();
  for (const b of cur.broadcasts) for (const [layer, n] of Object.entries(b.mix)) mix.set(layer, (mix.get(layer) || 0) + n);
  mixBar.draw([...mix].map(([name, value]) => ({ name, value })));

  loss.draw([
    series((s) => {
      const l = allViewers(s).map((v) => v.loss_percent).filter((x) => x !== null && x !== undefined);
      return l.length ? l.reduce((a, b) => a + b, 0) / l.length : null;
    }),
    series((s) => {
      const l = allViewers(s).map((v) => v.loss_percent).filter((x) => x !== null && x !== undefined);
      return l.length ? Math.max(...l) : null;
    }),
  ], KEEP);

  join.draw([series((s, p) => {
    if (!p) return null;
    const n = s.joins - p.joins;
    return n > 0 ? ((s.join_seconds_sum - p.join_seconds_sum) / n) * 1000 : null;
  })], KEEP);

  cpu.series = [...cur.workers.map((w) => ({ name: `worker ${w.worker} busy` })), { name: 'media threads' }];
  cpu.draw([
    ...cur.workers.map((w) => series((s) => (s.workers[w.worker] ? s.workers[w.worker].busy * 100 : null))),
    series((s, p) => {
      const r = rate(p, s, (o) => o.worker_cpu_seconds ?? NaN);
      return r === null || Number.isNaN(r) ? null : r * 100;
    }),
  ], KEEP);

  // not_selected counts every packet of a layer a viewer does not take:
  // the normal cost of simulcast, not a problem, so it is left out.
  const reasons = Object.keys(cur.drops).filter((r) => r !== 'not_selected'
    && samples.some((s, i) => i > 0 && s.drops[r] > samples[i - 1].drops[r]));
  drops.series = reasons.map((name) => ({ name }));
  drops.draw(reasons.map((r) => series((s, p) => rate(p, s, (o) => o.drops[r]))), KEEP);

  drawBroadcasts(cur);
}

function cell(text, cls) {
  const td = el('td', {}, text === null || text === undefined ? '–' : String(text));
  if (cls) td.className = cls;
  return td;
}

function drawBroadcasts(cur) {
  const box = $('broadcasts');
  if (!cur.broadcasts.length) {
    box.replaceChildren(el('p', { className: 'status' }, 'No broadcast yet.'));
    return;
  }
  box.replaceChildren(...cur.broadcasts.map((b) => {
    const section = el('div', { className: 'broadcast', 'data-broadcast': b.name });
    const layers = b.layers.map((l) => `${l.label} ${l.kbps} kbit/s`).join(', ') || 'no layers';
    section.append(el('h3', {}, `${b.name} — ${b.live ? 'live' : 'offline'}, ${b.viewers} viewers (${layers})`));
    const table = el('table', { className: 'list viewers' });
    const head = el('tr');
    for (const h of ['Viewer', 'Layer', 'Choice', 'Estimate', 'RTT', 'Loss', 'Switches', 'Connected', 'State', 'Address']) {
      head.append(el('th', { scope: 'col' }, h));
    }
    table.append(el('thead', {}, head));
    const body = el('tbody');
    for (const v of b.viewer_table) {
      const tr = el('tr');
      const bad = !v.connected || (v.loss_percent ?? 0) > 2;
      if (bad) tr.className = 'unhealthy';
      const state = !v.connected ? 'disconnected' : v.paused_low_bandwidth ? 'paused: low bandwidth'
        : v.limited_by_server_load ? 'limited by server load' : 'ok';
      tr.append(
        cell(v.session.slice(0, 8)),
        cell(v.height ? `${v.height}p` : null),
        cell(v.choice),
        cell(v.estimate_kbps === null ? null : `${v.estimate_kbps} kbit/s`, 'num'),
        cell(v.rtt_ms === null ? null : `${v.rtt_ms} ms`, 'num'),
        cell(v.loss_percent === null ? null : `${v.loss_percent.toFixed(1)} %`, 'num'),
        cell(v.switches, 'num'),
        cell(`${v.connected_secs} s`, 'num'),
        cell(state),
        cell(v.remote),
      );
      body.append(tr);
    }
    table.append(body);
    section.append(table);
    return section;
  }));
}

async function poll() {
  const token = auth.token;
  if (!token) return;
  try {
    const o = await api('/api/admin/overview', { token });
    samples.push(o);
    if (samples.length > KEEP) samples.shift();
    say($('state'), 'Live');
    say($('who'), `Sampling every ${EVERY_MS / 1000} s; ${samples.length} samples.`);
    draw();
  } catch (err) {
    const why = err.status === 401 ? `The server does not accept this token: ${err.message}`
      : err.status === 403 ? `This token is not an admin's: ${err.message}`
        : `The node did not answer: ${err.message}`;
    say($('state'), 'Error', true);
    say($('who'), why, true);
  }
}

const ads = mountAdsAdmin({
  upload: $('ad-upload'), tag: $('ad-tag'), result: $('ad-result'), body: $('ads-body'), token: () => auth.token,
});

function start() {
  ads.list();
  clearInterval(timer);
  samples.length = 0;
  poll();
  timer = setInterval(poll, EVERY_MS);
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  auth.token = $('token').value.trim();
  $('token').value = '';
  start();
});
$('token-forget').addEventListener('click', () => {
  auth.token = null;
  clearInterval(timer);
  say($('state'), 'No token');
  say($('who'), 'Token forgotten.');
});

if (auth.token) start();
draw();
