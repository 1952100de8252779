// A standard WHIP client (RFC 9725): one offer with all candidates, POSTed
// once with the stream key as bearer token; DELETE on stop.
import { peerConnection } from '/static/iceservers.js';

export async function publish(url, token, stream, { simulcast = true, codec = 'auto' } = {}) {
  const pc = await peerConnection();
  const [audio] = stream.getAudioTracks();
  const [video] = stream.getVideoTracks();
  if (audio) pc.addTransceiver(audio, { direction: 'sendonly' });
  if (video) {
    // Smallest first; the server ranks layers by the frame size it
    // measures, so the order is only our choice.
    const sendEncodings = simulcast
      ? [
          { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 200_000 },
          { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 700_000 },
          { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 2_500_000 },
        ]
      : [{ maxBitrate: 2_500_000 }];
    const transceiver = pc.addTransceiver(video, { direction: 'sendonly', sendEncodings });
    if (codec !== 'auto' && RTCRtpSender.getCapabilities) {
      // Put the chosen codec first; keep the rest (RTX, RED, FEC) after it.
      const codecs = RTCRtpSender.getCapabilities('video').codecs;
      const wanted = `video/${codec}`.toLowerCase();
      const first = codecs.filter((c) => c.mimeType.toLowerCase() === wanted
        && (codec !== 'H264' || /packetization-mode=1/.test(c.sdpFmtpLine || '')));
      if (first.length) {
        transceiver.setCodecPreferences([...first, ...codecs.filter((c) => !first.includes(c))]);
      }
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 1000);
  });
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  });
  if (res.status !== 201) {
    pc.close();
    const body = await res.json().catch(() => ({}));
    throw new Error(body.message || `WHIP POST failed: ${res.status}`);
  }
  const resource = new URL(res.headers.get('Location'), new URL(url, location.href)).toString();
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  return {
    pc,
    resource,
    stop: async () => {
      pc.close();
      await fetch(resource, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
    },
  };
}

// Per-layer outgoing bitrate (kbit/s) and frame size, from two getStats()
// samples.
export function layerMeter(pc) {
  let last = new Map();
  return async () => {
    const stats = await pc.getStats();
    const now = new Map();
    const layers = [];
    stats.forEach((s) => {
      if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
      const key = s.rid || s.ssrc;
      now.set(key, { bytes: s.bytesSent, t: s.timestamp });
      const prev = last.get(key);
      const kbps = prev ? ((s.bytesSent - prev.bytes) * 8) / (s.timestamp - prev.t) : 0;
      layers.push({ rid: s.rid || '-', kbps: Math.round(kbps), width: s.frameWidth || 0, height: s.frameHeight || 0 });
    });
    last = now;
    return layers.sort((a, b) => b.width - a.width);
  };
}

// The publisher's control channel: the server says which simulcast layers
// anyone watches; the others are paused (setParameters active=false) so they
// cost no CPU or upload, and resumed the moment a viewer needs them.
export function followLayerControl(pc, resource, stream, token, onChange = () => {}) {
  const session = new URL(resource).pathname.split('/').pop();
  const url = new URL('/ws', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(url);
  ws.onopen = () => ws.send(JSON.stringify({ type: 'publisher.attach', stream, session, token }));
  // Only what the server changed is applied: an encoding the application
  // (or the user) turned off stays off until the server asks for it.
  const told = new Map();
  ws.onmessage = async (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type !== 'layers') return;
    const sender = pc.getSenders().find((s) => s.track?.kind === 'video');
    if (!sender) return;
    const params = sender.getParameters();
    let changed = false;
    for (const enc of params.encodings) {
      const layer = msg.layers.find((l) => l.rid === enc.rid);
      if (!layer || told.get(enc.rid) === layer.active) continue;
      told.set(enc.rid, layer.active);
      if (enc.active !== layer.active) {
        enc.active = layer.active;
        changed = true;
      }
    }
    if (changed) await sender.setParameters(params);
    onChange(msg.layers);
  };
  return ws;
}
