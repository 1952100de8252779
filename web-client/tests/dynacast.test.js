// Unused layers are paused at a browser publisher: with nobody watching a
// layer for 10 s, the server tells the /publish page (over /ws) to stop
// sending it; a viewer arriving gets it resumed and plays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, waitFor, inboundVideo, startPublishing, waitForLayers } from './harness.js';

const activeEncodings = (page) => page.evaluate(() => {
  const sender = window.relaycastPublisher.getSenders().find((s) => s.track?.kind === 'video');
  return sender.getParameters().encodings.map((e) => e.active);
});

test('layers nobody watches are paused at the browser publisher and resumed for a viewer', async () => {
  const server = await startServer();
  let browser;
  try {
    browser = await launchBrowser();
    const publisher = await startPublishing(browser, server.base);
    await waitForLayers(server.base);
    assert.deepEqual(await activeEncodings(publisher), [true, true, true]);

    const idleSince = Date.now();
    await waitFor('all layers paused with no viewer', async () => (await activeEncodings(publisher)).every((a) => !a), 16_000, 250);
    console.log(`no viewer: layers paused after ${Date.now() - idleSince} ms`);

    const viewer = await browser.newPage();
    const opened = Date.now();
    await viewer.goto(`${server.base}/watch/live`);
    await waitFor('viewer decodes', async () => (await inboundVideo(viewer))?.framesDecoded > 0, 10_000, 50);
    console.log(`viewer arrived: first frame after ${Date.now() - opened} ms (layer resumed on demand)`);
    const active = await activeEncodings(publisher);
    assert.ok(active.some((a) => a), `a layer was resumed: ${active}`);
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
  }
});
