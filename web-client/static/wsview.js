// A viewer session negotiated over the realtime websocket (`viewer.offer` →
// `viewer.answer`, trickled `viewer.candidate`s), the watch page's own path;
// whep.js stays for when the websocket is unavailable and for third parties.
// The server ends the session when the socket closes, so the page
// renegotiates after a websocket reconnect.
import { peerConnection } from '/static/iceservers.js';


/// Resolves to `{ pc, session, resource, via, stop }`; rejects with the
/// server's RealtimeError (or a timeout) so the caller can fall back.
export async function watchOverRealtime(rt, stream, video, { layer = 'auto', replace = null } = {}) {
  const pc = await peerConnection();
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  const media = new MediaStream();
  pc.ontrack = (e) => { media.addTrack(e.track); video.srcObject = media; };
  const early = [];
  let session = null;
  pc.onicecandidate = (e) => {
    if (!e.candidate) return;
    if (session) rt.send({ type: 'viewer.candidate', session, candidate: e.candidate.candidate });
    else early.push(e.candidate.candidate);
  };
  try {
    await pc.setLocalDescription(await pc.createOffer());
    const offer = { type: 'viewer.offer', stream, sdp: pc.localDescription.sdp, layer };
    let answer;
    try {
      answer = await rt.request(replace ? { ...offer, session: replace } : offer, 'viewer.answer');
    } catch (err) {
      // The session to replace is already gone (the server ended it): ask anew.
      if (!replace || err.code === 'disconnected' || err.code === 'timeout') throw err;
      answer = await rt.request(offer, 'viewer.answer');
    }
    session = answer.session;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    for (const candidate of early.splice(0)) rt.send({ type: 'viewer.candidate', session, candidate });
  } catch (err) {
    pc.close();
    throw err;
  }
  return {
    pc,
    session,
    via: 'ws',
    // The session is also an ordinary viewer resource (state, layer).
    resource: new URL(`/whep/${encodeURIComponent(stream)}/${session}`, location.href).toString(),
    stop: async () => {
      pc.close();
      rt.send({ type: 'viewer.leave', session });
    },
  };
}
