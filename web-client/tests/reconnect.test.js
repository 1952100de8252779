// The watch page reconnects by itself: when the server ends its session, the
// page notices, shows that it is reconnecting, and plays again on a new
// session without a reload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, waitFor, inboundVideo, startPublishing, waitForLayers } from './harness.js';

test('the watch page reconnects on its own when its session is ended', async () => {
  const server = await startServer();
  let browser;
  try {
    browser = await launchBrowser();
    await startPublishing(browser, server.base);
    await waitForLayers(server.base, 1);
    const viewer = await browser.newPage();
    await viewer.goto(`${server.base}/watch/live`);
    await waitFor('playing', async () => (await inboundVideo(viewer))?.framesDecoded > 10, 15_000);
    const [first] = await (await fetch(`${server.base}/api/broadcasts/live/viewers`, { headers: await server.modHeaders() })).json();

    const res = await fetch(`${server.base}/whep/live/${first.session}`, { method: 'DELETE' });
    assert.equal(res.status, 200);
    const ended = Date.now();
    const second = await waitFor('a new session', async () => {
      const v = await (await fetch(`${server.base}/api/broadcasts/live/viewers`, { headers: await server.modHeaders() })).json();
      return v.find((x) => x.session !== first.session && x.connected);
    }, 30_000, 250);
    await waitFor('playing again', async () => (await inboundVideo(viewer))?.framesDecoded > 10, 15_000);
    console.log(`session ${first.session} ended; page playing again on ${second.session} after ${Date.now() - ended} ms`);
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
  }
});
