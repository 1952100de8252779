// Protocol compliance without our JavaScript: a page on another origin that
// uses nothing but RTCPeerConnection and fetch (standard, non-trickle WHIP
// and WHEP, as third-party tools do) publishes and plays. It also proves
// CORS: the page's origin is not the server's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startServer, launchBrowser, STREAM_KEY, waitFor } from './harness.js';

const PAGE = `<!doctype html><html><body><video id="v" autoplay muted playsinline></video><script>
async function negotiate(pc, url, token) {
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => {
    if (pc.iceGatheringState === 'complete') return r();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
  });
  const headers = { 'Content-Type': 'application/sdp' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch(url, { method: 'POST', headers, body: pc.localDescription.sdp });
  if (res.status !== 201) throw new Error('POST ' + url + ' → ' + res.status);
  window.locations = (window.locations || []).concat(res.headers.get('Location'));
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
}
window.publishAndPlay = async (base, token) => {
  const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  const pub = new RTCPeerConnection();
  media.getTracks().forEach((t) => pub.addTransceiver(t, { direction: 'sendonly' }));
  await negotiate(pub, base + '/whip/live', token);
  const view = new RTCPeerConnection();
  view.addTransceiver('audio', { direction: 'recvonly' });
  view.addTransceiver('video', { direction: 'recvonly' });
  view.ontrack = (e) => { const v = document.getElementById('v'); v.srcObject = v.srcObject || new MediaStream(); v.srcObject.addTrack(e.track); };
  await negotiate(view, base + '/whep/live', null);
  window.viewer = view;
};
window.framesDecoded = async () => {
  let n = 0;
  (await window.viewer.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') n = s.framesDecoded || 0; });
  return n;
};
</script></body></html>`;

test('a plain RTCPeerConnection + fetch page on another origin publishes over WHIP and plays over WHEP', async () => {
  const server = await startServer();
  const pageServer = createServer((req, res) => { res.writeHead(200, { 'Content-Type': 'text/html' }); res.end(PAGE); });
  await new Promise((r) => pageServer.listen(0, '127.0.0.1', r));
  let browser;
  try {
    browser = await launchBrowser();
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${pageServer.address().port}/`);
    await page.evaluate(([base, token]) => window.publishAndPlay(base, token), [server.base, STREAM_KEY]);
    const locations = await page.evaluate(() => window.locations);
    assert.match(locations[0], /^\/whip\/live\/[0-9a-f]+$/, 'WHIP Location is an absolute path, readable cross-origin');
    assert.match(locations[1], /^\/whep\/live\/[0-9a-f]+$/);
    await waitFor('frames decoded', async () => (await page.evaluate(() => window.framesDecoded())) > 10, 20_000);
  } finally {
    await browser?.close().catch(() => {});
    pageServer.close();
    await server.stop();
  }
});
