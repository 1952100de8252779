// The STUN/TURN servers the server offers (`GET /api/ice-servers`, TURN
// ones with fresh time-limited credentials), for every RTCPeerConnection
// the pages make: a viewer or publisher whose network reaches the server
// only through TURN still connects. Asked anew for each connection, since
// credentials expire; without an answer within a second, none are used
// (the server's own candidates, UDP and TCP, still work).

const WAIT_MS = 1000;

export async function iceServers() {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), WAIT_MS);
  try {
    const res = await fetch('/api/ice-servers', { signal: controller.signal, cache: 'no-store' });
    if (!res.ok) return [];
    return (await res.json()).ice_servers || [];
  } catch {
    return [];
  } finally {
    clearTimeout(timer);
  }
}

/// A new RTCPeerConnection with the offered servers.
export async function peerConnection() {
  return new RTCPeerConnection({ iceServers: await iceServers() });
}
