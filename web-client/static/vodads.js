// An on-demand video's ads: its VMAP schedule (`/videos/{id}/ads.vmap`, a
// pre-roll and a mid-roll wherever a break ran live; empty for an ad-free
// account) played over the recording. The pre-roll plays before the
// video's first frame; a mid-roll plays when playback reaches its offset
// (seeking past mid-rolls plays the last one passed, once). The recording
// pauses meanwhile and resumes where it was.
import { mountAdLayer, playPod } from '/static/adbreak.js';

/// "start", "HH:MM:SS(.mmm)" or seconds → seconds (null if unknown).
function offsetOf(text) {
  if (text === 'start') return 0;
  const m = /^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(text || '');
  return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : null;
}

/// The schedule's slots, by offset.
export function parseVmap(xml) {
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  const breaks = [...doc.getElementsByTagNameNS('http://www.iab.net/videosuite/vmap', 'AdBreak')];
  return breaks
    .map((b) => ({
      offset: offsetOf(b.getAttribute('timeOffset')),
      preroll: b.getAttribute('timeOffset') === 'start',
      url: b.getElementsByTagNameNS('http://www.iab.net/videosuite/vmap', 'AdTagURI')[0]?.textContent.trim(),
      played: false,
    }))
    .filter((s) => s.offset != null && s.url)
    .sort((a, b) => a.offset - b.offset);
}

/// A pod's longest run (the live break's length is the pod's bound there;
/// on demand the pod's own ads bound it).
const POD_MS = 180_000;

/// Call before playback starts: `origin()` gives the seconds of the
/// recording before the player's zero (a DVR window), `start` where
/// playback was asked to begin. Playback is held until the schedule is
/// known (a local request) and its pre-roll has played.
export function mountVodAds({ id, video, screen, companion, token, origin = () => 0, start = 0 }) {
  const log = [];
  window.relaycastAds = log; // for tests: each slot as played
  let slots = null;
  let busy = false;
  let ui = null;
  let heldStart = false;
  const pending = () => slots === null || busy || slots.some((s) => s.preroll && !s.played);
  video.addEventListener('play', () => {
    if (!pending()) return;
    heldStart = true;
    video.pause();
  });

  async function play(slot) {
    busy = true;
    slot.played = true;
    const entry = { offset: slot.offset, at: video.currentTime + origin(), started: performance.now(), ended: null, outcomes: null };
    log.push(entry);
    video.pause();
    ui ||= { ...mountAdLayer(screen), companion };
    entry.outcomes = await playPod(ui, slot.url, POD_MS);
    entry.ended = performance.now();
    busy = false;
    video.play().catch(() => {});
  }

  (async () => {
    let found = [];
    try {
      // The page may have asked already (see video.html).
      const res = await (window.relaycastVideoAds || fetch(`/videos/${encodeURIComponent(id)}/ads.vmap`, {
        headers: token ? { Authorization: `Bearer ${token}` } : {},
      }));
      if (res.ok) found = parseVmap(await res.text());
    } catch { /* no schedule: the video plays without ads */ }
    // Mid-rolls before the asked start point are not owed.
    for (const s of found) if (!s.preroll && s.offset <= start) s.played = true;
    slots = found;
    const preroll = slots.find((s) => s.preroll);
    if (preroll) await play(preroll);
    else if (heldStart) video.play().catch(() => {});
  })();

  video.addEventListener('timeupdate', () => {
    if (!slots || busy || video.seeking) return;
    const t = video.currentTime + origin();
    const due = slots.filter((s) => !s.played && s.offset <= t);
    if (!due.length) return;
    for (const s of due) s.played = true;
    play(due.at(-1));
  });
  return log;
}
