// The layer fits the player and a hidden page costs no video: the watch
// page reports its player's picture (× devicePixelRatio) and visibility
// (viewport.js); the server caps an automatic layer to the smallest one
// covering it and pauses a hidden page's video after 5 s, audio going on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, waitFor, inboundVideo, startPublishing, waitForLayers, sleep } from './harness.js';

/// Sizes the watch page's player (CSS pixels; devicePixelRatio is 1 here).
async function sizePlayer(page, width, height) {
  await page.evaluate(([w, h]) => {
    let style = document.getElementById('test-size');
    if (!style) {
      style = document.createElement('style');
      style.id = 'test-size';
      document.head.append(style);
    }
    style.textContent = `#video { width: ${w}px !important; height: ${h}px !important; max-width: none !important; }`;
  }, [width, height]);
}

/// Hides or shows the page as a browser does for a background tab: its
/// `visibilityState` and a `visibilitychange` event. Headless Chromium never
/// hides a page by itself (a tab behind another, or a minimized window, stay
/// "visible"), so the test gives the page the signal the browser would.
async function setVisibility(page, state) {
  await page.evaluate((s) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => s });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => s === 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  }, state);
}

/// Received bytes of the page's inbound video and audio.
async function received(page) {
  return page.evaluate(async () => {
    const out = { video: 0, audio: 0 };
    (await window.relaycastViewer.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp') out[s.kind] = s.bytesReceived || 0;
    });
    return out;
  });
}

async function rate(page, ms) {
  const a = await received(page);
  await sleep(ms);
  const b = await received(page);
  return { video: ((b.video - a.video) * 8) / ms, audio: ((b.audio - a.audio) * 8) / ms }; // kbit/s
}

test('a small player gets the small layer, grows to the top one, and a hidden page gets no video', async () => {
  const server = await startServer();
  let browser;
  try {
    browser = await launchBrowser();
    await startPublishing(browser, server.base);
    await waitForLayers(server.base);

    const small = await browser.newPage();
    await small.goto(`${server.base}/watch/live`);
    await sizePlayer(small, 320, 180);
    const large = await browser.newPage();
    await large.goto(`${server.base}/watch/live`);
    await sizePlayer(large, 1280, 720);
    await waitFor('the large player on the top layer', async () => (await inboundVideo(large))?.frameWidth >= 1280, 20_000);
    await small.bringToFront();
    await waitFor('the small player on the small layer', async () => {
      const s = await inboundVideo(small);
      return s?.frameWidth > 0 && s.frameWidth <= 320;
    }, 20_000);
    // It stays there.
    await sleep(3000);
    assert.ok((await inboundVideo(small)).frameWidth <= 320, 'the 320×180 player stays on the small layer');
    const smallRate = await rate(small, 3000);
    await large.bringToFront();
    const largeRate = await rate(large, 3000);
    console.log(`device cap: 320×180 player ${smallRate.video.toFixed(0)} kbit/s of video, 1280×720 player ${largeRate.video.toFixed(0)} kbit/s: ${(largeRate.video - smallRate.video).toFixed(0)} kbit/s saved`);
    assert.ok(smallRate.video < largeRate.video / 2, 'the small player receives far less video');

    // Growing it moves it up.
    await small.bringToFront();
    const grown = Date.now();
    await sizePlayer(small, 1280, 720);
    await waitFor('the grown player on a larger layer', async () => (await inboundVideo(small)).frameWidth > 320, 10_000, 20);
    const up = Date.now() - grown;
    await waitFor('the grown player on the top layer', async () => (await inboundVideo(small)).frameWidth >= 1280, 15_000, 50);
    const top = Date.now() - grown;
    console.log(`player grown to 1280×720: a larger layer decoded after ${up} ms, the top layer after ${top} ms`);
    assert.ok(up <= 3000, `a grown player moves up within 3 s (took ${up} ms)`);

    // Hidden: video stops after 5 s, audio goes on.
    await setVisibility(small, 'hidden');
    const hiddenAt = Date.now();
    await sleep(3000);
    const graceRate = await rate(small, 1000);
    assert.ok(graceRate.video > 50, `video continues within the 5 s grace (${graceRate.video} kbit/s)`);
    await sleep(Math.max(0, hiddenAt + 6000 - Date.now()));
    const hiddenRate = await rate(small, 2000);
    console.log(`hidden page: ${hiddenRate.video.toFixed(1)} kbit/s of video, ${hiddenRate.audio.toFixed(1)} kbit/s of audio`);
    assert.ok(hiddenRate.video < 5, `no video to a hidden page (${hiddenRate.video} kbit/s)`);
    assert.ok(hiddenRate.audio > 10, `audio continues (${hiddenRate.audio} kbit/s)`);
    const viewers = await (await fetch(`${server.base}/api/broadcasts/live/viewers`, { headers: await server.modHeaders() })).json();
    const paused = viewers.filter((v) => v.paused_hidden);
    assert.equal(paused.length, 1, `the server shows one viewer paused while hidden: ${JSON.stringify(viewers)}`);
    const sent = paused[0].video_bytes_sent;
    await sleep(1500);
    const again = (await (await fetch(`${server.base}/api/broadcasts/live/viewers`, { headers: await server.modHeaders() })).json())
      .find((v) => v.session === paused[0].session);
    assert.equal(again.video_bytes_sent, sent, 'the server counts no video bytes to the hidden page');

    // Visible again: decoding within 500 ms.
    const before = (await inboundVideo(small)).framesDecoded;
    const shown = Date.now();
    await setVisibility(small, 'visible');
    await waitFor('decoding again', async () => (await inboundVideo(small)).framesDecoded > before, 5_000, 10);
    const back = Date.now() - shown;
    console.log(`visible again: decoding after ${back} ms`);
    assert.ok(back <= 500, `decodes within 500 ms of becoming visible (took ${back} ms)`);
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
  }
});
