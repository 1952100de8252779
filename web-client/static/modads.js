// The moderator console's ads section: start an ad break on the open
// broadcast (`POST /api/broadcasts/{id}/ad-breaks`; the server sends it
// only to viewers without the ad-free plan) and see how that broadcast's
// ads did (`GET /api/ads/report?broadcast=…`): impressions, completion
// rate, clicks, skips and errors per ad.
import { api, el } from '/static/api.js';

const pct = (x) => `${Math.round(x * 100)} %`;

export function mountAdConsole({ form, seconds, result, body, refresh, token, stream }) {
  function say(text, bad = false) {
    result.textContent = text;
    result.className = bad ? 'error' : 'ok';
  }

  async function report() {
    const name = stream();
    if (!name || !token()) return;
    try {
      const r = await api(`/api/ads/report?broadcast=${encodeURIComponent(name)}`, { token: token() });
      const rows = [...r.ads, { ...r.totals, total: true }].map((a) => el('tr', a.total ? { className: 'total' } : {},
        el('td', {}, a.title), el('td', {}, String(a.impressions)), el('td', {}, pct(a.completion_rate)),
        el('td', {}, String(a.clicks)), el('td', {}, String(a.skips)), el('td', {}, String(a.errors))));
      body.replaceChildren(...rows);
    } catch (err) {
      body.replaceChildren(el('tr', {}, el('td', { colSpan: 6 }, `No report: ${err.message}`)));
    }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = stream();
    if (!name) { say('Open a broadcast first.', true); return; }
    const secs = Number(seconds.value);
    try {
      const b = await api(`/api/broadcasts/${encodeURIComponent(name)}/ad-breaks`, {
        method: 'POST', body: { duration_s: secs }, token: token(),
      });
      say(`Break ${b.id} started: ${b.pod.length} ad${b.pod.length === 1 ? '' : 's'} for up to ${secs} s.`);
      setTimeout(report, (secs + 2) * 1000);
    } catch (err) {
      say(err.status === 403 ? `Not allowed: ${err.message}` : `No break: ${err.message}`, true);
    }
  });
  refresh.addEventListener('click', report);
  return { report };
}
