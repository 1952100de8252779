// Ad pods over a player: the watch page's live breaks (`ad_break`
// messages, which the server sends only to viewers without the ad-free
// plan, holding their live audio and video meanwhile) and the on-demand page's VMAP slots.
// Parsing, wrapper following and tracking are the vendored VAST client's
// (@dailymotion/vast-client 6.4.5, MIT, static/vast-client.LICENSE); this
// module plays the creatives in order and reports what happened:
// impression when an ad's first frame shows, quartiles from its progress,
// complete at its end, skip after its `skipoffset`, click-through in a new
// tab, error 405 for a creative that does not play (the pod goes on); an
// ad's companion banner shows beside chat while it plays.
// Alerts stay above the ad (their layer is higher), so an emergency is
// always seen.
import { VASTClient, VASTTracker } from '/static/vast-client.min.js';

/// Wrappers (external tags) are followed this deep, each fetch this long.
const WRAPPER_LIMIT = 3;
const FETCH_TIMEOUT_MS = 3000;
/// A creative that has not started playing by then counts as broken.
const START_TIMEOUT_MS = 4000;

const fmt = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;

/// The layer an ad plays in, inside `screen`; hidden until a pod plays.
function adLayer(screen) {
  const layer = document.createElement('div');
  layer.className = 'ad-break';
  layer.hidden = true;
  layer.setAttribute('role', 'region');
  layer.setAttribute('aria-label', 'Advertisement');
  const video = document.createElement('video');
  video.className = 'ad-video';
  video.playsInline = true;
  video.title = 'Advertisement: click to learn more';
  const bar = document.createElement('div');
  bar.className = 'ad-bar';
  const label = document.createElement('span');
  label.className = 'ad-label';
  label.setAttribute('aria-live', 'polite');
  const more = document.createElement('button');
  more.type = 'button';
  more.textContent = 'Learn more';
  more.className = 'ad-more';
  const skip = document.createElement('button');
  skip.type = 'button';
  skip.className = 'ad-skip';
  skip.hidden = true;
  skip.textContent = 'Skip ad';
  bar.append(label, more, skip);
  layer.append(video, bar);
  // Before the alerts, which must stay on top of it.
  screen.insertBefore(layer, screen.querySelector('.alerts'));
  return { layer, video, label, more, skip };
}

/// The first media file this browser can play.
function playable(creative, probe) {
  return (creative.mediaFiles || []).find((m) => m.fileURL && probe.canPlayType(m.mimeType || 'video/mp4') !== '');
}

/// Shows the ad's companion banner (if it has one) in `slot` while it
/// plays; returns what hides it again.
function showCompanion(slot, client, ad) {
  const creative = ad.creatives.find((c) => c.type === 'companion');
  const variation = creative?.variations?.find((v) => v.staticResources?.length);
  if (!slot || !variation) return () => {};
  const tracker = new VASTTracker(client, ad, creative, variation);
  const img = document.createElement('img');
  img.src = variation.staticResources[0].url;
  img.alt = variation.altText || 'Sponsor';
  img.width = variation.width || 300;
  img.height = variation.height || 250;
  img.addEventListener('load', () => tracker.track('creativeView', { once: true }), { once: true });
  const link = document.createElement('a');
  link.href = '#';
  link.append(img);
  link.addEventListener('click', (e) => { e.preventDefault(); tracker.click(); });
  tracker.on('clickthrough', (url) => { if (url) window.open(url, '_blank', 'noopener'); });
  slot.replaceChildren(link);
  slot.hidden = false;
  return () => { slot.hidden = true; slot.replaceChildren(); };
}

/// Plays one linear ad; resolves when it ends (completed, skipped, failed
/// or cut short by `signal`).
function playAd(ui, client, ad, creative, signal, index, count) {
  return new Promise((resolve) => {
    const tracker = new VASTTracker(client, ad, creative);
    const v = ui.video;
    let started = false;
    let finished = false;
    const cleanup = [];
    const on = (target, type, fn) => { target.addEventListener(type, fn); cleanup.push(() => target.removeEventListener(type, fn)); };
    const finish = (how) => {
      if (finished) return;
      finished = true;
      clearTimeout(startTimer);
      cleanup.forEach((f) => f());
      v.pause();
      v.removeAttribute('src');
      v.load();
      ui.skip.hidden = true;
      hideCompanion();
      resolve(how);
    };
    const fail = () => {
      if (finished) return;
      tracker.error({ ERRORCODE: 405 });
      finish('error');
    };
    const hideCompanion = showCompanion(ui.companion, client, ad);
    const media = playable(creative, v);
    if (!media) {
      // No file this browser can play: VAST's 403.
      tracker.error({ ERRORCODE: 403 });
      finish('error');
      return;
    }
    const skipAfter = creative.skipDelay ?? -1;
    tracker.on('clickthrough', (url) => { if (url) window.open(url, '_blank', 'noopener'); });
    const startTimer = setTimeout(() => { if (!started) fail(); }, START_TIMEOUT_MS);
    on(v, 'playing', () => {
      if (started) return;
      started = true;
      clearTimeout(startTimer);
      tracker.trackImpression();
      tracker.setDuration(v.duration || creative.duration);
    });
    on(v, 'timeupdate', () => {
      if (!started) return;
      tracker.setProgress(v.currentTime);
      const left = Math.max(0, (v.duration || creative.duration) - v.currentTime);
      ui.label.textContent = `Ad ${index + 1} of ${count} · ${fmt(left)}`;
      if (skipAfter >= 0) {
        const wait = skipAfter - v.currentTime;
        ui.skip.hidden = false;
        ui.skip.disabled = wait > 0;
        ui.skip.textContent = wait > 0 ? `Skip in ${Math.ceil(wait)}` : 'Skip ad';
      }
    });
    on(v, 'ended', () => { tracker.complete(); finish('complete'); });
    on(v, 'error', fail);
    on(ui.skip, 'click', () => {
      if (skipAfter < 0 || v.currentTime < skipAfter) return;
      tracker.skip();
      finish('skip');
    });
    const click = () => tracker.click();
    on(v, 'click', click);
    on(ui.more, 'click', click);
    signal.addEventListener('abort', () => finish('cut'), { once: true });
    ui.label.textContent = `Ad ${index + 1} of ${count}`;
    v.src = media.fileURL;
    v.muted = false;
    // A browser that allows no sound without a gesture plays the ad muted;
    // a creative that cannot play at all reports through `error`.
    v.play().catch((err) => {
      if (err.name !== 'NotAllowedError' || finished) return;
      v.muted = true;
      v.play().catch(() => {});
    });
  });
}

/// Plays the pod at `vastUrl` in `ui` for at most `ms` (or until `stop`
/// aborts); resolves with what became of each ad.
export async function playPod(ui, vastUrl, ms, stop) {
  const controller = new AbortController();
  const deadline = setTimeout(() => controller.abort(), ms);
  stop?.addEventListener('abort', () => controller.abort(), { once: true });
  const outcomes = [];
  ui.layer.hidden = false;
  try {
    const client = new VASTClient();
    const response = await client.get(new URL(vastUrl, location.href).href, {
      timeout: FETCH_TIMEOUT_MS,
      wrapperLimit: WRAPPER_LIMIT,
      resolveAll: true,
    });
    const ads = (response.ads || []).filter((ad) => ad.creatives.some((c) => c.type === 'linear'));
    ads.sort((a, b) => (a.sequence ?? 0) - (b.sequence ?? 0));
    for (const [i, ad] of ads.entries()) {
      if (controller.signal.aborted) break;
      const creative = ad.creatives.find((c) => c.type === 'linear');
      outcomes.push(await playAd(ui, client, ad, creative, controller.signal, i, ads.length));
    }
  } catch (err) {
    outcomes.push(`failed: ${err.message}`);
  } finally {
    clearTimeout(deadline);
    ui.layer.hidden = true;
  }
  return outcomes;
}

/// The live breaks of the watch page: `video` is the live player (muted
/// during a pod, as it was afterwards).
export function mountAdBreaks(rt, { screen, video, companion }) {
  const ui = { ...adLayer(screen), companion };
  let current = null;
  const log = [];
  window.relaycastAds = log; // for tests: each break's outcome
  rt.on('ad_break', async (m) => {
    if (current?.id === m.break_id) return;
    const entry = { id: m.break_id, started: performance.now(), ended: null, outcomes: null };
    entry.stop = new AbortController();
    current = entry;
    log.push(entry);
    const wasMuted = video.muted;
    video.muted = true;
    entry.outcomes = await playPod(ui, m.vast_url, m.remaining_ms, entry.stop.signal);
    entry.ended = performance.now();
    video.muted = wasMuted;
    if (current === entry) current = null;
    // The server resumes our video at once when its records show the pod
    // over (it waits half a second for the last tracking pixel); retry a
    // few times before leaving it to the break's end.
    for (let i = 0; i < 5; i++) {
      entry.tries = i + 1;
      try {
        await rt.request({ type: 'ad.done', break_id: m.break_id }, 'ad_break.ended', 2000);
        entry.resumed = performance.now();
        return;
      } catch (err) {
        if (err.code !== 'invalid') return;
        await new Promise((r) => setTimeout(r, 150 * (i + 1)));
      }
    }
  });
  // The server ended our break (the account became ad-free).
  rt.on('ad_break.ended', (m) => { if (current?.id === m.break_id) current.stop.abort(); });
}

/// An ad layer over `screen` for other pages (the on-demand player).
export const mountAdLayer = adLayer;
