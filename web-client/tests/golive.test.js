// The Go-live page in Chromium: a visitor creates an account and a
// channel, sees the key once and copies OBS's settings in one click; the
// OBS-faithful publisher goes live with them and the page says "OBS
// connected" with its layers, the preview plays, and the directory names
// the owner; a new key is shown once more and the running broadcast
// carries on. Leaves a screenshot (golive.png).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, launchBrowser, waitFor, screenshotDir, sleep } from './harness.js';
import { ObsPublisher } from './obs-publisher.js';

test('an account creates a channel, copies the OBS settings and goes live with the OBS-faithful publisher', async () => {
  const server = await startServer();
  let browser;
  let pub;
  try {
    browser = await launchBrowser();
    await browser.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
    const page = await browser.newPage();
    page.on('dialog', (d) => d.accept());
    await page.setViewportSize({ width: 1280, height: 1100 });
    await page.goto(`${server.base}/go-live`);
    await waitFor('guest asked to sign in', async () => /Sign in or create an account/.test(await page.textContent('#who')), 10_000);
    assert.equal(await page.isVisible('#create-form'), false, 'a guest gets no channel form');

    await page.fill('#username', 'ada');
    await page.fill('#password', 'correct horse battery');
    await page.click('#register');
    await waitFor('signed in', async () => /Signed in as ada/.test(await page.textContent('#who')), 15_000);

    await page.fill('#channel-name', 'ada-live');
    await page.click('#create');
    await page.waitForSelector('#key-box:not([hidden])', { timeout: 5_000 });
    const key = await page.inputValue('#obs-key');
    const serverUrl = await page.inputValue('#obs-server');
    assert.match(key, /^rck_[0-9a-f]{40}$/);
    assert.equal(serverUrl, `${server.base}/whip/ada-live`);
    await page.click('#copy-settings');
    await waitFor('copied', async () => /Copied/.test(await page.textContent('#copied')), 5_000);
    const clip = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(clip, `Server: ${serverUrl}\nBearer Token: ${key}`);

    // Shown once: a reload shows the channel, not its key.
    await page.reload();
    await page.waitForSelector('[data-channel="ada-live"] .obs-state', { timeout: 10_000 });
    assert.equal(await page.isVisible('#key-box'), false);
    assert.ok(!(await page.content()).includes(key), 'the key is not on the page after a reload');
    assert.match(await page.textContent('[data-channel="ada-live"] .obs-state'), /Waiting for OBS/);

    pub = new ObsPublisher({ base: server.base, stream: 'ada-live', key, layers: 1 });
    await pub.start();
    const state = page.locator('[data-channel="ada-live"] .obs-state');
    await waitFor('OBS connected with its layers', async () => /OBS connected .*layers: \d+×\d+ \d+ kbit\/s/.test(await state.textContent()), 20_000, 250);

    await page.click('[data-channel="ada-live"] .preview-toggle');
    await waitFor('preview playing', () => page.evaluate(() => {
      const v = document.querySelector('[data-channel="ada-live"] video');
      return v && v.getVideoPlaybackQuality().totalVideoFrames > 5;
    }), 20_000, 250);

    const directory = await browser.newPage();
    await directory.goto(server.base);
    await waitFor('the directory names the owner', async () => /by ada/.test(await directory.textContent('body')), 10_000, 250);
    await directory.close();

    await page.click('[data-channel="ada-live"] .rotate');
    await page.waitForSelector('#key-box:not([hidden])', { timeout: 5_000 });
    const newKey = await page.inputValue('#obs-key');
    assert.match(newKey, /^rck_[0-9a-f]{40}$/);
    assert.notEqual(newKey, key);
    const old = await fetch(`${server.base}/whip/ada-live`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/sdp' }, body: 'v=0\r\n' });
    assert.equal(old.status, 401, 'the old key starts nothing');
    const sentBefore = pub.stats.framesSent;
    await sleep(2_000);
    assert.ok(pub.stats.framesSent > sentBefore + 30, 'the OBS-faithful publisher keeps sending');
    assert.match(await state.textContent(), /OBS connected/, 'the running broadcast carries on after the rotation');
    await page.screenshot({ path: join(screenshotDir, 'golive.png'), fullPage: true });
  } finally {
    await pub?.stop().catch(() => {});
    await browser?.close().catch(() => {});
    await server.stop();
  }
});
