// A viewer whose network blocks UDP plays over ICE-TCP: Chromium with
// `--webrtc-ip-handling-policy=disable_non_proxied_udp` sends no UDP at all,
// so its only way in is the worker's passive TCP candidate (RFC 6544).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, waitFor, inboundVideo, startPublishing, waitForLayers, sleep } from './harness.js';

/// The transport of the page's viewer connection, from its selected pair.
async function transport(page) {
  return page.evaluate(async () => {
    const stats = await window.relaycastViewer.getStats();
    const byId = new Map();
    stats.forEach((s) => byId.set(s.id, s));
    let pair = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId);
    });
    const local = pair && byId.get(pair.localCandidateId);
    const remote = pair && byId.get(pair.remoteCandidateId);
    return pair ? { local: local?.protocol, remote: remote?.protocol, tcptype: remote?.tcpType, rtt: pair.currentRoundTripTime } : null;
  });
}

test('a viewer that cannot send UDP plays over ICE-TCP', async () => {
  const server = await startServer();
  let publisherBrowser;
  let viewerBrowser;
  try {
    publisherBrowser = await launchBrowser();
    await startPublishing(publisherBrowser, server.base);
    await waitForLayers(server.base);
    viewerBrowser = await launchBrowser({ extraArgs: ['--webrtc-ip-handling-policy=disable_non_proxied_udp'] });
    const page = await viewerBrowser.newPage();
    const opened = Date.now();
    await page.goto(`${server.base}/watch/live`);
    await waitFor('first decoded frame over TCP', async () => (await inboundVideo(page))?.framesDecoded > 0, 15_000, 20);
    const firstFrame = Date.now() - opened;
    const t = await transport(page);
    console.log(`ICE-TCP: first frame ${firstFrame} ms after opening the page; pair ${JSON.stringify(t)}`);
    assert.equal(t?.local, 'tcp', `the selected pair is TCP: ${JSON.stringify(t)}`);
    assert.ok(firstFrame <= 2000, `first frame within 2 s (took ${firstFrame} ms)`);

    // It keeps playing, on the top layer (loopback TCP carries it).
    const before = (await inboundVideo(page)).framesDecoded;
    await sleep(3000);
    const after = await inboundVideo(page);
    const fps = (after.framesDecoded - before) / 3;
    console.log(`ICE-TCP: ${fps.toFixed(1)} frames/s decoded, ${after.frameWidth}×${after.frameHeight}, ${after.packetsLost} packets lost`);
    assert.ok(fps > 10, `frames keep decoding (${fps.toFixed(1)}/s)`);
    await waitFor('the top layer over TCP', async () => (await inboundVideo(page)).frameWidth >= 1280, 15_000, 100);
  } finally {
    await viewerBrowser?.close().catch(() => {});
    await publisherBrowser?.close().catch(() => {});
    await server.stop();
  }
});
