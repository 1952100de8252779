// Engagement features in real pages: a moderator's emergency alert over
// playing video, chat between two viewers, live like counts, the
// disclaimer gate, and search on the directory page. Viewers with different
// identities run in different browser profiles (the identity token lives in
// localStorage).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  startServer, launchBrowser, waitFor, inboundVideo, screenshotDir, sleep, startPublishing, waitForLayers, STREAM_KEY,
} from './harness.js';

async function openWatch(context, base, stream = 'live') {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`${base}/watch/${stream}`);
  return page;
}

async function playing(page, what = 'frames decoded') {
  await waitFor(what, async () => (await inboundVideo(page))?.framesDecoded > 0, 15_000, 50);
}

/// Opens /moderate with `token` and waits until the server confirmed it.
async function openModerator(context, base, token, stream = 'live') {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${base}/moderate?stream=${stream}`);
  await page.fill('#token', token);
  await page.click('#token-save');
  await waitFor('the console knows who we are', async () => /Signed in as|This token is for/.test(await page.textContent('#who')), 10_000);
  await page.waitForSelector(`#edit-form[data-loaded="${stream}"]`, { timeout: 5_000 });
  return page;
}

async function sendAlert(mod, severity, text, ttl) {
  await mod.check(`input[name="severity"][value="${severity}"]`);
  await mod.fill('#alert-text', text);
  await mod.selectOption('#alert-scope', 'all');
  await mod.fill('#alert-ttl', String(ttl));
  await mod.click('#alert-send');
  await waitFor('alert sent', async () => (await mod.textContent('#alert-result')).startsWith('Sent'), 5_000);
}

test('a moderator sends an emergency alert: it covers playing video, cannot be dismissed, and is acknowledged', async () => {
  const server = await startServer();
  let browser;
  try {
    browser = await launchBrowser();
    await startPublishing(browser, server.base, 'VP8');
    await waitForLayers(server.base, 1);
    const viewer = await openWatch(browser, server.base);
    await playing(viewer);
    const mod = await openModerator(browser, server.base, await server.token('moderator', 'mod'));
    assert.match(await mod.textContent('#who'), /moderator/);

    // Information alerts can be dismissed.
    await sendAlert(mod, 'info', 'Scheduled maintenance tonight at 23:00.', 60);
    const info = viewer.locator('.alert-info');
    await info.waitFor({ state: 'visible', timeout: 5_000 });
    await info.locator('button.alert-dismiss').click();
    await info.waitFor({ state: 'detached', timeout: 2_000 });

    const ttl = 15;
    const text = 'Flood warning for the river valley: move to higher ground now.';
    const sentAt = Date.now();
    await sendAlert(mod, 'emergency', text, ttl);
    const overlay = viewer.locator('.alert-emergency');
    await overlay.waitFor({ state: 'visible', timeout: 5_000 });
    console.log(`emergency alert on the watch page ${Date.now() - sentAt} ms after the moderator clicked send`);
    assert.equal((await overlay.locator('.alert-text').textContent()).trim(), text);

    // Video keeps playing under it, and the overlay is what is on top, over the video.
    const before = (await inboundVideo(viewer)).framesDecoded;
    await waitFor('video keeps decoding under the alert', async () => (await inboundVideo(viewer)).framesDecoded > before + 10, 10_000);
    const geometry = await viewer.evaluate(() => {
      const alert = document.querySelector('.alert-emergency').getBoundingClientRect();
      const video = document.getElementById('video').getBoundingClientRect();
      const x = alert.left + alert.width / 2;
      const y = alert.top + alert.height / 2;
      return {
        onTop: !!document.elementFromPoint(x, y)?.closest('.alert-emergency'),
        insideVideo: x > video.left && x < video.right && y > video.top && y < video.bottom,
        playing: !document.getElementById('video').paused,
      };
    });
    assert.deepEqual(geometry, { onTop: true, insideVideo: true, playing: true });
    const shot = join(screenshotDir, 'emergency-alert.png');
    await viewer.screenshot({ path: shot });
    console.log(`screenshot: ${shot}`);

    // No way to dismiss it before it expires: no button, Escape and clicks do nothing.
    assert.equal(await overlay.locator('button').count(), 0, 'the emergency alert has no dismiss button');
    await viewer.keyboard.press('Escape');
    await overlay.click();
    await sleep(500);
    assert.ok(await overlay.isVisible(), 'still shown after Escape and a click');

    // The moderator sees it delivered to and acknowledged by the watch page
    // (other connections in scope, like the publisher's, count as delivered
    // but do not display it).
    await waitFor('delivered and acknowledged counts', async () => {
      const row = mod.locator('#alerts-body tr').first();
      const delivered = Number(await row.locator('[data-field="delivered"]').textContent());
      const acked = Number(await row.locator('[data-field="acked"]').textContent());
      return delivered >= 1 && acked === 1;
    }, 5_000);

    // A viewer arriving while it is active sees it at once, and acknowledges it.
    const late = await openWatch(browser, server.base);
    const opened = Date.now();
    await late.locator('.alert-emergency').waitFor({ state: 'visible', timeout: 3_000 });
    console.log(`a viewer joining during the alert sees it ${Date.now() - opened} ms after opening the page`);

    await waitFor('the late viewer\'s acknowledgement counted', async () =>
      (await mod.locator('#alerts-body tr').first().locator('[data-field="acked"]').textContent()) === '2', 5_000);

    // It leaves by itself when it expires.
    await overlay.waitFor({ state: 'detached', timeout: ttl * 1000 + 3_000 });
    const shownFor = Date.now() - sentAt;
    assert.ok(shownFor >= (ttl - 1) * 1000, `shown until it expired (${shownFor} ms)`);
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
  }
});

test('chat between two viewers arrives in order; refusals are shown; a moderator deletes a message everywhere', async () => {
  const server = await startServer();
  const browsers = [];
  try {
    browsers.push(await launchBrowser(), await launchBrowser());
    const a = await openWatch(browsers[0], server.base);
    const b = await openWatch(browsers[1], server.base);
    for (const page of [a, b]) {
      await waitFor('an identity', async () => (await page.textContent('#me')) !== '…', 10_000);
    }
    const texts = ['first message', 'second message', 'third message'];
    for (const text of texts) {
      await a.fill('#chat-input', text);
      await a.press('#chat-input', 'Enter');
      await waitFor('own message echoed', async () => (await a.inputValue('#chat-input')) === '', 5_000);
    }
    const seen = (page) => page.$$eval('#chat-list li .text', (nodes) => nodes.map((n) => n.textContent));
    await waitFor('B has A\'s messages', async () => (await seen(b)).length >= 3, 5_000);
    assert.deepEqual(await seen(b), texts, 'B sees A\'s messages in the order sent');
    const who = await b.$$eval('#chat-list li .who', (n) => n.map((x) => x.textContent));
    assert.ok(who.every((name) => name === who[0]), 'all from the same user');

    // B renames itself; A sees the new name on B's next message.
    await b.click('#account summary');
    await b.fill('#rename', 'Bea');
    await b.click('#rename-form button[type="submit"]');
    await waitFor('renamed', async () => (await b.textContent('#me')) === 'Bea', 5_000);
    await b.fill('#chat-input', 'hello from Bea');
    await b.press('#chat-input', 'Enter');
    await waitFor('A sees Bea', async () => a.evaluate(() => [...document.querySelectorAll('#chat-list li')]
      .some((li) => li.querySelector('.who').textContent === 'Bea' && li.querySelector('.text').textContent === 'hello from Bea')), 5_000);

    // A moderator deletes the second message: it disappears from both pages.
    const mod = await openModerator(browsers[0], server.base, await server.token('moderator', 'mod'));
    await waitFor('moderator sees the chat', async () => (await seen(mod)).includes('second message'), 5_000);
    await mod.locator('#chat-list li', { hasText: 'second message' }).locator('button.delete').click();
    for (const page of [a, b]) {
      await waitFor('message deleted', async () => !(await seen(page)).includes('second message'), 5_000);
    }
    assert.deepEqual(await seen(a), ['first message', 'third message', 'hello from Bea']);

    // Sending faster than the rate limit: the page says so.
    for (let i = 0; i < 8; i++) {
      await a.fill('#chat-input', `burst ${i}`);
      await a.press('#chat-input', 'Enter');
    }
    await waitFor('rate-limit message shown', async () => /too fast/.test(await a.textContent('#chat-error')), 5_000);
  } finally {
    for (const br of browsers) await br.close().catch(() => {});
    await server.stop();
  }
});

test('like and dislike counts update live on both pages; the own choice is highlighted', async () => {
  const server = await startServer();
  const browsers = [];
  try {
    browsers.push(await launchBrowser(), await launchBrowser());
    const a = await openWatch(browsers[0], server.base);
    const b = await openWatch(browsers[1], server.base);
    const counts = (page) => page.evaluate(() => ({
      likes: Number(document.getElementById('likes').textContent),
      dislikes: Number(document.getElementById('dislikes').textContent),
      liked: document.getElementById('like').getAttribute('aria-pressed') === 'true',
      disliked: document.getElementById('dislike').getAttribute('aria-pressed') === 'true',
    }));
    const expect = async (page, want, what) => {
      await waitFor(what, async () => JSON.stringify(await counts(page)) === JSON.stringify(want), 5_000)
        .catch(async (e) => { throw new Error(`${e.message}: have ${JSON.stringify(await counts(page))}`); });
    };
    for (const page of [a, b]) await page.waitForFunction(() => window.relaycastRealtime?.open);

    await a.click('#like');
    await expect(a, { likes: 1, dislikes: 0, liked: true, disliked: false }, 'A liked');
    await expect(b, { likes: 1, dislikes: 0, liked: false, disliked: false }, 'B sees A\'s like');
    await b.click('#dislike');
    await expect(b, { likes: 1, dislikes: 1, liked: false, disliked: true }, 'B disliked');
    await expect(a, { likes: 1, dislikes: 1, liked: true, disliked: false }, 'A sees B\'s dislike');
    await a.click('#like'); // again: withdraw
    await expect(a, { likes: 0, dislikes: 1, liked: false, disliked: false }, 'A withdrew');
    await expect(b, { likes: 0, dislikes: 1, liked: false, disliked: true }, 'B sees the withdrawal');
    await b.reload();
    await expect(b, { likes: 0, dislikes: 1, liked: false, disliked: true }, 'B\'s own choice survives a reload');
  } finally {
    for (const br of browsers) await br.close().catch(() => {});
    await server.stop();
  }
});

test('the disclaimer gate holds playback until accepted; only the broadcaster or an admin may set it', async () => {
  const server = await startServer();
  let browser;
  try {
    browser = await launchBrowser();
    await startPublishing(browser, server.base, 'VP8');
    await waitForLayers(server.base, 1);
    const disclaimer = 'This broadcast shows flashing lights.';

    // A moderator may not edit a broadcast: the console says why.
    const mod = await openModerator(browser, server.base, await server.token('moderator', 'mod'));
    await mod.fill('#edit-disclaimer', disclaimer);
    await mod.click('#edit-form button[type="submit"]');
    await waitFor('refusal shown', async () => /Not allowed/.test(await mod.textContent('#edit-result')), 5_000);
    // An admin may.
    const admin = await openModerator(browser, server.base, await server.token('admin', 'root'));
    await admin.fill('#edit-title', 'Strobe test');
    await admin.fill('#edit-disclaimer', disclaimer);
    await admin.click('#edit-form button[type="submit"]');
    await waitFor('saved', async () => /Saved/.test(await admin.textContent('#edit-result')), 5_000);

    const viewer = await openWatch(browser, server.base);
    await viewer.locator('#gate').waitFor({ state: 'visible', timeout: 5_000 });
    assert.equal(await viewer.textContent('#gate-text'), disclaimer);
    await sleep(2_000);
    assert.equal(await inboundVideo(viewer), null, 'no playback before the disclaimer is accepted');
    await viewer.screenshot({ path: join(screenshotDir, 'disclaimer-gate.png') });
    await viewer.click('#gate-accept');
    await playing(viewer, 'plays once accepted');
    assert.ok(await viewer.locator('#gate').isHidden());

    // Remembered for this broadcast for the rest of the session.
    await viewer.reload();
    await playing(viewer, 'plays after a reload without asking again');
    assert.ok(await viewer.locator('#gate').isHidden());
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
  }
});

test('the directory page finds a broadcast by a word of its title', async () => {
  const server = await startServer({ extraStreams: { river: 'river-key-123456', city: 'city-key-1234567' } });
  let browser;
  try {
    const put = async (id, key, body) => {
      const res = await fetch(`${server.base}/api/broadcasts/${id}`, {
        method: 'PUT', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
      assert.equal(res.status, 200, `PUT /api/broadcasts/${id}: ${await res.text()}`);
    };
    await put('river', 'river-key-123456', { title: 'Morning river cam', description: 'Herons at dawn', tags: ['nature'], disclaimer: null });
    await put('city', 'city-key-1234567', { title: 'Evening city traffic', description: 'Rush hour', tags: ['urban'], disclaimer: null });
    await put('live', STREAM_KEY, { title: 'Studio live', description: 'Talk show', tags: [], disclaimer: null });

    browser = await launchBrowser();
    const page = await browser.newPage();
    await page.goto(server.base);
    await page.uncheck('#live'); // nothing is live: search every broadcast
    await page.fill('#q', 'river');
    const titles = () => page.$$eval('#list a.title', (n) => n.map((a) => a.textContent));
    await waitFor('search results', async () => {
      const t = await titles();
      return t.length === 1 && t[0] === 'Morning river cam';
    }, 5_000).catch(async (e) => { throw new Error(`${e.message}: ${JSON.stringify(await titles())}`); });
    assert.equal(await page.getAttribute('#list a.title', 'href'), '/watch/river');
    assert.match(page.url(), /q=river/);
    await page.screenshot({ path: join(screenshotDir, 'directory-search.png') });

    await page.fill('#q', 'no such words anywhere');
    await waitFor('no match', async () => (await titles()).length === 0 && /No broadcast matches/.test(await page.textContent('#list')), 5_000);
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
  }
});
