// OBS 32 as the broadcaster: obs-publisher.js sends what OBS's WHIP output
// sends (libdatachannel offer, x264 High without B-frames, rid/mid on every
// video packet, no keyframe on request), Debian's Chromium watches.
// Needs ffmpeg (with libx264) on PATH and the server binary built.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launchBrowser, STREAM_KEY, waitFor, inboundVideo, screenshotDir, sleep, repo } from './harness.js';
import { ObsPublisher } from './obs-publisher.js';

const fixtures = join(repo, '..', 'shared', 'fixtures', 'whip-offers');

/// An offer with its random parts (ids, keys, SSRCs, ports) replaced, one line each.
function offerShape(sdp) {
  return sdp.split(/\r?\n/).filter(Boolean).map((l) => l
    .replace(/^o=rtc \d+ /, 'o=rtc ID ')
    .replace(/^a=fingerprint:sha-256 \S+/, 'a=fingerprint:sha-256 FP')
    .replace(/^a=ice-ufrag:\S+/, 'a=ice-ufrag:UFRAG')
    .replace(/^a=ice-pwd:\S+/, 'a=ice-pwd:PWD')
    .replace(/^a=ssrc:\d+ cname:\S+/, 'a=ssrc:SSRC cname:CNAME')
    .replace(/^a=ssrc:\d+ msid:\S+ \S+-(audio|video)$/, 'a=ssrc:SSRC msid:MSID MSID-$1')
    .replace(/^a=msid:\S+ \S+-(audio|video)$/, 'a=msid:MSID MSID-$1'));
}

function readFixture(name) {
  try { return readFileSync(join(fixtures, name), 'utf8'); } catch { return null; }
}

/// OBS's check of the answer (whip-utils.h simulcast_layers_in_answer).
function simulcastLayersInAnswer(answer) {
  const line = answer.split(/\r?\n/).find((l) => l.startsWith('a=simulcast'));
  return line ? line.split(';').length : 0;
}

const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

/// Waits (bounded) until the publisher's last keyframe was `phase` ms ago
/// (default: a random moment 1.5–2.5 s into its 4 s GOP) and returns how long
/// ago it actually was.
async function waitMidGop(pub, phase = 1500 + Math.floor(Math.random() * 1000), ms = 12_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const since = Date.now() - pub.stats.lastKeyframeAt;
    if (since >= phase && since <= 2500) return since;
    if (Date.now() > deadline) throw new Error(`no mid-GOP moment within ${ms} ms (last keyframe ${since} ms ago)`);
    await sleep(since < phase ? Math.min(phase - since, 200) : 20);
  }
}

/// Opens /watch/live in a new page; time from page.goto's start to the first
/// decoded frame (getStats polled every 25 ms).
async function timedJoin(browser, base, timeoutMs = 10_000) {
  const page = await browser.newPage();
  const t0 = Date.now();
  const nav = page.goto(`${base}/watch/live`, { waitUntil: 'commit' }).catch((e) => e);
  let stats = null;
  try {
    stats = await waitFor('first decoded frame', async () => {
      const s = await inboundVideo(page).catch(() => null); // navigation may still be under way
      return s && s.framesDecoded > 0 && s;
    }, timeoutMs, 25);
  } finally {
    await nav;
  }
  return { page, ttff: Date.now() - t0, stats };
}

async function withPublisher({ layers = 3 } = {}, fn) {
  const server = await startServer();
  const pub = new ObsPublisher({ base: server.base, key: STREAM_KEY, layers, log: console.log });
  let browser;
  try {
    await fn({ server, pub, browser: async () => (browser ??= await launchBrowser()) });
  } finally {
    await browser?.close().catch(() => {});
    await pub.stop().catch(() => {});
    await server.stop();
    console.log('publisher stats', JSON.stringify(pub.stats));
    console.log(server.log().slice(-3000));
  }
}

test('OBS 3-layer offer is answered with all layers accepted', { timeout: 90_000 }, async () => {
  const server = await startServer();
  try {
    for (const layers of [3, 1]) {
      const pub = new ObsPublisher({ base: server.base, key: STREAM_KEY, layers });
      try {
        const r = await pub.start();
        // The offer is OBS's, line for line, but for its random values.
        assert.ok(!/a=candidate|a=end-of-candidates/.test(r.offer), 'OBS POSTs no ICE candidates');
        const fixture = readFixture(layers === 3 ? 'obs-emulated-3layer-offer.sdp' : 'obs-emulated-1layer-offer.sdp');
        if (fixture) assert.deepEqual(offerShape(r.offer), offerShape(fixture));
        else console.log('(fixture not found under', fixtures, '- offer shape not compared)');

        assert.equal(r.status, 201);
        assert.ok(r.location, 'Location header');
        assert.match(r.answer, /^m=audio [1-9]\d* /m, 'audio accepted');
        assert.match(r.answer, /^m=video [1-9]\d* /m, 'video accepted');
        assert.match(r.answer, /^a=rtpmap:96 H264\/90000/m, 'H264 on PT 96 accepted');
        assert.match(r.answer, /^a=rtpmap:111 opus\/48000\/2/m, 'Opus on PT 111 accepted');
        if (layers === 3) {
          assert.match(r.answer, /^a=simulcast:recv 0;1;2\r?$/m);
          for (const rid of ['0', '1', '2']) assert.match(r.answer, new RegExp(`^a=rid:${rid} recv\\r?$`, 'm'));
          assert.equal(simulcastLayersInAnswer(r.answer), 3, 'OBS would accept this answer');
        }
        console.log(`${layers}-layer answer:\n${r.answer}`);
        // The answer applied, the PeerConnection up (start() waited for it) and media flowing.
        await waitFor('video frames sent', () => pub.stats.framesSent > 30, 10_000);
        assert.equal(pub.session.pc.state(), 'connected');
      } finally {
        // OBS closes the PeerConnection, then DELETEs; the server may have
        // ended the session on the DTLS close already, and still says 200.
        const status = await pub.stop();
        console.log(`${layers}-layer DELETE after closing the PeerConnection:`, status);
        assert.equal(status, 200, 'DELETE on stop succeeds');
      }
    }
  } finally {
    await server.stop();
    console.log(server.log().slice(-2000));
  }
});

test('a Chromium viewer joining mid-GOP decodes its first frame within 1 s', { timeout: 150_000 }, async () => {
  await withPublisher({ layers: 3 }, async ({ server, pub, browser: getBrowser }) => {
    await pub.start();
    const browser = await getBrowser();
    await waitFor('publisher live for 5 s', () => Date.now() - pub.stats.liveSince >= 5000, 10_000);

    const joins = [];
    for (let n = 0; n < 11; n++) {
      const phase = await waitMidGop(pub);
      const { page, ttff, stats } = await timedJoin(browser, server.base);
      joins.push({ ttff, phase, size: `${stats.frameWidth}x${stats.frameHeight}` });
      console.log(`join ${n}: first frame after ${ttff} ms (joined ${phase} ms after the last keyframe, ${stats.frameWidth}x${stats.frameHeight})`);
      await page.close();
      if (n === 0) assert.ok(ttff < 1000, `first frame after ${ttff} ms, joined ${phase} ms into the GOP`);
    }
    const ttffs = joins.slice(1).map((j) => j.ttff);
    console.log(`time to first frame over ${ttffs.length} mid-GOP joins: p50 ${percentile(ttffs, 50)} ms, ` +
      `p90 ${percentile(ttffs, 90)} ms, max ${Math.max(...ttffs)} ms (all: ${ttffs.join(', ')})`);
    console.log(`keyframe requests the publisher received (and, as OBS, ignored): PLI ${pub.stats.plis}, FIR ${pub.stats.firs}`);
  });
});

test('after the publisher reconnects with the same SSRCs, the viewer keeps decoding without reloading', { timeout: 90_000 }, async () => {
  await withPublisher({ layers: 3 }, async ({ server, pub, browser: getBrowser }) => {
    const first = await pub.start();
    const ssrcsBefore = pub.ssrcs();
    const browser = await getBrowser();
    const page = await browser.newPage();
    await page.goto(`${server.base}/watch/live`);
    await waitFor('viewer playing', async () => (await inboundVideo(page))?.framesDecoded > 30, 20_000);
    // Marks that would be lost on a reload or a new viewer PeerConnection.
    await page.evaluate(() => { window.obsTestMark = 'same page'; window.relaycastViewer.obsTestMark = 'same pc'; });

    const blip = await pub.reconnect({ gapMs: 2000 }); // PeerConnection gone without DELETE, 2 s, new POST
    assert.equal(blip.status, 201);
    assert.notEqual(blip.location, first.location, 'a new WHIP resource');
    assert.deepEqual(pub.ssrcs(), ssrcsBefore, 'same SSRCs as before the blip');
    assert.match(blip.answer, /^a=simulcast:recv 0;1;2\r?$/m);
    const atPost = await inboundVideo(page);
    console.log('viewer at the new POST', atPost);

    const resumed = await waitFor('+30 frames after the reconnect', async () => {
      const s = await inboundVideo(page);
      return s && s.framesDecoded >= atPost.framesDecoded + 30 && s;
    }, Math.max(0, blip.postedAt + 6000 - Date.now()), 50);
    console.log(`viewer +${resumed.framesDecoded - atPost.framesDecoded} frames ${Date.now() - blip.postedAt} ms after the new POST`, resumed);
    const marks = await page.evaluate(() => [window.obsTestMark, window.relaycastViewer?.obsTestMark]);
    assert.deepEqual(marks, ['same page', 'same pc'], 'no reload, same viewer PeerConnection');
    assert.deepEqual(pub.stats.firstFrameOfSessionWasKeyframe, [true, true], 'each publisher session starts on a keyframe');
  });
});

test('screenshot of the watch page playing the OBS stream', { timeout: 90_000 }, async () => {
  await withPublisher({ layers: 3 }, async ({ server, pub, browser: getBrowser }) => {
    await pub.start();
    const browser = await getBrowser();
    const page = await browser.newPage();
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${server.base}/watch/live`);
    const s = await waitFor('viewer playing', async () => {
      const s = await inboundVideo(page);
      return s && s.framesDecoded > 60 && s;
    }, 20_000);
    console.log('viewer', s);
    await sleep(500);
    const path = join(screenshotDir, 'obs-watch.png');
    await page.screenshot({ path });
    console.log('screenshot', path);
  });
});
