// Ad breaks in real pages: a free viewer of a live broadcast plays the
// pod (impression, start, quartiles and complete recorded once each, in
// order), skips after `skipoffset`, clicks through to the landing page,
// and survives a broken creative (error 405), with its live video held
// during the pod and decoding again right after; an external VAST tag is
// followed through its wrapper, a looping one given up on; an ad-free
// viewer on the same broadcast sees no break, sends no event and keeps
// decoding. The admin page uploads and retires, the console starts a
// break and shows the figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import {
  startServer, launchBrowser, waitFor, inboundVideo, sleep, startPublishing, waitForLayers, serverBinary,
} from './harness.js';
import { run } from './media.js';

/// A 3 s 320×180 H264/AAC creative made by ffmpeg.
async function makeCreative(dir) {
  const file = join(dir, 'creative.mp4');
  await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25:duration=3',
    '-f', 'lavfi', '-i', 'sine=frequency=660:duration=3', '-c:v', 'libx264', '-profile:v', 'baseline',
    '-pix_fmt', 'yuv420p', '-b:v', '150k', '-c:a', 'aac', '-b:a', '48k', '-movflags', '+faststart',
    '-shortest', file], { timeout: 60_000 });
  await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=orange:s=300x250', '-frames:v', '1',
    join(dir, 'banner.png')], { timeout: 30_000 });
  return readFile(file);
}

export async function upload(base, admin, bytes, fields) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, String(v));
  form.append('file', new Blob([bytes], { type: 'video/mp4' }), 'creative.mp4');
  const res = await fetch(`${base}/api/ads`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` }, body: form });
  const body = await res.json();
  assert.equal(res.status, 201, JSON.stringify(body));
  return body;
}

async function startBreak(base, mod, seconds) {
  const res = await fetch(`${base}/api/broadcasts/live/ad-breaks`, {
    method: 'POST',
    headers: { ...mod, 'Content-Type': 'application/json' },
    body: JSON.stringify({ duration_s: seconds }),
  });
  const body = await res.json();
  assert.equal(res.status, 201, JSON.stringify(body));
  return body;
}

async function events(base, admin, breakId) {
  const res = await fetch(`${base}/api/ads/breaks/${breakId}/events`, { headers: { Authorization: `Bearer ${admin}` } });
  return (await res.json()).events;
}

/// Runs `relaycast entitlement grant` against the server's data dir.
async function grantAdFree(dataDir, user) {
  const proc = spawn(serverBinary, ['entitlement', 'grant', '--user', user, '--plan', 'ad-free', '--days', '30',
    '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const code = await new Promise((r) => proc.once('exit', r));
  assert.equal(code, 0, out);
  assert.match(out, /holds ad-free for 30 days/);
}

/// Another ad server on loopback: `/inline` is a VAST 4.2 InLine ad whose
/// creative is `mediaUrl` (its impression pixel counted in `hits`);
/// `/loop` is a Wrapper around itself, which a player must give up on.
async function tagServer(mediaUrl) {
  const hits = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    hits.push(url.pathname);
    const base = `http://127.0.0.1:${server.address().port}`;
    const cors = { 'Access-Control-Allow-Origin': '*', 'Content-Type': 'application/xml' };
    if (url.pathname === '/inline') {
      res.writeHead(200, cors);
      res.end(`<?xml version="1.0" encoding="UTF-8"?><VAST version="4.2" xmlns="http://www.iab.com/VAST">
<Ad id="partner-1"><InLine><AdSystem>partner</AdSystem><Impression><![CDATA[${base}/pixel/impression]]></Impression>
<AdServingId>p1</AdServingId><AdTitle>Partner ad</AdTitle><Creatives><Creative id="c1"><Linear><Duration>00:00:03.000</Duration>
<TrackingEvents><Tracking event="complete"><![CDATA[${base}/pixel/complete]]></Tracking></TrackingEvents>
<MediaFiles><MediaFile delivery="progressive" type="video/mp4" width="320" height="180"><![CDATA[${mediaUrl}]]></MediaFile></MediaFiles>
</Linear><UniversalAdId idRegistry="partner">c1</UniversalAdId></Creative></Creatives></InLine></Ad></VAST>`);
    } else if (url.pathname === '/loop') {
      res.writeHead(200, cors);
      res.end(`<?xml version="1.0" encoding="UTF-8"?><VAST version="4.2" xmlns="http://www.iab.com/VAST">
<Ad id="loop"><Wrapper><AdSystem>partner</AdSystem><Impression><![CDATA[${base}/pixel/loop]]></Impression>
<VASTAdTagURI><![CDATA[${base}/loop]]></VASTAdTagURI></Wrapper></Ad></VAST>`);
    } else {
      res.writeHead(200, { 'Access-Control-Allow-Origin': '*', 'Content-Type': 'image/gif' });
      res.end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${server.address().port}`, hits, close: () => server.close() };
}

async function addTag(base, admin, title, url) {
  const res = await fetch(`${base}/api/ads`, {
    method: 'POST', headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ title, vast_tag_url: url, duration_s: 3 }),
  });
  const body = await res.json();
  assert.equal(res.status, 201, JSON.stringify(body));
  return body;
}

/// Counts presented frames and video bytes in a watch page, from now on.
async function meter(page) {
  await page.evaluate(() => {
    const v = document.getElementById('video');
    window.__frames = [];
    const cb = () => { window.__frames.push(performance.now()); v.requestVideoFrameCallback(cb); };
    v.requestVideoFrameCallback(cb);
    window.__bytes = [];
    window.__meter = setInterval(async () => {
      let bytes = 0;
      (await window.relaycastViewer.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') bytes = s.bytesReceived;
      });
      window.__bytes.push([performance.now(), bytes]);
    }, 250);
  });
}

/// Video kbit/s a page received between two page times.
function kbps(samples, from, to) {
  const inside = samples.filter(([t]) => t >= from && t <= to);
  if (inside.length < 2) return null;
  const [t0, b0] = inside[0];
  const [t1, b1] = inside[inside.length - 1];
  return ((b1 - b0) * 8) / (t1 - t0);
}

/// Waits for the page's `n`th break to end; returns it with the first live
/// frame after it.
async function breakOutcome(page, n, ms = 30_000) {
  await waitFor(`break ${n} played`, () => page.evaluate((i) => window.relaycastAds?.[i]?.ended != null, n - 1), ms, 50);
  await waitFor(`live video after break ${n}`, () => page.evaluate((i) => {
    const b = window.relaycastAds[i];
    return window.__frames.some((t) => t > b.ended);
  }, n - 1), 10_000, 20);
  return page.evaluate((i) => {
    const b = window.relaycastAds[i];
    const during = window.__frames.filter((t) => t > b.started + 1000 && t < b.ended - 100).length;
    const resumedAt = window.__frames.find((t) => t > b.ended);
    const { stop, ...plain } = b;
    return { ...plain, during, resumeMs: resumedAt - b.ended };
  }, n - 1);
}

test('live ad breaks: a free viewer plays, skips, clicks and survives a broken creative; an ad-free viewer never sees one', async () => {
  const server = await startServer();
  const scratch = mkdtempSync(join(tmpdir(), 'relaycast-ads-'));
  let browser;
  let paidBrowser;
  try {
    const admin = await server.token('admin', 'ads-admin');
    const mod = await server.modHeaders();
    await makeCreative(scratch);
    const landing = `${server.base}/?landing=spring-sale`;

    // An account with the ad-free plan, granted by the CLI.
    const made = await fetch(`${server.base}/api/accounts`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'paying', password: 'correct horse battery' }),
    });
    assert.equal(made.status, 201);
    const paid = await made.json();
    await grantAdFree(server.dataDir, 'paying');

    browser = await launchBrowser();
    paidBrowser = await launchBrowser();
    // The operator uploads the creative on the admin page.
    const ops = await browser.newPage();
    await ops.goto(`${server.base}/admin`);
    await ops.fill('#token', admin);
    await ops.click('#token-save');
    await ops.setInputFiles('#ad-upload input[name="file"]', join(scratch, 'creative.mp4'));
    await ops.setInputFiles('#ad-upload input[name="companion"]', join(scratch, 'banner.png'));
    await ops.fill('#ad-upload input[name="title"]', 'Spring sale');
    await ops.fill('#ad-upload input[name="click_url"]', landing);
    await ops.fill('#ad-upload input[name="skip_after_s"]', '1');
    await ops.click('#ad-upload-send');
    await waitFor('the creative uploaded', async () => /added: 320×180, 3\.0 s/.test(await ops.textContent('#ad-result')), 10_000);
    const good = (await (await fetch(`${server.base}/api/ads`, { headers: { Authorization: `Bearer ${admin}` } })).json()).ads[0];
    assert.equal(good.duration_ms, 3000);
    assert.equal(await ops.locator(`#ads-body tr[data-ad="${good.id}"]`).count(), 1, 'listed on the admin page');
    await startPublishing(browser, server.base, 'VP8');
    await waitForLayers(server.base, 1);
    const free = await browser.newPage();
    await free.goto(`${server.base}/watch/live`);
    const payer = await paidBrowser.newPage();
    await payer.addInitScript((t) => localStorage.setItem('relaycast.token', t), paid.token);
    await payer.goto(`${server.base}/watch/live`);
    for (const page of [free, payer]) {
      await waitFor('frames decoded', async () => (await inboundVideo(page))?.framesDecoded > 0, 15_000, 50);
      await meter(page);
    }
    await waitFor('the account shows the ad-free plan', () => payer.locator('#plan-badge').isVisible(), 10_000);
    assert.match(await payer.textContent('#plan'), /^Ad-free until /);
    assert.equal(await free.locator('#plan-badge').isVisible(), false);
    await sleep(1500);

    // 1. The pod plays to its end; a moderator starts it from the console.
    const console_ = await browser.newPage();
    await console_.goto(`${server.base}/moderate?stream=live`);
    await console_.fill('#token', mod.Authorization.slice('Bearer '.length));
    await console_.click('#token-save');
    await waitFor('the console knows the moderator', async () => /Signed in as/.test(await console_.textContent('#who')), 10_000);
    await console_.fill('#break-secs', '6');
    await console_.click('#break-start');
    await waitFor('the console started a break', async () => /^Break \d+ started: 1 ad/.test(await console_.textContent('#break-result')), 5_000);
    // The viewer's tab in front again: a background tab presents frames
    // once a second.
    await free.bringToFront();
    const first = { id: Number(/^Break (\d+)/.exec(await console_.textContent('#break-result'))[1]) };
    await waitFor('the server holds the free viewer', async () => {
      const viewers = await (await fetch(`${server.base}/api/broadcasts/live/viewers`, { headers: mod })).json();
      return viewers.some((v) => v.in_ad_break);
    }, 5_000, 100);
    await free.waitForSelector('#companion img', { state: 'visible', timeout: 5_000 });
    assert.deepEqual(await free.evaluate(() => {
      const img = document.querySelector('#companion img');
      return [img.naturalWidth, img.naturalHeight];
    }), [300, 250], 'the companion banner beside chat');
    const played = await breakOutcome(free, 1);
    assert.equal(await free.isVisible('#companion'), false, 'the banner goes with its ad');
    assert.deepEqual(played.outcomes, ['complete']);
    assert.equal(played.during, 0, 'no live frame while the ad played');
    assert.ok(played.resumeMs < 500, `live video decoding ${Math.round(played.resumeMs)} ms after the pod `
      + `(ad.done sent ${played.tries} times, answered ${Math.round(played.resumed - played.ended)} ms after the pod)`);
    const samples = await free.evaluate(() => window.__bytes);
    const normal = kbps(samples, played.started - 4000, played.started - 100);
    const held = kbps(samples, played.started + 500, played.ended - 100);
    console.log(`# break 1: live video again ${Math.round(played.resumeMs)} ms after the pod; `
      + `video ${Math.round(normal)} kbit/s before, ${Math.round(held)} kbit/s during the pod`);
    assert.ok(held < normal * 0.1, `video held during the pod: ${held} vs ${normal} kbit/s`);
    let got = await events(server.base, admin, first.id);
    assert.deepEqual(got.map((e) => e.event).filter((e) => e !== 'companionView'),
      ['impression', 'start', 'firstQuartile', 'midpoint', 'thirdQuartile', 'complete'],
      'each once, in order, from the free viewer only');
    assert.equal(got.filter((e) => e.event === 'companionView').length, 1, 'the banner was seen once');
    assert.equal(new Set(got.map((e) => e.session)).size, 1);

    // The ad-free viewer saw nothing and kept decoding.
    assert.equal(await payer.evaluate(() => window.relaycastAds.length), 0);
    const paidFrames = await payer.evaluate(({ s, e }) => window.__frames.filter((t) => t > s && t < e).length,
      { s: 0, e: Number.MAX_VALUE });
    assert.ok(paidFrames > 50, `the ad-free viewer decoded throughout (${paidFrames} frames)`);
    await sleep(Math.max(0, 6000 - (played.ended - played.started)) + 500);

    // 2. Skip after skipoffset, and a click-through to the landing page.
    const second = await startBreak(server.base, mod, 6);
    await free.waitForSelector('.ad-skip:not([disabled]):not([hidden])', { timeout: 8_000 });
    const [landingPage] = await Promise.all([
      browser.waitForEvent('page', { timeout: 5_000 }),
      free.click('.ad-more'),
    ]);
    await landingPage.waitForLoadState('domcontentloaded');
    assert.equal(landingPage.url(), landing);
    await landingPage.close();
    await free.click('.ad-skip');
    const skipped = await breakOutcome(free, 2);
    assert.deepEqual(skipped.outcomes, ['skip']);
    got = await events(server.base, admin, second.id);
    const kinds = got.map((e) => e.event);
    assert.ok(kinds.includes('skip') && kinds.includes('click') && !kinds.includes('complete'), kinds.join());
    assert.ok(skipped.resumeMs < 500, `live video ${Math.round(skipped.resumeMs)} ms after a skip`);
    await sleep(6500);

    // 3. A broken creative: error 405, and live video right after. The
    // operator retires the good one on the admin page first.
    await ops.click(`#ads-body tr[data-ad="${good.id}"] button`);
    await waitFor('retired', async () => /retired/.test(await ops.textContent('#ad-result')), 5_000);
    const junk = Buffer.concat([Buffer.from('00000018667479706973366d0000000069736f6d', 'hex'), Buffer.alloc(4096, 7)]);
    await upload(server.base, admin, junk, { title: 'Broken', duration_s: 3, width: 320, height: 180 });
    const third = await startBreak(server.base, mod, 6);
    third.startedAt = performance.now();
    const broken = await breakOutcome(free, 3);
    assert.deepEqual(broken.outcomes, ['error']);
    got = await events(server.base, admin, third.id);
    assert.deepEqual(got.map((e) => [e.event, e.error_code]), [['error', 405]]);
    assert.ok(broken.resumeMs < 500, `live video ${Math.round(broken.resumeMs)} ms after a broken pod`);
    console.log(`# live video again after a skip: ${Math.round(skipped.resumeMs)} ms; after a broken creative: ${Math.round(broken.resumeMs)} ms`);

    // 4. An external VAST tag: the pod's Wrapper is followed to the other
    // ad server's InLine ad, which plays; both servers' pixels fire.
    const partner = await tagServer(`${server.base}/ads/creatives/${good.id}`);
    try {
      const broken = (await (await fetch(`${server.base}/api/ads`, { headers: { Authorization: `Bearer ${admin}` } })).json())
        .ads.find((a) => a.title === 'Broken');
      await fetch(`${server.base}/api/ads/${broken.id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${admin}` } });
      const tag = await addTag(server.base, admin, 'Partner', `${partner.base}/inline`);
      await sleep(Math.max(0, 6500 - (performance.now() - third.startedAt)));
      const fourth = await startBreak(server.base, mod, 6);
      assert.deepEqual(fourth.pod, [tag.id]);
      const wrapped = await breakOutcome(free, 4);
      assert.deepEqual(wrapped.outcomes, ['complete']);
      got = await events(server.base, admin, fourth.id);
      assert.deepEqual(got.map((e) => e.event).filter((e) => ['impression', 'complete'].includes(e)), ['impression', 'complete']);
      await waitFor('the partner counted its impression and completion', () =>
        partner.hits.includes('/pixel/impression') && partner.hits.includes('/pixel/complete'), 3_000);

      // 5. A tag that wraps itself: the player gives up after 3 wrappers
      // (VAST error 302), the pod is over, the live stream resumes.
      await fetch(`${server.base}/api/ads/${tag.id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${admin}` } });
      const loop = await addTag(server.base, admin, 'Loop', `${partner.base}/loop`);
      await sleep(6500 - (wrapped.ended - wrapped.started));
      const fifth = await startBreak(server.base, mod, 6);
      assert.deepEqual(fifth.pod, [loop.id]);
      const gaveUp = await breakOutcome(free, 5);
      const loops = partner.hits.filter((h) => h === '/loop').length;
      assert.ok(loops >= 1 && loops <= 4, `the wrapper chain was followed ${loops} times, bounded`);
      got = await events(server.base, admin, fifth.id);
      assert.ok(got.some((e) => e.event === 'error' && e.error_code >= 300 && e.error_code < 400), JSON.stringify(got));
      assert.ok(gaveUp.resumeMs < 500, `live video ${Math.round(gaveUp.resumeMs)} ms after a failed wrapper chain`);
      console.log(`# external tag played through its wrapper; a looping tag was fetched ${loops} times, then given up `
        + `(error ${got.find((e) => e.event === 'error').error_code}); live video ${Math.round(gaveUp.resumeMs)} ms later`);
    } finally {
      partner.close();
    }

    assert.equal(await payer.evaluate(() => window.relaycastAds.length), 0, 'no break for the ad-free viewer');
    const report = await (await fetch(`${server.base}/api/ads/report?broadcast=live`, { headers: mod })).json();
    const spring = report.ads.find((a) => a.title === 'Spring sale');
    assert.equal(spring.impressions, 2);
    assert.equal(spring.completes, 1);
    assert.equal(spring.clicks, 1);
    assert.equal(report.ads.find((a) => a.title === 'Broken').errors, 1);
    await console_.click('#ad-report-refresh');
    await waitFor('the console shows the figures', async () =>
      /Spring sale\s*2\s*50 %\s*1/.test(await console_.textContent('#ad-report')), 5_000);
  } finally {
    await browser?.close();
    await paidBrowser?.close();
    await server.stop();
  }
});

test('on demand: a recording with two live breaks plays a pre-roll, then each mid-roll where its break ran', async () => {
  const server = await startServer({ extraArgs: ['--recording-grace-secs', '1'] });
  const scratch = mkdtempSync(join(tmpdir(), 'relaycast-vodads-'));
  let browser;
  try {
    const admin = await server.token('admin', 'ads-admin');
    const mod = await server.modHeaders();
    await upload(server.base, admin, await makeCreative(scratch), { title: 'Spring sale', click_url: `${server.base}/` });
    browser = await launchBrowser();
    const publisher = await startPublishing(browser, server.base, 'VP8');
    await waitForLayers(server.base, 1);
    await waitFor('recording', async () => (await (await fetch(`${server.base}/api/videos?broadcast=live`)).json()).videos[0]?.status === 'recording', 10_000, 200);
    await sleep(2_000);
    const first = await startBreak(server.base, mod, 5);
    await sleep(5_300);
    const second = await startBreak(server.base, mod, 5);
    await sleep(2_500);
    await publisher.close();
    const video = await waitFor('the recording to be ready', async () => {
      const v = (await (await fetch(`${server.base}/api/videos?broadcast=live`)).json()).videos[0];
      return v?.status === 'ready' && v;
    }, 20_000, 200);
    assert.equal(first.recording, video.id);
    assert.equal(second.recording, video.id);
    const offsets = [first.position_ms / 1000, second.position_ms / 1000];
    assert.ok(offsets[0] > 1 && offsets[1] > offsets[0] + 4, `breaks at ${offsets} s`);

    const page = await browser.newPage();
    await page.goto(`${server.base}/watch/${video.id}`);
    const played = async (n) => waitFor(`ad slot ${n} played`, () => page.evaluate((i) => {
      const e = window.relaycastAds?.[i];
      return e?.ended != null && { offset: e.offset, at: e.at, outcomes: e.outcomes, time: document.getElementById('video').currentTime };
    }, n - 1), 30_000, 50);
    const pre = await played(1);
    assert.equal(pre.offset, 0);
    assert.deepEqual(pre.outcomes, ['complete']);
    assert.ok(pre.time < 0.5, `the pre-roll plays before the video (at ${pre.time} s)`);
    for (const [i, offset] of offsets.entries()) {
      const mid = await played(i + 2);
      assert.ok(Math.abs(mid.offset - offset) < 0.01, `mid-roll ${i + 1} scheduled at ${mid.offset} s, its break ran at ${offset} s`);
      assert.ok(mid.at >= offset && mid.at < offset + 0.8, `mid-roll ${i + 1} played at ${mid.at.toFixed(2)} s for ${offset} s`);
      assert.deepEqual(mid.outcomes, ['complete']);
    }
    console.log(`# on demand: pre-roll, then mid-rolls at ${offsets.map((o) => `${o.toFixed(2)} s`).join(' and ')}`);
    const resumed = await waitFor('the video plays on after the last mid-roll', () => page.evaluate((o) =>
      document.getElementById('video').currentTime > o + 1, offsets[1]), 10_000, 100);
    assert.ok(resumed);
  } finally {
    await browser?.close();
    await server.stop();
  }
});
