// An OBS-faithful WHIP publisher for the tests: what OBS 32's obs-webrtc
// output sends, built on the same WebRTC library OBS uses (libdatachannel,
// through node-datachannel), with Debian's ffmpeg + libx264 as the encoder.
//
// What it reproduces (OBS 32 plugins/obs-webrtc/whip-output.cpp + whip-service):
// - Offer: libdatachannel's own offer for an Opus audio track (mid 0, PT 111,
//   SSRC base) and an H264 video track (mid 1, PT 96, libdatachannel's default
//   fmtp profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1,
//   SSRC base+1, extmap 1 mid, 2 rtp-stream-id; with several layers a=rid:N send
//   and a=simulcast:send 0;1;..., no video a=ssrc lines), taken right after
//   setLocalDescription() and POSTed without ICE candidates (OBS never trickles).
// - Encoder: x264 High profile, no B-frames, repeat headers + AUD (what
//   WHIPService::ApplyEncoderSettings asks of obs-x264), fixed GOP.
// - Video RTP: libdatachannel's H264RtpPacketizer behaviour, reimplemented here:
//   every NAL unit (AUD, SPS, PPS, SEI, slices) is its own packet, FU-A when
//   larger than 1200 bytes (libdatachannel's equal-split fragment sizes), no
//   STAP-A; marker on the last packet of a frame; 90 kHz timestamps from the
//   encoder's dts; one-byte header extensions mid (id 1) then rid (id 2) on
//   every video packet, rid "0" even with one layer. Per layer: SSRC base+1+i,
//   rid i, sequence numbers and timestamps starting at 0 (OBS's videoLayerState).
// - Audio RTP: 20 ms Opus packets (a valid Opus silence frame), PT 111, 48 kHz,
//   marker set on every packet, no header extensions, random initial seq/ts.
// - RTCP: libdatachannel's RtcpSrReporter and RtcpNackResponder(4000) chained on
//   the tracks plus the PacingHandler (bitrate*10000 bit/s, 5 ms), as OBS does.
//   Keyframe requests (PLI/FIR) are counted and otherwise ignored.
// - Frames produced while the track is not open yet are dropped (OBS's Send()).
// - stop(): close the PeerConnection, then DELETE the resource.
// - reconnect(): OBS after a network blip: PeerConnection closed without a
//   DELETE reaching the server, the encoder restarted (so the new session starts
//   on a keyframe), a new PeerConnection and a new POST, same SSRCs.
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import ndc from 'node-datachannel';

export const AUDIO_MID = '0';
export const VIDEO_MID = '1';
export const AUDIO_PT = 111;
export const VIDEO_PT = 96;
export const MAX_VIDEO_FRAGMENT_SIZE = 1200;
export const VIDEO_NACK_BUFFER = 4000;
const MID_EXT_ID = 1;
const RID_EXT_ID = 2;
const URI_MID = 'urn:ietf:params:rtp-hdrext:sdes:mid';
const URI_RID = 'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id';
// An Opus packet: TOC 0xf8 (CELT fullband, 20 ms, one frame) and a 2-byte frame
// that decodes to silence.
const OPUS_SILENCE = Buffer.from([0xf8, 0xff, 0xfe]);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ID_CHARS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const randomId = (n) => Array.from({ length: n }, () => ID_CHARS[randomInt(ID_CHARS.length)]).join('');

// Layer i: rid "i", i = 0 the largest (OBS's order).
export const DEFAULT_LAYERS = [
  { width: 1280, height: 720, kbps: 2500 },
  { width: 640, height: 360, kbps: 800 },
  { width: 320, height: 180, kbps: 250 },
];

// ---------------------------------------------------------------- H264 parsing

/// Splits an Annex-B byte stream into NAL units (without start codes). Feed it
/// chunks; it calls onNal for every NAL unit it knows to be complete.
export class AnnexBSplitter {
  constructor(onNal) {
    this.onNal = onNal;
    this.buf = Buffer.alloc(0);
    this.scanFrom = 0;
    this.nalStart = -1; // index of the first byte after the current start code
  }

  push(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const b = this.buf;
    let i = this.scanFrom;
    for (; i + 2 < b.length; i++) {
      if (b[i] !== 0 || b[i + 1] !== 0 || b[i + 2] !== 1) continue;
      // start code 00 00 01 at i (a 4-byte one has one more zero before it)
      if (this.nalStart >= 0) {
        let end = i;
        while (end > this.nalStart && b[end - 1] === 0) end--; // trailing zeros / long start code
        if (end > this.nalStart) this.onNal(b.subarray(this.nalStart, end));
      }
      this.nalStart = i + 3;
      i += 2;
    }
    // Keep the unfinished NAL unit (and up to 2 bytes that may begin a start code).
    const keepFrom = this.nalStart >= 0 ? this.nalStart : Math.max(0, b.length - 3);
    this.buf = Buffer.from(b.subarray(keepFrom));
    this.nalStart = this.nalStart >= 0 ? 0 : -1;
    this.scanFrom = Math.max(0, i - keepFrom);
  }
}

export const nalType = (nal) => nal[0] & 0x1f;

/// Groups NAL units into access units. x264 with aud=1 (as OBS configures it)
/// starts every access unit with an access unit delimiter (type 9).
export class AccessUnitAssembler {
  constructor(onAccessUnit) {
    this.onAccessUnit = onAccessUnit;
    this.nals = [];
  }

  push(nal) {
    if (nalType(nal) === 9 && this.nals.length) this.flush();
    this.nals.push(Buffer.from(nal));
  }

  flush() {
    if (!this.nals.length) return;
    const nals = this.nals;
    this.nals = [];
    this.onAccessUnit({ nals, keyframe: nals.some((n) => nalType(n) === 5) });
  }
}

/// RTP payloads for one access unit, as libdatachannel's H264RtpPacketizer
/// (OBS's packetizer) makes them: single NAL unit packets, FU-A for NAL units
/// over maxFragmentSize, split into equal parts. No aggregation.
export function h264Payloads(nals, maxFragmentSize = MAX_VIDEO_FRAGMENT_SIZE) {
  const out = [];
  for (const nal of nals) {
    if (nal.length <= maxFragmentSize) {
      out.push(nal);
      continue;
    }
    const count = Math.ceil(nal.length / maxFragmentSize);
    const part = Math.ceil(nal.length / count) - 2; // 2 bytes: FU indicator + FU header
    const indicator = (nal[0] & 0xe0) | 28;
    const type = nal[0] & 0x1f;
    const body = nal.subarray(1);
    for (let off = 0; off < body.length;) {
      let size = part;
      let flags = 0;
      if (off === 0) flags = 0x80; // start
      else if (off + size < body.length) flags = 0; // middle
      else { size = body.length - off; flags = 0x40; } // end
      out.push(Buffer.concat([Buffer.from([indicator, flags | type]), body.subarray(off, off + size)]));
      off += size;
    }
  }
  return out;
}

/// An RTP packet (RFC 3550) with optional one-byte header extensions (RFC 8285).
export function rtpPacket({ pt, seq, ts, ssrc, marker, extensions = [], payload }) {
  let ext = Buffer.alloc(0);
  if (extensions.length) {
    const elems = Buffer.concat(extensions.map(({ id, value }) => Buffer.concat([Buffer.from([(id << 4) | (value.length - 1)]), value])));
    const padded = Math.ceil(elems.length / 4) * 4;
    ext = Buffer.alloc(4 + padded);
    ext.writeUInt16BE(0xbede, 0);
    ext.writeUInt16BE(padded / 4, 2);
    elems.copy(ext, 4);
  }
  const h = Buffer.alloc(12);
  h[0] = 0x80 | (extensions.length ? 0x10 : 0);
  h[1] = (marker ? 0x80 : 0) | pt;
  h.writeUInt16BE(seq & 0xffff, 2);
  h.writeUInt32BE(ts >>> 0, 4);
  h.writeUInt32BE(ssrc >>> 0, 8);
  return Buffer.concat([h, ext, payload]);
}

// ---------------------------------------------------------------- encoder

/// One ffmpeg process encoding testsrc2 for every layer (split + scale), each
/// layer's Annex-B H264 on its own pipe, paced in real time by -re.
export class Encoder {
  constructor({ layers, fps = 30, gop = 120, cbr = false, onAccessUnit, log }) {
    this.layers = layers;
    // OBS's x264 CBR mode pads with filler NAL units so the stream holds its
    // bitrate even when the picture is simple.
    this.cbr = cbr;
    this.fps = fps;
    this.gop = gop;
    this.onAccessUnit = onAccessUnit;
    this.log = log;
    this.stderr = '';
  }

  start() {
    const n = this.layers.length;
    const top = this.layers[0];
    const filter = [`[0:v]split=${n}${this.layers.map((_, i) => `[s${i}]`).join('')}`];
    this.layers.forEach((l, i) => filter.push(`[s${i}]scale=${l.width}:${l.height}[v${i}]`));
    const args = ['-hide_banner', '-loglevel', 'warning', '-nostdin', '-re',
      '-f', 'lavfi', '-i', `testsrc2=size=${top.width}x${top.height}:rate=${this.fps}`,
      '-filter_complex', filter.join(';')];
    this.layers.forEach((l, i) => {
      args.push('-map', `[v${i}]`, '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'high',
        '-bf', '0', '-g', String(this.gop), '-keyint_min', String(this.gop), '-sc_threshold', '0',
        '-tune', 'zerolatency', '-aud', '1', '-pix_fmt', 'yuv420p',
        '-b:v', `${l.kbps}k`, '-maxrate', `${l.kbps}k`, '-bufsize', `${l.kbps}k`,
        ...(this.cbr ? ['-x264-params', 'nal-hrd=cbr:filler=1'] : []),
        '-flush_packets', '1', '-f', 'h264', `pipe:${3 + i}`);
    });
    this.proc = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe', ...this.layers.map(() => 'pipe')] });
    this.proc.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    this.proc.on('error', (e) => this.log?.(`ffmpeg: ${e.message}`));
    this.layers.forEach((_, i) => {
      const au = new AccessUnitAssembler((unit) => this.onAccessUnit(i, unit));
      const split = new AnnexBSplitter((nal) => au.push(nal));
      this.proc.stdio[3 + i].on('data', (chunk) => split.push(chunk));
      this.proc.stdio[3 + i].on('end', () => au.flush());
    });
  }

  async stop() {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    p.kill('SIGKILL');
    await Promise.race([new Promise((r) => p.once('exit', r)), sleep(3000)]);
  }
}

// ---------------------------------------------------------------- publisher


export class ObsPublisher {
  /**
   * @param {object} o
   * @param {string} o.base   server base URL, e.g. http://127.0.0.1:8080
   * @param {string} o.stream stream name (POST /whip/<stream>)
   * @param {string} o.key    bearer token
   * @param {number|object[]} [o.layers=1] 1 = no simulcast; 2..3 = rids 0..n-1, 0 the
   *   largest; or the layers themselves, [{width, height, kbps}], largest first
   * @param {number} [o.gop=120] frames between keyframes (OBS's default: 4 s at 30 fps)
   */
  constructor({ base, stream = 'live', key, layers = 1, gop = 120, cbr = false, log = () => {} }) {
    this.endpoint = `${base}/whip/${stream}`;
    this.key = key;
    this.layers = Array.isArray(layers) ? layers : DEFAULT_LAYERS.slice(0, layers);
    this.gop = gop;
    this.log = log;
    this.baseSsrc = randomInt(1, 2 ** 32 - 8); // OBS: generate_random_u32() once per output
    this.stats = {
      sessions: 0, framesSent: 0, framesDropped: 0, keyframesSent: 0, packetsSent: 0,
      plis: 0, firs: 0, nacks: 0, rtcpIn: 0, lastKeyframeAt: 0, liveSince: 0,
      firstFrameOfSessionWasKeyframe: [],
    };
    this.session = null;
    /// PeerConnection state changes of every session: { state, at }.
    this.states = [];
  }

  get simulcast() { return this.layers.length >= 2; }

  ssrcs() {
    return { audio: this.baseSsrc, video: this.layers.map((_, i) => (this.baseSsrc + 1 + i) >>> 0) };
  }

  /// The offer exactly as OBS POSTs it (see the file comment), and the
  /// PeerConnection and tracks behind it.
  createSession() {
    const pc = new ndc.PeerConnection('obs-whip', { iceServers: [], bindAddress: '127.0.0.1' });
    const msid = randomId(16);
    const cname = randomId(16);
    const { audio: audioSsrc, video: videoSsrcs } = this.ssrcs();

    const audio = new ndc.Audio(AUDIO_MID, 'SendOnly');
    audio.addOpusCodec(AUDIO_PT);
    audio.addSSRC(audioSsrc, cname, msid, `${msid}-audio`);
    const audioTrack = pc.addTrack(audio);
    const audioCfg = new ndc.RtpPacketizationConfig(audioSsrc, cname, AUDIO_PT, 48000);
    const audioSr = new ndc.RtcpSrReporter(audioCfg);
    audioSr.addToChain(new ndc.RtcpNackResponder());
    audioTrack.setMediaHandler(audioSr);

    const video = new ndc.Video(VIDEO_MID, 'SendOnly');
    video.addSSRC(videoSsrcs[0], cname, msid, `${msid}-video`);
    video.parseSdpLine(`a=extmap:${MID_EXT_ID} ${URI_MID}`);
    video.parseSdpLine(`a=extmap:${RID_EXT_ID} ${URI_RID}`);
    if (this.simulcast) {
      // libdatachannel's Description::Media::addRid() is not bound in
      // node-datachannel; these attribute lines print where addRid's would, and
      // the video a=ssrc lines (which addRid makes libdatachannel leave out) are
      // removed from the offer text below.
      this.layers.forEach((_, i) => video.parseSdpLine(`a=rid:${i} send`));
      video.parseSdpLine(`a=simulcast:send ${this.layers.map((_, i) => i).join(';')}`);
    }
    video.addH264Codec(VIDEO_PT);
    const videoTrack = pc.addTrack(video);
    const videoCfgs = videoSsrcs.map((ssrc) => new ndc.RtpPacketizationConfig(ssrc, cname, VIDEO_PT, 90000));
    // OBS has one SR reporter whose config it points at each layer in turn;
    // here each layer has its own (node-datachannel cannot change a config's SSRC).
    const head = new ndc.RtcpSrReporter(videoCfgs[0]);
    for (const cfg of videoCfgs.slice(1)) head.addToChain(new ndc.RtcpSrReporter(cfg));
    head.addToChain(new ndc.RtcpNackResponder(VIDEO_NACK_BUFFER));
    head.addToChain(new ndc.PacingHandler(this.layers[0].kbps * 10000, 5));
    videoTrack.setMediaHandler(head);

    for (const t of [audioTrack, videoTrack]) {
      t.onMessage((m) => this.onRtcp(m));
      // node-datachannel releases a track's (and a PeerConnection's) hold on
      // the event loop only from these callbacks, once closed.
      t.onClosed(() => {});
    }
    // OBS's WHIPOutput stops and signals OBS_OUTPUT_DISCONNECTED (its
    // reconnect path) when the PeerConnection turns disconnected, failed or
    // closed: kept with timestamps so tests can see when that happens.
    pc.onStateChange((state) => this.states.push({ state, at: Date.now() }));

    pc.setLocalDescription();
    let offer = pc.localDescription().sdp;
    offer = offer.split(/\r?\n/).filter((l) => !/^a=(candidate|end-of-candidates)/.test(l)).join('\r\n');
    // Before gathering, libdatachannel writes port 9 and 0.0.0.0; if a host
    // candidate got in first it would have written it there, so put it back.
    offer = offer.replace(/^m=(audio|video) \d+ /gm, 'm=$1 9 ').replace(/^c=IN IP[46] .*$/gm, 'c=IN IP4 0.0.0.0');
    if (this.simulcast) {
      const [head2, audioSec, videoSec] = offer.split(/(?=^m=)/m);
      offer = head2 + audioSec + videoSec.replace(/^a=ssrc:.*\r\n/gm, '');
    }
    if (!offer.endsWith('\r\n')) offer += '\r\n';
    return { pc, audioTrack, videoTrack, offer, audio: { seq: randomInt(65536), ts: randomInt(2 ** 32) }, video: this.layers.map(() => ({ seq: 0, ts: 0, lastDtsUs: 0 })) };
  }

  onRtcp(msg) {
    const b = Buffer.from(msg);
    for (let p = 0; p + 4 <= b.length;) {
      const pt = b[p + 1];
      const fmt = b[p] & 0x1f;
      const len = (b.readUInt16BE(p + 2) + 1) * 4;
      if (pt >= 192 && pt <= 223) this.stats.rtcpIn++;
      if (pt === 206 && fmt === 1) this.stats.plis++;
      if (pt === 206 && fmt === 4) this.stats.firs++;
      if (pt === 205 && fmt === 1) this.stats.nacks++;
      p += len;
    }
  }

  /// Offer, POST, answer, connect; the encoder starts once the answer is set
  /// (OBS: obs_output_begin_data_capture after Connect()).
  async start({ connectTimeoutMs = 10_000 } = {}) {
    const s = this.createSession();
    this.session = s;
    this.stats.sessions++;
    const res = await fetch(this.endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${this.key}` },
      body: s.offer,
      signal: AbortSignal.timeout(8000), // OBS: CURLOPT_TIMEOUT 8 s
    });
    const answer = await res.text();
    const location = res.headers.get('location');
    const result = { status: res.status, location, offer: s.offer, answer };
    if (res.status !== 201 || !location) {
      this.session = null;
      await this.closeSession(s);
      const err = new Error(`WHIP POST answered ${res.status} (Location: ${location})\n${answer}`);
      err.result = result;
      throw err;
    }
    s.resource = new URL(location, this.endpoint).href;
    s.pc.setRemoteDescription(answer.slice(answer.indexOf('v=0')), 'answer');
    this.startMedia(s);
    const deadline = Date.now() + connectTimeoutMs;
    while (s.pc.state() !== 'connected') {
      if (Date.now() > deadline) throw new Error(`publisher PeerConnection stuck in ${s.pc.state()}`);
      await sleep(20);
    }
    if (!this.stats.liveSince) this.stats.liveSince = Date.now();
    return result;
  }

  startMedia(s) {
    s.firstVideo = true;
    s.encoder = new Encoder({ layers: this.layers, gop: this.gop, cbr: this.cbr, log: this.log, onAccessUnit: (i, au) => this.sendVideo(s, i, au) });
    s.encoder.start();
    s.startedAt = Date.now();
    s.audioFrames = 0;
    // 20 ms Opus packets, scheduled against the clock so they do not drift.
    s.audioTimer = setInterval(() => {
      const due = Math.floor((Date.now() - s.startedAt) / 20);
      for (let n = 0; s.audioFrames < due && n < 10; n++) this.sendAudio(s);
      s.audioFrames = Math.max(s.audioFrames, due - 10);
    }, 10);
  }

  sendAudio(s) {
    const a = s.audio;
    s.audioFrames++;
    const pkt = rtpPacket({ pt: AUDIO_PT, seq: a.seq, ts: a.ts, ssrc: this.baseSsrc, marker: true, payload: OPUS_SILENCE });
    a.seq = (a.seq + 1) & 0xffff;
    a.ts = (a.ts + 960) >>> 0;
    if (!s.audioTrack.isOpen()) return;
    try { s.audioTrack.sendMessageBinary(pkt); } catch { /* track closing */ }
  }

  sendVideo(s, layer, au) {
    if (s.closed) return;
    const st = s.video[layer];
    // OBS: dts_usec of the packet (0 for the first frame after the output
    // starts, integer microseconds), duration added in 90 kHz units, rounded.
    st.frame = (st.frame ?? -1) + 1;
    const dtsUs = Math.floor((st.frame * 1_000_000) / 30);
    st.ts = (st.ts + Math.round(((dtsUs - st.lastDtsUs) / 1e6) * 90000)) >>> 0;
    st.lastDtsUs = dtsUs;
    if (!s.videoTrack.isOpen()) {
      // OBS's Send(): nothing is sent (and no sequence number used) before the track opens.
      if (layer === 0) this.stats.framesDropped++;
      return;
    }
    if (layer === 0 && s.firstVideo) {
      s.firstVideo = false;
      this.stats.firstFrameOfSessionWasKeyframe.push(au.keyframe);
    }
    const ssrc = (this.baseSsrc + 1 + layer) >>> 0;
    const extensions = [
      { id: MID_EXT_ID, value: Buffer.from(VIDEO_MID) },
      { id: RID_EXT_ID, value: Buffer.from(String(layer)) },
    ];
    const payloads = h264Payloads(au.nals);
    payloads.forEach((payload, i) => {
      const pkt = rtpPacket({ pt: VIDEO_PT, seq: st.seq, ts: st.ts, ssrc, marker: i === payloads.length - 1, extensions, payload });
      st.seq = (st.seq + 1) & 0xffff;
      try { s.videoTrack.sendMessageBinary(pkt); this.stats.packetsSent++; } catch { /* track closing */ }
    });
    if (layer === 0) {
      this.stats.framesSent++;
      if (au.keyframe) {
        this.stats.keyframesSent++;
        this.stats.lastKeyframeAt = Date.now();
      }
    }
  }

  async closeSession(s) {
    if (!s || s.closed) return;
    s.closed = true;
    clearInterval(s.audioTimer);
    await s.encoder?.stop();
    for (const t of [s.audioTrack, s.videoTrack]) { try { t.close(); } catch { /* already closed */ } }
    try { s.pc.close(); } catch { /* already closed */ }
  }

  /// OBS's Stop: close the PeerConnection, then DELETE the resource.
  async stop() {
    const s = this.session;
    this.session = null;
    if (!s) return null;
    await this.closeSession(s);
    const res = await fetch(s.resource, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${this.key}` },
      signal: AbortSignal.timeout(8000),
    }).catch((e) => ({ status: `error: ${e.message}` }));
    return res.status;
  }

  /// A network blip as OBS lives it: the PeerConnection goes away without a
  /// DELETE reaching the server, the encoder stops; after gapMs OBS reconnects
  /// with a new PeerConnection, a new POST and the same SSRCs.
  async reconnect({ gapMs = 2000 } = {}) {
    const old = this.session;
    this.session = null;
    await this.closeSession(old);
    await sleep(gapMs);
    const t0 = Date.now();
    const result = await this.start();
    return { ...result, postedAt: t0 };
  }
}
