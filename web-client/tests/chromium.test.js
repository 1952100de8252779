// Chromium publishes with the /publish page and Chromium watches with the
// /watch page: frames decode, the quality menu changes the decoded size,
// and a viewer joining mid-stream sees its first frame quickly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, launchBrowser, waitFor, inboundVideo, screenshotDir, sleep, startPublishing, waitForLayers } from './harness.js';

/// The codec the publisher really sends, from its outbound stats.
async function sentCodec(page) {
  return page.evaluate(async () => {
    const stats = await window.relaycastPublisher.getStats();
    let codecId = null;
    const codecs = new Map();
    stats.forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video' && s.codecId) codecId = s.codecId;
      if (s.type === 'codec') codecs.set(s.id, s.mimeType);
    });
    return codecs.get(codecId) || null;
  });
}

async function openViewer(browser, base, layer = 'auto') {
  const page = await browser.newPage();
  const opened = Date.now();
  await page.goto(`${base}/watch/live${layer === 'auto' ? '' : `?layer=${layer}`}`);
  const first = await waitFor('first decoded frame', async () => {
    const s = await inboundVideo(page);
    return s && s.framesDecoded > 0 && s;
  }, 15_000, 20);
  return { page, firstFrameMs: Date.now() - opened, first };
}

async function framesGrow(page, what) {
  const before = (await inboundVideo(page)).framesDecoded;
  await waitFor(`${what}: framesDecoded grows`, async () => (await inboundVideo(page)).framesDecoded > before + 15, 10_000);
}

for (const codec of ['VP8', 'H264']) {
  test(`Chromium publishes 3-layer ${codec} simulcast; two Chromium viewers play and switch quality`, async () => {
    const server = await startServer();
    let browser;
    try {
      browser = await launchBrowser();
      const publisher = await startPublishing(browser, server.base, codec);
      assert.equal((await waitFor('video sent', () => sentCodec(publisher), 10_000)).toLowerCase(), `video/${codec}`.toLowerCase());
      await waitForLayers(server.base);

      const a = await openViewer(browser, server.base);
      const b = await openViewer(browser, server.base);
      console.log(`${codec}: first frames after ${a.firstFrameMs} ms and ${b.firstFrameMs} ms`);
      assert.ok(a.firstFrameMs < 1500, `first frame within 1.5 s of opening mid-stream (took ${a.firstFrameMs} ms)`);
      assert.ok(b.firstFrameMs < 1500, `first frame within 1.5 s of opening mid-stream (took ${b.firstFrameMs} ms)`);
      await framesGrow(a.page, 'viewer a');
      await framesGrow(b.page, 'viewer b');

      // The quality menu: low, then high, each changes the decoded width.
      let switchedAt = Date.now();
      await a.page.selectOption('#layer', 'low');
      const low = await waitFor('low layer decoded', async () => {
        const s = await inboundVideo(a.page);
        return s.frameWidth > 0 && s.frameWidth <= 400 && s.frameWidth;
      }, 15_000, 20);
      const toLow = Date.now() - switchedAt;
      switchedAt = Date.now();
      await a.page.selectOption('#layer', 'high');
      const high = await waitFor('high layer decoded', async () => {
        const s = await inboundVideo(a.page);
        return s.frameWidth > low && s.frameWidth;
      }, 15_000, 20).catch(async (e) => {
        const api = await (await fetch(`${server.base}/api/broadcasts/live`)).json();
        throw new Error(`${e.message}; viewer ${JSON.stringify(await inboundVideo(a.page))}; layers ${JSON.stringify(api.layers)}; select ${await a.page.inputValue('#layer')}`);
      });
      const toHigh = Date.now() - switchedAt;
      console.log(`${codec}: quality menu switched decoded width ${low} → ${high}; menu to decoded size: ${toLow} ms down, ${toHigh} ms up`);
      // The server exports the switch latency and per-viewer link figures.
      const metrics = await (await fetch(`${server.base}/metrics`)).text();
      const switches = Number(/relaycast_layer_switch_seconds_count (\d+)/.exec(metrics)?.[1]);
      assert.ok(switches >= 2, `switch latency histogram counts the switches (${switches})`);
      // RTT comes with the viewers' receiver reports, every couple of seconds.
      await waitFor('the viewer API reports RTT and an estimate', async () => {
        const viewerApi = await (await fetch(`${server.base}/api/broadcasts/live/viewers`, { headers: await server.modHeaders() })).json();
        return viewerApi.length === 2 && viewerApi.some((v) => v.rtt_ms !== null && v.estimate_kbps > 0);
      }, 10_000, 250);
      assert.ok(high > low);
      await framesGrow(a.page, 'viewer a after switching');
      await framesGrow(b.page, 'viewer b, untouched by a\'s switch');

      await a.page.click('#nerds');
      await sleep(1500);
      if (codec === 'VP8') {
        await publisher.screenshot({ path: join(screenshotDir, 'publish.png') });
        await a.page.screenshot({ path: join(screenshotDir, 'watch.png') });
        const dir = await browser.newPage();
        await dir.goto(server.base);
        await waitFor('directory lists the broadcast', async () => (await dir.textContent('#list')).includes('live'), 10_000);
        await dir.screenshot({ path: join(screenshotDir, 'directory.png') });
      }
    } finally {
      await browser?.close().catch(() => {});
      await server.stop();
    }
  });
}

test('the watch page says it is waiting before the broadcaster starts, then plays', async () => {
  const server = await startServer();
  let browser;
  try {
    browser = await launchBrowser();
    const viewer = await browser.newPage();
    await viewer.goto(`${server.base}/watch/live`);
    await waitFor('waiting message', async () => (await viewer.textContent('#overlay')).includes('Waiting for the broadcaster'), 10_000);
    await startPublishing(browser, server.base, 'VP8');
    await waitFor('frames decoded after the broadcaster started', async () => {
      const s = await inboundVideo(viewer);
      return s && s.framesDecoded > 10;
    }, 20_000);
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
  }
});
