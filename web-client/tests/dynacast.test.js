// Unused layers are paused at a browser publisher: with nobody watching a
// layer for 10 s, the server tells the /publish page (over /ws) to stop
// sending it; a viewer arriving gets it resumed and plays. (A recorded
// broadcast keeps every layer, watched or not, for the recording: this
// server records nothing.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, waitFor, inboundVideo, startPublishing, waitForLayers } from './harness.js';

const activeEncodings = (page) => page.evaluate(() => {
  const sender = window.relaycastPublisher.getSenders().find((s) => s.track?.kind === 'video');
  return sender.getParameters().encodings.map((e) => e.active);
});

test('layers nobody watches are paused at the browser publisher and resumed for a viewer', async () => {
  const server = await startServer({ extraArgs: ['--no-recordings'] });
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
    console.log(`viewer arrived: first frame after ${Date.now() - opened} ms`);
    // The resume reaches the page on the server's next 500 ms tick, which
    // may come after the first frame: wait for it rather than race it.
    await waitFor('a layer resumed at the publisher', async () => (await activeEncodings(publisher)).some((a) => a), 3_000, 50);
    console.log(`a layer resumed ${Date.now() - opened} ms after the viewer arrived: ${await activeEncodings(publisher)}`);
    // And it is live video that plays, not only what was cached.
    const framesThen = (await inboundVideo(viewer)).framesDecoded;
    await waitFor('the viewer keeps decoding', async () => (await inboundVideo(viewer)).framesDecoded >= framesThen + 20, 5_000, 100);
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
  }
});
