// A standard WHEP client: one recvonly offer with all candidates, POSTed
// once (non-trickle), as third-party WHEP players do.
import { peerConnection } from '/static/iceservers.js';

export async function watch(url, video) {
  const pc = await peerConnection();
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  const stream = new MediaStream();
  pc.ontrack = (e) => { stream.addTrack(e.track); video.srcObject = stream; };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 1000);
  });
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  if (res.status !== 201) {
    pc.close();
    const body = await res.json().catch(() => ({}));
    throw new Error(body.message || `WHEP POST failed: ${res.status}`);
  }
  const resource = new URL(res.headers.get('Location'), new URL(url, location.href)).toString();
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  return { pc, resource, stop: async () => { pc.close(); await fetch(resource, { method: 'DELETE' }).catch(() => {}); } };
}
