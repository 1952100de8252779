// Videos on demand: an OBS-faithful broadcast (3 simulcast layers of x264
// + Opus) is recorded as one HLS rendition per layer, served over HTTP, and
// checked with Debian's ffprobe/ffmpeg; a kill -9 while recording leaves a
// recording that the next start closes and that still plays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser, screenshotDir, inboundVideo, freePort, STREAM_KEY, sleep, waitFor } from './harness.js';
import { spawn } from 'node:child_process';
import { ObsPublisher } from './obs-publisher.js';
import { ffprobe, decodes } from './media.js';

const FPS = 30;

/// The types of an MP4's top-level boxes, in order.
function topLevelBoxes(buf) {
  const types = [];
  for (let at = 0; at + 8 <= buf.length;) {
    let size = buf.readUInt32BE(at);
    if (size === 1) size = Number(buf.readBigUInt64BE(at + 8));
    types.push(buf.toString('latin1', at + 4, at + 8));
    if (size < 8) break;
    at += size;
  }
  return types;
}

async function videos(base, query = '') {
  const res = await fetch(`${base}/api/videos${query}`);
  assert.equal(res.status, 200);
  return (await res.json()).videos;
}

async function publish(base, seconds) {
  const pub = new ObsPublisher({ base, key: STREAM_KEY, layers: 3, log: () => {} });
  await pub.start();
  await sleep(seconds * 1000);
  return pub;
}

/// Sends a chat line to the `live` room from `page` (any page of the
/// server) over the realtime websocket, as a guest; the line's time.
async function chatLine(page, text) {
  return page.evaluate(async (text) => {
    if (!window.testChat) {
      const made = await fetch('/api/guest', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
      const { token } = await made.json();
      const ws = new WebSocket(`ws://${location.host}/ws`);
      await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
      const next = (type) => new Promise((ok) => {
        ws.addEventListener('message', function seen(e) {
          const m = JSON.parse(e.data);
          if (m.type === type) { ws.removeEventListener('message', seen); ok(m); }
        });
      });
      window.testChat = { ws, next };
      ws.send(JSON.stringify({ type: 'auth', token }));
      await next('identity');
      ws.send(JSON.stringify({ type: 'join', stream: 'live' }));
      await next('joined');
    }
    const echo = window.testChat.next('chat');
    window.testChat.ws.send(JSON.stringify({ type: 'chat.send', text }));
    return (await echo).ts;
  }, text);
}

test('an OBS broadcast becomes one HLS rendition per layer that ffmpeg decodes, keyframe-first', async () => {
  const server = await startServer({ extraArgs: ['--recording-grace-secs', '1'] });
  const scratch = mkdtempSync(join(tmpdir(), 'relaycast-rec-'));
  try {
    // Two chat lines while it is recorded (about 6 s and 16 s in), for
    // the replay beside the recording.
    const chatter = await launchBrowser();
    let pub, early, late;
    try {
      const chatPage = await chatter.newPage();
      await chatPage.goto(`${server.base}/`);
      pub = await publish(server.base, 6);
      early = await chatLine(chatPage, 'Early line');
      await sleep(10_000);
      late = await chatLine(chatPage, 'Later line');
      await sleep(4_000);
    } finally {
      await chatter.close().catch(() => {});
    }
    assert.equal(pub.stats.firstFrameOfSessionWasKeyframe[0], true);
    await pub.stop();
    const sent = pub.stats.framesSent / FPS;
    const [video] = await waitFor('the recording to be ready', async () => {
      const v = await videos(server.base);
      return v.length === 1 && v[0].status === 'ready' && v;
    }, 15_000, 200);
    console.log(`recorded ${video.duration_secs} s of ${sent.toFixed(3)} s sent:`,
      video.layers.map((l) => `${l.name} ${l.width}x${l.height} ${Math.round(l.bitrate_bps / 1000)} kbit/s ${l.segments} segments`).join(', '));
    assert.deepEqual(video.layers.map((l) => [l.name, l.width, l.height]),
      [['720p', 1280, 720], ['360p', 640, 360], ['180p', 320, 180]]);

    const base = `${server.base}/videos/${video.id}`;
    const master = await fetch(`${base}/master.m3u8`);
    assert.equal(master.headers.get('content-type'), 'application/vnd.apple.mpegurl');
    const masterText = await master.text();
    assert.match(masterText, /RESOLUTION=1280x720,CODECS="avc1\.64001f,opus"\n720p\/index\.m3u8/);

    for (const layer of video.layers) {
      const url = `${base}/${layer.name}/index.m3u8`;
      const probe = await ffprobe(url, 'stream=codec_name,width,height:format=duration', 'v');
      assert.equal(probe.streams[0].codec_name, 'h264', layer.name);
      assert.equal(probe.streams[0].width, layer.width);
      assert.equal(probe.streams[0].height, layer.height);
      const duration = Number(probe.format.duration);
      assert.ok(Math.abs(duration - sent) <= 0.2, `${layer.name}: ${duration} s recorded, ${sent} s sent`);
      const audio = await ffprobe(url, 'stream=codec_name', 'a');
      assert.equal(audio.streams[0].codec_name, 'opus', layer.name);
      await decodes(url);

      // Every segment, with its init segment, starts with a keyframe.
      const playlist = await (await fetch(url)).text();
      assert.match(playlist, /#EXT-X-PLAYLIST-TYPE:VOD\n/);
      assert.match(playlist, /#EXT-X-ENDLIST\n$/);
      const init = Buffer.from(await (await fetch(`${base}/${layer.name}/init-0.mp4`)).arrayBuffer());
      const segments = playlist.split('\n').filter((l) => l.endsWith('.m4s'));
      assert.equal(segments.length, layer.segments);
      for (const seg of segments) {
        const res = await fetch(`${base}/${layer.name}/${seg}`);
        assert.equal(res.headers.get('content-type'), 'video/iso.segment');
        assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
        const file = join(scratch, `${layer.name}-${seg}.mp4`);
        writeFileSync(file, Buffer.concat([init, Buffer.from(await res.arrayBuffer())]));
        const packets = await ffprobe(file, 'packet=flags', 'v');
        assert.match(packets.packets[0].flags, /^K/, `${layer.name}/${seg} starts with a keyframe`);
      }
    }

    // The poster: a keyframe of the smallest rendition, as a JPEG.
    const poster = await fetch(`${server.base}${video.poster_url}`);
    assert.equal(poster.status, 200);
    assert.equal(poster.headers.get('content-type'), 'image/jpeg');
    const posterFile = join(scratch, 'poster.jpg');
    writeFileSync(posterFile, Buffer.from(await poster.arrayBuffer()));
    const posterProbe = await ffprobe(posterFile, 'stream=codec_name,width,height', 'v');
    assert.deepEqual([posterProbe.streams[0].codec_name, posterProbe.streams[0].width, posterProbe.streams[0].height], ['mjpeg', 320, 180]);

    // Byte ranges, as players and CDNs ask for them.
    const segUrl = `${base}/720p/seg-0.m4s`;
    const ranged = await fetch(segUrl, { headers: { Range: 'bytes=0-99' } });
    assert.equal(ranged.status, 206);
    assert.match(ranged.headers.get('content-range'), /^bytes 0-99\/\d+$/);
    assert.equal((await ranged.arrayBuffer()).byteLength, 100);
    const beyond = await fetch(segUrl, { headers: { Range: 'bytes=999999999-' } });
    assert.equal(beyond.status, 416);
    assert.equal((await beyond.json()).error, 'range_not_satisfiable');

    // The API's view, and clear errors for what does not exist.
    const one = await (await fetch(`${server.base}/api/videos/${video.id}`)).json();
    assert.equal(one.hls_url, `/videos/${video.id}/master.m3u8`);
    assert.equal(one.broadcast, 'live');
    const missing = await fetch(`${server.base}/api/videos/v${'0'.repeat(32)}`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error, 'not_found');
    assert.equal((await fetch(`${base}/720p/secret.txt`)).status, 404);
    assert.equal((await fetch(`${server.base}/api/videos?limit=0`)).status, 400);
    assert.equal((await videos(server.base, '?q=no-such-title')).length, 0);
    assert.equal((await videos(server.base, '?broadcast=live')).length, 1);

    // The download: one progressive MP4 (moov before mdat) of a rendition.
    const dl = await fetch(`${server.base}${video.download_url}?layer=360p`);
    assert.equal(dl.status, 200);
    assert.equal(dl.headers.get('content-type'), 'video/mp4');
    assert.match(dl.headers.get('content-disposition'), /^attachment; filename="live-\d{4}-\d{2}-\d{2}-360p\.mp4"$/);
    const mp4 = Buffer.from(await dl.arrayBuffer());
    assert.equal(mp4.length, Number(dl.headers.get('content-length')));
    assert.deepEqual(topLevelBoxes(mp4), ['ftyp', 'moov', 'mdat']);
    const mp4File = join(scratch, 'download.mp4');
    writeFileSync(mp4File, mp4);
    const dlProbe = await ffprobe(mp4File, 'stream=codec_name,width,height:format=duration', 'v');
    assert.deepEqual([dlProbe.streams[0].codec_name, dlProbe.streams[0].width, dlProbe.streams[0].height], ['h264', 640, 360]);
    assert.ok(Math.abs(Number(dlProbe.format.duration) - sent) <= 0.2, `download: ${dlProbe.format.duration} s`);
    await decodes(mp4File);
    const badLayer = await fetch(`${server.base}${video.download_url}?layer=4k`);
    assert.equal(badLayer.status, 400);
    assert.match((await badLayer.json()).message, /720p, 360p, 180p/);

    // Chromium plays it with the watch page's on-demand player: from ?t=10,
    // then another quality, then seeks back and forth.
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      const t0 = Date.now();
      await page.goto(`${server.base}/watch/${video.id}?t=10`);
      const first = await waitFor('the first frame from 10 s', () => page.evaluate(() => {
        const v = document.getElementById('video');
        return v.readyState >= 2 && v.getVideoPlaybackQuality().totalVideoFrames > 0 && v.currentTime;
      }), 10_000, 20);
      const ttff = Date.now() - t0;
      console.log(`on demand: first frame ${ttff} ms after navigation, at ${first.toFixed(2)} s`);
      assert.equal(await page.isVisible('#back-live'), false, 'a finished recording has no live to go back to');
      // Chat replay: the line sent before the position is shown, the later
      // one not yet.
      const replay = () => page.$eval('#chat-list', (l) => l.textContent);
      const earlyAt = (early - video.started_ms) / 1000;
      const lateAt = (late - video.started_ms) / 1000;
      console.log(`chat lines at ${earlyAt.toFixed(2)} s and ${lateAt.toFixed(2)} s of the recording`);
      await waitFor('the early chat line replayed', async () => (await replay()).includes('Early line'), 5000, 50);
      assert.ok(!(await replay()).includes('Later line'), 'a line is not shown before playback reaches it');
      assert.ok(first >= 9.5 && first <= 11, `started at ${first} s`);
      assert.ok(ttff < 3000, `first frame ${ttff} ms after navigation`);
      const options = await page.$$eval('#quality option', (os) => os.map((o) => o.textContent));
      assert.equal(options.length, 4, options.join(', '));
      assert.equal(options[0], 'Auto');
      const small = await page.$eval('#quality', (s) => [...s.options].find((o) => o.textContent.startsWith('180p')).value);
      await page.selectOption('#quality', small);
      await waitFor('the 180p rendition', () => page.evaluate(() => document.getElementById('video').videoHeight === 180), 10_000, 50)
        .catch(async (e) => {
          console.log('the player says:', await page.evaluate(() => {
            const v = document.getElementById('video');
            const b = [...Array(v.buffered.length).keys()].map((i) => `${v.buffered.start(i).toFixed(2)}-${v.buffered.end(i).toFixed(2)}`);
            return JSON.stringify({ at: v.currentTime, paused: v.paused, ended: v.ended, height: v.videoHeight, level: v.dataset.level, buffered: b, status: document.getElementById('playing')?.textContent });
          }));
          throw e;
        });
      for (const to of [2, 15]) {
        const seekStart = Date.now();
        await page.evaluate((t) => { document.getElementById('video').currentTime = t; }, to);
        await waitFor(`playing at ${to} s`, () => page.evaluate((t) => {
          const v = document.getElementById('video');
          return !v.seeking && v.readyState >= 3 && v.currentTime >= t && v.currentTime < t + 2;
        }, to), 10_000, 20);
        console.log(`seek to ${to} s: ${Date.now() - seekStart} ms`);
        if (to === 2) {
          await sleep(300);
          assert.ok(!(await replay()).includes('Early line'), 'seeking back before a line takes it away');
        }
      }
      await waitFor('both chat lines replayed once playback reaches the later one', async () => {
        const text = await replay();
        return text.includes('Early line') && text.includes('Later line');
      }, 5000, 50);
      // The broadcast's comments are under the video: one posted here is
      // the broadcast's. Posting first makes a guest identity, which
      // reloads the list. The race that once lost the comment is forced
      // here: that reload is served before the post and answered after
      // the post's answer, and must not wipe the new comment.
      let getServed, postAnswered;
      const served = new Promise((r) => { getServed = r; });
      const answered = new Promise((r) => { postAnswered = r; });
      await page.route('**/api/broadcasts/live/comments', async (route) => {
        if (route.request().method() === 'GET') {
          const response = await route.fetch();
          getServed();
          await Promise.race([answered, sleep(5000)]);
          await sleep(300);
          return route.fulfill({ response });
        }
        await Promise.race([served, sleep(5000)]);
        const response = await route.fetch();
        await route.fulfill({ response });
        postAnswered();
      });
      await page.fill('#comment-input', 'Watched the recording');
      await page.click('#comment-form button[type=submit]');
      await waitFor('the comment listed', () => page.$eval('#comment-list', (l) => l.textContent.includes('Watched the recording')), 20_000, 100)
        .catch(async (e) => {
          console.log('comment form says:', await page.$eval('#comment-error', (x) => x.textContent));
          throw e;
        });
      await sleep(1000);
      assert.ok(await page.$eval('#comment-list', (l) => l.textContent.includes('Watched the recording')),
        'the comment is still listed once the reload it raced has answered');
      await page.unroute('**/api/broadcasts/live/comments');
      const { comments } = await (await fetch(`${server.base}/api/broadcasts/live/comments`)).json();
      assert.equal(comments[0].comment, 'Watched the recording');
      // Rating the recording rates its broadcast, over REST (the page joins
      // no room); the count and the viewer's own choice are read back.
      await page.click('#like');
      await waitFor('the like counted', () => page.$eval('#likes', (x) => x.textContent === '1'), 10_000, 50);
      const rated = await (await fetch(`${server.base}/api/broadcasts/live/like`)).json();
      assert.deepEqual([rated.likes, rated.dislikes], [1, 0]);
      await page.screenshot({ path: join(screenshotDir, 'video-on-demand.png'), fullPage: true });
      await page.reload();
      await waitFor('the own like shown after a reload', () => page.evaluate(() => document.getElementById('likes').textContent === '1'
        && document.getElementById('like').getAttribute('aria-pressed') === 'true'), 10_000, 50);

      // The directory lists it under Videos, linking to that page.
      const directory = await browser.newPage();
      await directory.goto(`${server.base}/`);
      const link = await waitFor('the video in the directory', () => directory.$(`#videos a[href="/watch/${video.id}"]`), 10_000, 100);
      assert.equal(await link.textContent(), 'live');
      await waitFor('its poster shown', () => directory.$eval('#videos img.poster', (i) => i.complete && i.naturalWidth === 320), 10_000, 100);
      // "Recorded only" shows just the videos, and the URL keeps it.
      await directory.uncheck('#live');
      await waitFor('the offline broadcast listed', () => directory.$('#list a[href="/watch/live"]'), 10_000, 100);
      await directory.check('#recorded');
      await waitFor('only videos shown', () => directory.evaluate(() => document.getElementById('broadcasts').hidden
        && document.getElementById('heading').textContent === 'Videos'), 5000, 50);
      assert.equal(await directory.isVisible('#list'), false);
      assert.equal(new URL(directory.url()).searchParams.get('recorded'), 'true');
      await directory.reload();
      await waitFor('the video listed after a reload', () => directory.$(`#videos a[href="/watch/${video.id}"]`), 10_000, 100);
      assert.equal(await directory.isVisible('#list'), false);
      assert.equal(await directory.isChecked('#recorded'), true);
    } finally {
      await browser.close().catch(() => {});
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await server.stop();
  }
});

test('kill -9 while recording: the next start closes the recording, which plays to its last segment', async () => {
  const first = await startServer();
  let second;
  try {
    const pub = await publish(first.base, 13);
    const [open] = await videos(first.base);
    assert.equal(open.status, 'recording');
    assert.ok(open.duration_secs >= 8, `segments are written while live (${open.duration_secs} s so far)`);
    const killed = await first.stop({ signal: 'SIGKILL' });
    assert.equal(killed.signal, 'SIGKILL');
    const sent = pub.stats.framesSent / FPS;
    await pub.stop().catch(() => {});

    second = await startServer({ dataDir: first.dataDir });
    const [video] = await videos(second.base);
    assert.equal(video.id, open.id);
    assert.equal(video.status, 'ready');
    // At most the segment being assembled (one 4 s GOP) is lost.
    assert.ok(video.duration_secs >= sent - 4.5, `${video.duration_secs} s kept of ${sent} s sent`);
    console.log(`after kill -9: ${video.duration_secs} s of ${sent.toFixed(2)} s kept, ${video.layers.length} renditions`);
    assert.equal(video.layers.length, 3);
    const playlist = await (await fetch(`${second.base}/videos/${video.id}/720p/index.m3u8`)).text();
    assert.match(playlist, /#EXT-X-ENDLIST\n$/);
    await decodes(`${second.base}/videos/${video.id}/master.m3u8`);
  } finally {
    await second?.stop();
    await first.stop();
  }
});

test('an OBS reconnect within the grace continues the same recording as a second part', async () => {
  const server = await startServer({ extraArgs: ['--recording-grace-secs', '5'] });
  const scratch = mkdtempSync(join(tmpdir(), 'relaycast-rec-'));
  try {
    const pub = await publish(server.base, 9);
    await pub.reconnect({ gapMs: 1500 });
    await sleep(9000);
    await pub.stop();
    const all = await waitFor('the recording to be ready', async () => {
      const v = await videos(server.base);
      return v.length >= 1 && v.every((x) => x.status === 'ready') && v;
    }, 20_000, 250);
    assert.equal(all.length, 1, 'one recording for both publisher sessions');
    const [video] = all;
    const playlist = await (await fetch(`${server.base}/videos/${video.id}/720p/index.m3u8`)).text();
    assert.match(playlist, /#EXT-X-MAP:URI="init-0\.mp4"[\s\S]*#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init-1\.mp4"/);
    console.log(`two sessions, one recording: ${video.duration_secs} s, ${video.layers.map((l) => `${l.name} ${l.segments} segments`).join(', ')}`);
    assert.ok(video.duration_secs >= 14, `${video.duration_secs} s recorded`);
    await decodes(`${server.base}/videos/${video.id}/720p/index.m3u8`);
    const mp4 = Buffer.from(await (await fetch(`${server.base}${video.download_url}`)).arrayBuffer());
    const file = join(scratch, 'both.mp4');
    writeFileSync(file, mp4);
    await decodes(file);
    const probe = await ffprobe(file, 'format=duration', 'v');
    assert.ok(Number(probe.format.duration) >= 14, `download ${probe.format.duration} s`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await server.stop();
  }
});

test('a live viewer rewinds 10 s into the recording and comes back to live over WebRTC', async () => {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const pub = await publish(server.base, 2);
    const page = await browser.newPage();
    await page.goto(`${server.base}/watch/live`);
    await waitFor('live frames', async () => (await inboundVideo(page))?.framesDecoded > 0, 10_000, 50);
    await sleep(12_000);
    // While live, the broadcast's poster comes from its recording.
    const poster = await fetch(`${server.base}/api/broadcasts/live/poster.jpg`);
    assert.equal(poster.status, 200);
    assert.equal(poster.headers.get('content-type'), 'image/jpeg');
    const clicked = Date.now();
    await page.click('#rewind');
    await page.waitForURL(/\/watch\/v[0-9a-f]{32}\?t=/, { timeout: 5000 });
    const t = Number(new URL(page.url()).searchParams.get('t'));
    const at = await waitFor('the recording playing', () => page.evaluate(() => {
      const v = document.getElementById('video');
      return v.readyState >= 2 && v.getVideoPlaybackQuality().totalVideoFrames > 0 && !v.paused && v.currentTime;
    }), 10_000, 50);
    const [rec] = await videos(server.base);
    const live = (clicked - rec.started_ms) / 1000;
    console.log(`rewound: playing the recording at ${at.toFixed(2)} s, ${(live - at).toFixed(2)} s behind live (asked ${t} s)`);
    assert.ok(Math.abs(live - 10 - t) < 1, `asked ${t} s at ${live} s into the broadcast`);
    assert.ok(Math.abs(at - t) < 2, `asked ${t} s, playing at ${at} s`);
    assert.equal(await page.isVisible('#recording'), true);
    await page.click('#back-live');
    await page.waitForURL(`${server.base}/watch/live`, { timeout: 5000 });
    await waitFor('live frames again', async () => (await inboundVideo(page))?.framesDecoded > 0, 10_000, 50);
    await pub.stop();
  } finally {
    await browser.close().catch(() => {});
    await server.stop();
  }
});

test('while recording, a viewer rewinds as far as the DVR window and no further; the whole recording plays once done', async () => {
  const server = await startServer({ extraArgs: ['--dvr-window', '10s', '--recording-grace-secs', '1'] });
  const browser = await launchBrowser();
  try {
    const pub = await publish(server.base, 22);
    const [rec] = await videos(server.base);
    assert.equal(rec.status, 'recording');
    const text = async (path) => {
      const res = await fetch(`${server.base}${path}`);
      assert.equal(res.status, 200, path);
      return res.text();
    };
    const listed = (playlist) => [...playlist.matchAll(/#EXTINF:([\d.]+),/g)].reduce((sum, m) => sum + Number(m[1]), 0);
    const master = await text(`/videos/${rec.id}/master.m3u8`);
    assert.match(master, /\n720p\/live\.m3u8\n/, master);
    const live = await text(`/videos/${rec.id}/720p/live.m3u8`);
    const sequence = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(live)?.[1]);
    const windowed = listed(live);
    const origin = (Date.parse(/#EXT-X-PROGRAM-DATE-TIME:(.+)/.exec(live)[1]) - rec.started_ms) / 1000;
    // The window ends where the recording does.
    const whole = origin + windowed;
    console.log(`DVR window: ${windowed.toFixed(2)} s listed from segment ${sequence} (${origin.toFixed(2)} s in) of ${whole.toFixed(2)} s recorded`);
    assert.ok(sequence >= 2, live);
    assert.ok(!live.includes('PLAYLIST-TYPE') && !live.includes('ENDLIST'), live);
    assert.ok(windowed >= 10 && windowed < 10 + 2 * 3, `${windowed} s listed`);
    assert.ok(Math.abs(whole - rec.duration_secs) < 4.5, `window from ${origin} s, ${windowed} s long, of ${rec.duration_secs} s`);
    // The complete playlist is rewritten every half window (5 s): it lags
    // the recording by less than that and a segment (a 4 s GOP).
    const indexed = listed(await text(`/videos/${rec.id}/720p/index.m3u8`));
    assert.ok(indexed <= whole + 0.1 && whole - indexed < 5 + 4.5, `index.m3u8 lists ${indexed} s of ${whole} s`);

    // `?t=` counts from the recording's start: 1 s is before the window
    // (playback starts at its beginning), and 4 s before its end is inside.
    const page = await browser.newPage();
    const playingAt = async (t) => {
      await page.goto(`${server.base}/watch/${rec.id}?t=${t}`);
      return waitFor(`playing from ${t} s`, () => page.evaluate(() => {
        const v = document.getElementById('video');
        return v.readyState >= 2 && v.getVideoPlaybackQuality().totalVideoFrames > 0
          && { at: v.currentTime, origin: Number(v.dataset.origin) };
      }), 10_000, 50);
    };
    const early = await playingAt(1);
    console.log(`asked 1 s: playing at ${(early.origin + early.at).toFixed(2)} s (window from ${early.origin.toFixed(2)} s)`);
    assert.ok(early.origin >= origin - 0.1 && early.origin <= origin + 4.5, `page places the window at ${early.origin} s`);
    assert.ok(early.at < 2.5, `playing ${early.at} s into the window`);
    const inside = Math.floor(whole - 4);
    const near = await playingAt(inside);
    console.log(`asked ${inside} s: playing at ${(near.origin + near.at).toFixed(2)} s`);
    assert.ok(Math.abs(near.origin + near.at - inside) < 2, `asked ${inside} s, playing at ${near.origin + near.at} s`);
    await page.close();

    await pub.stop();
    const [done] = await waitFor('the recording to be ready', async () => {
      const v = await videos(server.base);
      return v[0]?.status === 'ready' && v;
    }, 15_000, 200);
    assert.match(await text(`/videos/${done.id}/master.m3u8`), /\n720p\/index\.m3u8\n/);
    for (const file of ['index.m3u8', 'live.m3u8']) {
      const vod = await text(`/videos/${done.id}/720p/${file}`);
      assert.ok(vod.includes('#EXT-X-PLAYLIST-TYPE:VOD') && vod.endsWith('#EXT-X-ENDLIST\n'), file);
      assert.ok(listed(vod) >= whole, `${file}: ${listed(vod)} s of ${whole} s`);
    }
  } finally {
    await browser.close().catch(() => {});
    await server.stop();
  }
});

/// moto's S3 server (PyPI) on a loopback port, with one bucket.
async function startMoto(bucket) {
  const port = await freePort();
  const proc = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitFor('moto to answer', async () => (await fetch(`${url}/${bucket}`, { method: 'PUT' }).catch(() => null))?.ok, 20_000, 200);
  return { url, stop: () => proc.kill('SIGKILL') };
}

test('recordings can live in S3-compatible storage (moto), written and served through it', async () => {
  const moto = await startMoto('relaycast-test');
  const server = await startServer({
    extraArgs: ['--recordings-url', 's3://relaycast-test/recordings', '--recording-grace-secs', '1'],
    env: { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1', AWS_ENDPOINT: moto.url, AWS_ALLOW_HTTP: 'true' },
  });
  try {
    const pub = await publish(server.base, 9);
    await pub.stop();
    const [video] = await waitFor('the recording to be ready', async () => {
      const v = await videos(server.base);
      return v.length === 1 && v[0].status === 'ready' && v;
    }, 15_000, 200);
    const listing = await (await fetch(`${moto.url}/relaycast-test?list-type=2&prefix=recordings/${video.id}/`)).text();
    const keys = [...listing.matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]);
    console.log(`S3: ${keys.length} objects under recordings/${video.id}/, ${video.duration_secs} s`);
    assert.ok(keys.includes(`recordings/${video.id}/master.m3u8`), keys.join(', '));
    assert.ok(keys.includes(`recordings/${video.id}/720p/seg-0.m4s`));
    assert.ok(!existsSync(join(server.dataDir, 'recordings', video.id)), 'nothing written to the data dir');
    await decodes(`${server.base}/videos/${video.id}/master.m3u8`);
    const ranged = await fetch(`${server.base}/videos/${video.id}/720p/seg-0.m4s`, { headers: { Range: 'bytes=10-19' } });
    assert.equal(ranged.status, 206);
    assert.equal((await ranged.arrayBuffer()).byteLength, 10);
  } finally {
    await server.stop();
    moto.stop();
  }
});
