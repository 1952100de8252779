// The operator page (/admin) in Chromium: an admin token is accepted and a
// moderator's refused; with a browser publishing and a viewer playing, the
// charts fill in (viewers, egress packets per second, bitrate per layer,
// worker CPU), the layer mix counts the viewer, and the broadcast's
// viewer-health table lists it. Leaves a screenshot (admin.png).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, launchBrowser, waitFor, inboundVideo, screenshotDir, startPublishing, waitForLayers } from './harness.js';

/// Values of a chart's legend (`name: value unit`), by series name.
async function legend(page, title) {
  return page.evaluate((t) => {
    const fig = [...document.querySelectorAll('figure.chart')].find((f) => f.dataset.title === t);
    if (!fig) return null;
    const out = {};
    for (const span of fig.querySelectorAll('.legend span')) {
      const [name, value] = span.textContent.trim().split(/:\s*/);
      out[name] = value;
    }
    out.paths = fig.querySelectorAll('path.line').length;
    return out;
  }, title);
}

test('the operator page charts a live broadcast and lists its viewers', async () => {
  const server = await startServer();
  let browser;
  try {
    browser = await launchBrowser();
    const admin = await browser.newPage();
    await admin.setViewportSize({ width: 1400, height: 1300 });

    // A moderator's token is not enough.
    await admin.goto(`${server.base}/admin`);
    await admin.fill('#token', await server.token('moderator', 'mod'));
    await admin.click('#token-save');
    await waitFor('refusal shown', async () => /not an admin/.test(await admin.textContent('#who')), 10_000);

    await startPublishing(browser, server.base, 'VP8');
    await waitForLayers(server.base, 1);
    const viewer = await browser.newPage();
    await viewer.goto(`${server.base}/watch/live`);
    await waitFor('viewer playing', async () => (await inboundVideo(viewer))?.framesDecoded > 0, 15_000, 50);

    await admin.fill('#token', await server.token('admin', 'ops'));
    await admin.click('#token-save');
    await waitFor('sampling', async () => (await admin.textContent('#state')) === 'Live', 10_000);
    await waitFor('the viewer is counted', async () => /^1 viewers, 1 publishers/.test(await admin.textContent('#summary')), 15_000, 250);
    // Rates need two samples; give the charts a few.
    await waitFor('egress charted', async () => {
      const e = await legend(admin, 'Egress');
      return e && e.paths >= 1 && parseFloat(e['RTP forwarded']) > 0;
    }, 15_000, 250);

    const audience = await legend(admin, 'Audience');
    assert.equal(audience.viewers, '1');
    const bitrate = await legend(admin, 'Bitrate per layer (publisher)');
    assert.ok(bitrate.paths >= 1, `bitrate lines: ${JSON.stringify(bitrate)}`);
    assert.ok(Object.keys(bitrate).some((k) => k.startsWith('live ')), JSON.stringify(bitrate));
    const cpu = await legend(admin, 'Worker CPU');
    assert.ok(cpu.paths >= 1, JSON.stringify(cpu));
    const mix = await legend(admin, 'Layer mix (viewers now)');
    assert.ok(Object.values(mix).some((v) => /^1 \(100%\)$/.test(v)), JSON.stringify(mix));

    // A viewer joining while the page samples: its join time is charted.
    const second = await browser.newPage();
    await second.goto(`${server.base}/watch/live`);
    await waitFor('second viewer playing', async () => (await inboundVideo(second))?.framesDecoded > 0, 15_000, 50);
    await waitFor('join time charted', async () => {
      const j = await legend(admin, 'Join time (session to first video)');
      return j && j.paths >= 1 && parseFloat(j['mean of new joins']) > 0;
    }, 10_000, 250);

    const rows = admin.locator('[data-broadcast="live"] table.viewers tbody tr');
    await waitFor('viewer rows', async () => (await rows.count()) === 2, 10_000, 250);
    const row = await rows.first().textContent();
    assert.match(row, /ok|paused|limited/, row);
    assert.match(row, /127\.0\.0\.1:\d+/, `the operator sees the viewer's address: ${row}`);

    await admin.screenshot({ path: join(screenshotDir, 'admin.png'), fullPage: true });
  } finally {
    await browser?.close();
    await server.stop();
  }
});
