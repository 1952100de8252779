// The on-demand player of VP8 recordings: relaycast writes them as WebM
// segments (Chromium's Media Source Extensions play VP8 only in WebM), in
// playlists shaped like HLS, which no HLS player reads. This plays them with
// MSE directly and offers the part of hls.js's interface that video.js uses
// (events MANIFEST_PARSED, LEVEL_SWITCHED, ERROR; `currentLevel`;
// `loadSource`, `attachMedia`, `recoverMediaError`, `destroy`).
//
// Timeline: media time is seconds into the recording. Cluster timestamps
// are the recording's, and each playlist's program date (minus the
// recording's start, `origin`) places its first segment, so `startPosition`
// needs no conversion even in a sliding DVR window.
//
// Invariants: one fetch at a time; the buffer holds at most AHEAD seconds
// ahead and BEHIND behind the playhead; a segment is appended after its
// part's init segment of the same rendition; a growing playlist is reloaded
// until it ends.

const AHEAD = 30;
const BEHIND = 30;
const SAFETY = 0.8; // of the measured throughput a rendition may use

export class WebmPlayer {
  static Events = { MANIFEST_PARSED: 'manifestParsed', LEVEL_SWITCHED: 'levelSwitched', ERROR: 'error' };
  static ErrorTypes = { NETWORK_ERROR: 'networkError', MEDIA_ERROR: 'mediaError' };

  constructor({ startPosition = -1, origin = 0, startHeight = 0 } = {}) {
    this.start = startPosition;
    this.startHeight = startHeight;
    this.origin = origin;
    this.handlers = new Map();
    this.levels = [];
    this.manual = -1;
    this.level = -1; // the rendition being appended
    this.shown = -1; // the last one LEVEL_SWITCHED announced
    this.estimate = 2e6; // bit/s until a segment was measured
    this.busy = false;
    this.appendedInit = null;
    this.next = null; // { level, seq } of the segment to append next
    this.stopped = false;
  }

  on(event, fn) {
    this.handlers.set(event, [...(this.handlers.get(event) || []), fn]);
  }

  emit(event, data) {
    for (const fn of this.handlers.get(event) || []) fn(event, data);
  }

  fail(type, details) {
    this.stopped = true;
    this.emit(WebmPlayer.Events.ERROR, { type, details, fatal: true });
  }

  get currentLevel() { return this.level; }

  /// -1 lets the player choose by throughput; a rendition pins it at once.
  set currentLevel(i) {
    this.manual = i;
    if (i >= 0 && i !== this.level) this.switchNow(i);
  }

  loadSource(url) {
    this.url = new URL(url, location.href).href;
    this.ready = this.loadMaster().catch((e) => this.fail(WebmPlayer.ErrorTypes.NETWORK_ERROR, e.message));
  }

  attachMedia(video) {
    this.video = video;
    this.ms = new MediaSource();
    video.src = URL.createObjectURL(this.ms);
    this.ms.addEventListener('sourceopen', () => this.open(), { once: true });
    // A seek out of what is buffered need not wait for the segment in flight.
    video.addEventListener('seeking', () => { if (!bufferedAround(video.buffered, video.currentTime)) this.abort?.abort(); });
    for (const e of ['timeupdate', 'seeking', 'waiting']) video.addEventListener(e, () => this.tick());
    this.timer = setInterval(() => this.tick(), 500);
  }

  recoverMediaError() { this.fail(WebmPlayer.ErrorTypes.MEDIA_ERROR, 'the recording does not decode'); }

  destroy() {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.reload);
  }

  async loadMaster() {
    const text = await get(this.url, 'text');
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const m = /^#EXT-X-STREAM-INF:(.*)$/.exec(lines[i]);
      if (!m) continue;
      const a = attrs(m[1]);
      const [width, height] = (a.RESOLUTION || '0x0').split('x').map(Number);
      this.levels.push({
        url: new URL(lines[i + 1].trim(), this.url).href,
        bitrate: Number(a['AVERAGE-BANDWIDTH'] || a.BANDWIDTH || 0),
        width, height, codecs: a.CODECS || 'vp8',
        segments: [], ended: false,
      });
    }
    if (!this.levels.length) throw new Error('the recording lists no renditions');
    await Promise.all(this.levels.map((_, i) => this.loadLevel(i)));
    this.emit(WebmPlayer.Events.MANIFEST_PARSED, { levels: this.levels });
  }

  /// A rendition's playlist: each segment's start on the recording's
  /// timeline, its init segment and a stable number.
  async loadLevel(i) {
    const l = this.levels[i];
    const text = await get(l.url, 'text');
    const segments = [];
    let seq = Number(/^#EXT-X-MEDIA-SEQUENCE:(\d+)/m.exec(text)?.[1] || 0);
    let at = 0, init = null, duration = 0;
    for (const line of text.split('\n')) {
      const map = /^#EXT-X-MAP:URI="([^"]+)"/.exec(line);
      const date = /^#EXT-X-PROGRAM-DATE-TIME:(.+)$/.exec(line);
      const inf = /^#EXTINF:([\d.]+)/.exec(line);
      if (map) init = new URL(map[1], l.url).href;
      else if (date && this.origin) at = (Date.parse(date[1]) - this.origin) / 1000;
      else if (inf) duration = Number(inf[1]);
      else if (line && !line.startsWith('#')) {
        segments.push({ seq: seq++, url: new URL(line.trim(), l.url).href, init, start: at, end: at + duration });
        at += duration;
      }
    }
    l.segments = segments;
    l.ended = /^#EXT-X-ENDLIST/m.test(text);
    l.target = Number(/^#EXT-X-TARGETDURATION:(\d+)/m.exec(text)?.[1] || 2);
    if (i === Math.max(0, this.level)) this.scheduleReload();
    this.updateDuration();
  }

  /// A growing playlist of the rendition being played is read again every
  /// half target duration (whichever rendition that is by then).
  scheduleReload() {
    clearTimeout(this.reload);
    const l = this.levels[Math.max(0, this.level)];
    if (!l || l.ended || this.stopped) return;
    this.reload = setTimeout(() => {
      this.loadLevel(Math.max(0, this.level)).then(() => this.tick(), () => this.scheduleReload());
    }, Math.max(1, l.target / 2) * 1000);
  }

  updateDuration() {
    const l = this.levels[Math.max(0, this.level)];
    const end = l?.segments.at(-1)?.end;
    if (!end || this.ms?.readyState !== 'open' || this.sb?.updating) return;
    if (!(this.ms.duration >= end - 0.01)) this.ms.duration = end;
  }

  async open() {
    await this.ready;
    if (this.stopped) return;
    const codecs = this.levels[0].codecs.split(',').map((c) => c.trim()).join(', ');
    try {
      this.sb = this.ms.addSourceBuffer(`video/webm; codecs="${codecs}"`);
    } catch (e) {
      this.fail(WebmPlayer.ErrorTypes.MEDIA_ERROR, `this browser cannot play ${codecs} in WebM`);
      return;
    }
    this.sb.mode = 'segments';
    this.sb.addEventListener('updateend', () => this.tick());
    this.level = this.manual >= 0 ? this.manual : this.first();
    this.scheduleReload();
    const l = this.levels[this.level];
    // No position asked: a finished recording from its start, one still
    // growing near its live edge.
    if (this.start < 0) this.start = l.ended ? (l.segments[0]?.start || 0) : Math.max(l.segments[0]?.start || 0, (l.segments.at(-1)?.end || 0) - 3 * l.target);
    this.updateDuration();
    this.video.currentTime = this.start;
    this.tick();
  }

  /// The rendition to start on: the largest of at most `startHeight`
  /// lines (cheap to decode up to the start position), else by throughput.
  first() {
    let best = -1;
    this.levels.forEach((l, i) => {
      if (l.height > 0 && l.height <= this.startHeight && (best < 0 || l.height > this.levels[best].height)) best = i;
    });
    return best >= 0 ? best : this.choose();
  }

  /// The largest rendition the measured throughput carries.
  choose() {
    let best = this.levels.length - 1;
    let bestRate = -1;
    this.levels.forEach((l, i) => {
      if (l.bitrate <= this.estimate * SAFETY && l.bitrate > bestRate) { best = i; bestRate = l.bitrate; }
    });
    if (bestRate < 0) best = this.levels.reduce((m, l, i) => (l.bitrate < this.levels[m].bitrate ? i : m), 0);
    return best;
  }

  switchNow(i) {
    this.level = i;
    this.next = null;
    this.abort?.abort();
    this.flush = true;
    this.loadLevel(i).catch(() => {});
    this.tick();
  }

  /// The segment of rendition `level` that plays at `t`.
  find(level, t) {
    const segs = this.levels[level].segments;
    return segs.find((s) => s.end > t + 0.05) || null;
  }

  async tick() {
    if (this.stopped || !this.sb || this.busy || this.sb.updating) return;
    const v = this.video;
    const pos = v.currentTime;
    if (this.flush) {
      this.flush = false;
      this.appendedInit = null;
      this.sb.remove(0, Infinity);
      return; // updateend ticks again
    }
    const range = bufferedAround(v.buffered, pos);
    if (!range) {
      // A gap of a frame or two at the playhead (renditions are cut at
      // their own keyframes): step over it.
      const ahead = firstStartAfter(v.buffered, pos);
      if (ahead !== null && ahead - pos < 0.5 && !v.seeking) { v.currentTime = ahead; return; }
      this.next = null;
    }
    if (range && pos - range[0] > BEHIND + 10) { this.sb.remove(0, pos - BEHIND); return; }
    const edge = range ? range[1] : pos;
    if (edge - pos > AHEAD) return;
    if (this.manual < 0 && this.next) {
      const want = this.choose();
      if (want !== this.level) { this.level = want; this.next = null; this.loadLevel(want).catch(() => {}); }
    }
    const l = this.levels[this.level];
    let seg = this.next?.level === this.level ? l.segments.find((s) => s.seq === this.next.seq) : null;
    if (!seg) seg = this.find(this.level, edge);
    if (!seg) {
      if (l.ended && this.ms.readyState === 'open' && range && edge >= (l.segments.at(-1)?.end || 0) - 0.5) this.ms.endOfStream();
      return; // the end, or a live playlist not reloaded yet
    }
    this.busy = true;
    try {
      const key = `${this.level} ${seg.init}`;
      if (this.appendedInit !== key) {
        await this.append(await get(seg.init, 'arrayBuffer'));
        this.appendedInit = key;
      }
      const began = performance.now();
      this.abort = new AbortController();
      const data = await get(seg.url, 'arrayBuffer', this.abort.signal);
      const seconds = Math.max(0.001, (performance.now() - began) / 1000);
      this.estimate = 0.7 * this.estimate + 0.3 * (data.byteLength * 8 / seconds);
      await this.append(data);
      this.next = { level: this.level, seq: seg.seq + 1 };
      if (this.shown !== this.level) {
        this.shown = this.level;
        this.emit(WebmPlayer.Events.LEVEL_SWITCHED, { level: this.level });
      }
    } catch (e) {
      if (e.name !== 'AbortError') this.fail(WebmPlayer.ErrorTypes.NETWORK_ERROR, e.message);
    } finally {
      this.busy = false;
    }
    this.tick();
  }

  append(data) {
    return new Promise((ok, fail) => {
      const done = () => { this.sb.removeEventListener('error', bad); ok(); };
      const bad = () => { this.sb.removeEventListener('updateend', done); fail(new Error('the browser refused a segment')); };
      this.sb.addEventListener('updateend', done, { once: true });
      this.sb.addEventListener('error', bad, { once: true });
      this.sb.appendBuffer(data);
    });
  }
}

async function get(url, as, signal) {
  const res = await fetch(url, { signal });
  if (!res.ok) throw new Error(`${new URL(url).pathname}: ${res.status}`);
  return res[as]();
}

/// `KEY=value,KEY="quoted, value"` attributes of a playlist tag.
function attrs(list) {
  const out = {};
  for (const m of list.matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) out[m[1]] = m[2].replace(/^"|"$/g, '');
  return out;
}

function bufferedAround(b, t) {
  for (let i = 0; i < b.length; i++) if (b.start(i) <= t + 0.05 && t < b.end(i)) return [b.start(i), b.end(i)];
  return null;
}

function firstStartAfter(b, t) {
  for (let i = 0; i < b.length; i++) if (b.start(i) > t) return b.start(i);
  return null;
}
