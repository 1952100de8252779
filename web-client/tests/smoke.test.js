import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, launchBrowser, STREAM_KEY, waitFor, inboundVideo, screenshotDir, sleep } from './harness.js';

test('Chromium publishes 3-layer simulcast and two Chromium viewers play it', async () => {
  const server = await startServer();
  let browser;
  try {
    browser = await launchBrowser();
    const pub = await browser.newPage();
    await pub.goto(`${server.base}/publish/live`);
    await pub.fill('#key', STREAM_KEY);
    await pub.click('#start');
    await waitFor('publisher connected', () => pub.evaluate(() => window.relaycastPublisher?.connectionState === 'connected'), 15_000);

    const viewers = [await browser.newPage(), await browser.newPage()];
    for (const v of viewers) await v.goto(`${server.base}/watch/live`);
    for (const v of viewers) {
      const s = await waitFor('frames decoded', async () => { const s = await inboundVideo(v); return s && s.framesDecoded > 5 && s; }, 20_000);
      console.log('viewer', s);
    }
    await sleep(3000);
    for (const v of viewers) console.log('viewer later', await inboundVideo(v));
    await pub.screenshot({ path: join(screenshotDir, 'publish.png') });
    await viewers[0].screenshot({ path: join(screenshotDir, 'watch.png') });
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
    console.log(server.log().slice(-3000));
  }
});
