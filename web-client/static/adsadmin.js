// The operator page's ads section: upload a creative (MP4 or WebM, probed
// by the server), add an external VAST tag, list every ad with its figures
// and retire one (`POST`/`GET /api/ads`, `DELETE /api/ads/{id}`; admins).
import { api, el, ApiError } from '/static/api.js';

const pct = (x) => `${Math.round(x * 100)} %`;

export function mountAdsAdmin({ upload, tag, result, body, token }) {
  function say(text, bad = false) {
    result.textContent = text;
    result.className = bad ? 'error' : 'ok';
  }

  async function list() {
    if (!token()) return;
    try {
      const { ads } = await api('/api/ads', { token: token() });
      body.replaceChildren(...ads.map((a) => {
        const retire = el('button', { type: 'button', disabled: !!a.retired_ms }, a.retired_ms ? 'Retired' : 'Retire');
        retire.addEventListener('click', async () => {
          try {
            await api(`/api/ads/${a.id}`, { method: 'DELETE', token: token() });
            say(`Ad ${a.id} retired: it is never picked again; its figures stay.`);
            list();
          } catch (err) { say(`Not retired: ${err.message}`, true); }
        });
        const f = a.figures;
        return el('tr', { 'data-ad': String(a.id) },
          el('td', {}, String(a.id)), el('td', {}, a.title),
          el('td', {}, `${a.vast_tag_url ? 'VAST tag' : `${a.mime_type} ${a.width}×${a.height}`}${a.broadcast ? ` (${a.broadcast} only)` : ''}`),
          el('td', {}, `${(a.duration_ms / 1000).toFixed(1)} s`),
          el('td', {}, a.active ? 'yes' : 'no'),
          el('td', {}, String(f.impressions)), el('td', {}, pct(a.completion_rate)), el('td', {}, String(f.clicks)),
          el('td', {}, retire));
      }));
    } catch (err) {
      say(`Ads could not be listed: ${err.message}`, true);
    }
  }

  upload.addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = new FormData(upload);
    for (const [k, v] of [...form.entries()]) if (v === '' || (v instanceof File && !v.size)) form.delete(k);
    say('Uploading…');
    try {
      const res = await fetch('/api/ads', { method: 'POST', headers: { Authorization: `Bearer ${token()}` }, body: form });
      const json = await res.json().catch(() => ({}));
      if (!res.ok) throw new ApiError(res.status, json.error, json.message || res.statusText);
      say(`Ad ${json.id} added: ${json.width}×${json.height}, ${(json.duration_ms / 1000).toFixed(1)} s.`);
      upload.reset();
      list();
    } catch (err) { say(`Not uploaded: ${err.message}`, true); }
  });
  tag.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(tag);
    try {
      const ad = await api('/api/ads', {
        method: 'POST', token: token(),
        body: {
          title: f.get('title'),
          vast_tag_url: f.get('vast_tag_url'),
          duration_s: Number(f.get('duration_s')),
          broadcast: f.get('broadcast') || null,
        },
      });
      say(`Ad ${ad.id} added (external VAST tag).`);
      tag.reset();
      list();
    } catch (err) { say(`Not added: ${err.message}`, true); }
  });
  return { list };
}
