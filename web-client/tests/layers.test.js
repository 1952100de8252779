// A publisher's layer stops (as when Chromium's encoder drops one under CPU
// load): its viewers move to the next layer within a second, and back when
// the layer returns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, waitFor, inboundVideo, startPublishing, waitForLayers } from './harness.js';

async function setTopLayerActive(page, active) {
  await page.evaluate(async (on) => {
    const sender = window.relaycastPublisher.getSenders().find((s) => s.track?.kind === 'video');
    const params = sender.getParameters();
    // Encodings are smallest first (q, h, f): the last is the top layer.
    params.encodings[params.encodings.length - 1].active = on;
    await sender.setParameters(params);
  }, active);
}

test('viewers leave a stopped layer within 1 s and return when it comes back', async () => {
  const server = await startServer();
  let browser;
  try {
    browser = await launchBrowser();
    const publisher = await startPublishing(browser, server.base);
    await waitForLayers(server.base);
    const viewer = await browser.newPage();
    await viewer.goto(`${server.base}/watch/live`);
    await waitFor('viewer on the top layer', async () => (await inboundVideo(viewer))?.frameWidth >= 1280, 20_000);

    await setTopLayerActive(publisher, false);
    const stopped = Date.now();
    await waitFor('viewer on the next layer', async () => {
      const s = await inboundVideo(viewer);
      return s.frameWidth > 0 && s.frameWidth < 1280;
    }, 10_000, 20);
    const moved = Date.now() - stopped;
    console.log(`top layer stopped: the viewer decodes the next layer after ${moved} ms`);
    assert.ok(moved <= 1000, `moved within 1 s (took ${moved} ms)`);

    await setTopLayerActive(publisher, true);
    const resumed = Date.now();
    await waitFor('viewer back on the top layer', async () => (await inboundVideo(viewer)).frameWidth >= 1280, 15_000, 50);
    console.log(`top layer back: the viewer decodes it again after ${Date.now() - resumed} ms`);
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
  }
});

test('switch latency: quality menu to the new layer decoded, over 10 switches', async () => {
  const server = await startServer();
  let browser;
  try {
    browser = await launchBrowser();
    const publisher = await startPublishing(browser, server.base);
    await waitForLayers(server.base);
    const viewer = await browser.newPage();
    await viewer.goto(`${server.base}/watch/live`);
    await waitFor('viewer on the top layer', async () => (await inboundVideo(viewer))?.frameWidth >= 1280, 20_000);
    const samples = [];
    for (let i = 0; i < 10; i++) {
      const low = i % 2 === 0;
      const started = Date.now();
      await viewer.selectOption('#layer', low ? 'low' : 'high');
      await waitFor(`decoded ${low ? 'low' : 'high'}`, async () => {
        const w = (await inboundVideo(viewer)).frameWidth;
        return low ? w > 0 && w <= 400 : w >= 1280;
      }, 10_000, 10);
      samples.push(Date.now() - started);
    }
    samples.sort((a, b) => a - b);
    const p = (q) => samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)];
    console.log(`switch latency, menu → new layer decoded: p50 ${p(0.5)} ms, p99 ${p(0.99)} ms (all: ${samples.join(', ')})`);
    assert.ok(p(0.5) < 1500, 'a switch takes well under a keyframe interval');
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
  }
});
