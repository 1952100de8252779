// Videos on demand of a VP8 broadcast: Chromium publishes 3-layer VP8
// simulcast (a browser's default codec), which is recorded as WebM (the
// container Chromium's MSE plays VP8 in), one rendition per layer. Debian's
// ffprobe/ffmpeg check every segment and the download; Chromium plays the
// recording on the watch page (its MSE WebM player) from ?t=, switches
// quality and seeks, and rewinds it while it is still being recorded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser, screenshotDir, startPublishing, waitForLayers, sleep, waitFor } from './harness.js';
import { ffprobe, decodes, run } from './media.js';

test('a VP8 broadcast becomes WebM renditions that ffmpeg decodes and the watch page plays', async () => {
  const server = await startServer({ extraArgs: ['--recording-grace-secs', '1'] });
  const scratch = mkdtempSync(join(tmpdir(), 'relaycast-vp8-'));
  try {
    const publishing = await launchBrowser();
    try {
      await startPublishing(publishing, server.base, 'VP8');
      await waitForLayers(server.base, 3);
      await sleep(8_000);
      // Rewind while live: the recording in progress plays its DVR window
      // (live playlists, reloaded as they grow) from 2 s in.
      const { videos: [live] } = await (await fetch(`${server.base}/api/videos?broadcast=live`)).json();
      assert.equal(live.status, 'recording');
      const dvr = await publishing.newPage();
      await dvr.goto(`${server.base}/watch/${live.id}?t=2`);
      const at = () => dvr.evaluate(() => {
        const v = document.getElementById('video');
        return v.readyState >= 2 && v.getVideoPlaybackQuality().totalVideoFrames > 0 && v.currentTime;
      });
      const rewound = await waitFor('the live recording playing from 2 s', at, 10_000, 20);
      console.log(`VP8 DVR: playing at ${rewound.toFixed(2)} s of the recording in progress`);
      assert.ok(rewound >= 1.5 && rewound <= 4, `rewound to ${rewound} s`);
      assert.equal(await dvr.isVisible('#back-live'), true, 'one click returns to live');
      await waitFor('playback advancing', async () => (await at()) > rewound + 1.5, 6_000, 100);
      await dvr.close();
      await sleep(3_000);
    } finally {
      await publishing.close().catch(() => {});
    }
    const [video] = await waitFor('the recording to be ready', async () => {
      const v = await (await fetch(`${server.base}/api/videos`)).json();
      return v.videos.length === 1 && v.videos[0].status === 'ready' && v.videos;
    }, 20_000, 200);
    console.log(`recorded ${video.duration_secs} s:`, video.layers.map((l) =>
      `${l.name} ${l.width}x${l.height} ${l.codecs} ${Math.round(l.bitrate_bps / 1000)} kbit/s ${l.segments} segments ${l.seconds.toFixed(2)} s`).join(', '));
    assert.equal(video.layers.length, 3, 'one rendition per simulcast layer');
    assert.ok(video.layers.every((l) => l.codecs === 'vp8,opus'), 'VP8 with Opus');
    assert.ok(video.duration_secs >= 12, `${video.duration_secs} s recorded of ~16 s published`);

    const base = `${server.base}/videos/${video.id}`;
    const master = await (await fetch(`${base}/master.m3u8`)).text();
    assert.match(master, /CODECS="vp8,opus"\n\d+p\/index\.m3u8/);
    for (const layer of video.layers) {
      const playlist = await (await fetch(`${base}/${layer.name}/index.m3u8`)).text();
      assert.match(playlist, /#EXT-X-MAP:URI="init-0\.webm"/);
      assert.match(playlist, /#EXT-X-ENDLIST\n$/);
      // The recorder asks for a keyframe every 4 s (a browser sends one only
      // when asked), so no segment runs much longer.
      const lengths = [...playlist.matchAll(/#EXTINF:([\d.]+),/g)].map((m) => Number(m[1]));
      assert.ok(Math.max(...lengths) <= 6, `${layer.name} segments: ${lengths.join(', ')} s`);
      const initRes = await fetch(`${base}/${layer.name}/init-0.webm`);
      assert.equal(initRes.headers.get('content-type'), 'video/webm');
      const init = Buffer.from(await initRes.arrayBuffer());
      const segments = playlist.split('\n').filter((l) => l.endsWith('.webm'));
      assert.equal(segments.length, layer.segments);
      for (const seg of segments) {
        const res = await fetch(`${base}/${layer.name}/${seg}`);
        assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
        const file = join(scratch, `${layer.name}-${seg}`);
        writeFileSync(file, Buffer.concat([init, Buffer.from(await res.arrayBuffer())]));
        const packets = await ffprobe(file, 'packet=flags', 'v');
        assert.match(packets.packets[0].flags, /^K/, `${layer.name}/${seg} starts with a keyframe`);
        await decodes(file);
      }

      // The download: one WebM with its duration and cues, played by ffmpeg.
      const dl = await fetch(`${server.base}${video.download_url}?layer=${layer.name}`);
      assert.equal(dl.status, 200, dl.status === 200 ? '' : await dl.clone().text());
      assert.equal(dl.headers.get('content-type'), 'video/webm');
      assert.match(dl.headers.get('content-disposition'), new RegExp(`^attachment; filename="live-\\d{4}-\\d{2}-\\d{2}-${layer.name}\\.webm"$`));
      const body = Buffer.from(await dl.arrayBuffer());
      assert.equal(body.length, Number(dl.headers.get('content-length')));
      const file = join(scratch, `${layer.name}.webm`);
      writeFileSync(file, body);
      const probe = await ffprobe(file, 'stream=codec_name,width,height:format=duration,format_name', 'v');
      assert.equal(probe.streams[0].codec_name, 'vp8', layer.name);
      assert.deepEqual([probe.streams[0].width, probe.streams[0].height], [layer.width, layer.height]);
      const duration = Number(probe.format.duration);
      assert.ok(Math.abs(duration - layer.seconds) <= 0.2, `${layer.name}: download ${duration} s, recorded ${layer.seconds} s`);
      assert.equal((await ffprobe(file, 'stream=codec_name', 'a')).streams[0].codec_name, 'opus');
      await decodes(file);
      // Its cues let a player seek without reading the file (ffmpeg seeks
      // to the middle and decodes from there).
      await run('ffmpeg', ['-v', 'error', '-xerror', '-ss', String(Math.floor(duration / 2)), '-i', file, '-frames:v', '5', '-f', 'null', '-'], { timeout: 30_000 });
    }

    // The poster: a VP8 keyframe of the smallest rendition, as a JPEG.
    const posterFile = join(scratch, 'poster.jpg');
    const poster = await fetch(`${server.base}${video.poster_url}`);
    assert.equal(poster.status, 200);
    writeFileSync(posterFile, Buffer.from(await poster.arrayBuffer()));
    const smallest = video.layers.at(-1);
    const posterProbe = await ffprobe(posterFile, 'stream=codec_name,width,height', 'v');
    assert.deepEqual([posterProbe.streams[0].codec_name, posterProbe.streams[0].width, posterProbe.streams[0].height],
      ['mjpeg', smallest.width, smallest.height]);

    // Chromium plays it from ?t=6, switches to the smallest rendition,
    // seeks back and forth.
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      const t0 = Date.now();
      await page.goto(`${server.base}/watch/${video.id}?t=6`);
      const say = () => page.evaluate(() => {
        const v = document.getElementById('video');
        const b = [...Array(v.buffered.length).keys()].map((i) => `${v.buffered.start(i).toFixed(2)}-${v.buffered.end(i).toFixed(2)}`);
        return JSON.stringify({ at: v.currentTime, ready: v.readyState, paused: v.paused, height: v.videoHeight, buffered: b, status: document.getElementById('status').textContent });
      });
      const first = await waitFor('the first frame from 6 s', () => page.evaluate(() => {
        const v = document.getElementById('video');
        return v.readyState >= 2 && v.getVideoPlaybackQuality().totalVideoFrames > 0 && v.currentTime;
      }), 10_000, 20).catch(async (e) => { console.log('the player says:', await say()); throw e; });
      const ttff = Date.now() - t0;
      console.log(`VP8 on demand: first frame ${ttff} ms after navigation, at ${first.toFixed(2)} s`);
      assert.ok(first >= 5.5 && first <= 7.5, `started at ${first} s`);
      const options = await page.$$eval('#quality option', (os) => os.map((o) => o.textContent));
      assert.equal(options.length, 4, options.join(', '));
      const small = await page.$eval('#quality', (s, h) => [...s.options].find((o) => o.textContent.startsWith(`${h}p`)).value, smallest.height);
      await page.selectOption('#quality', small);
      await waitFor(`the ${smallest.height}p rendition`, () => page.evaluate((h) => {
        const v = document.getElementById('video');
        return v.videoHeight === h && !v.paused && v.readyState >= 3;
      }, smallest.height), 10_000, 50).catch(async (e) => { console.log('the player says:', await say()); throw e; });
      for (const to of [2, 10]) {
        const seekStart = Date.now();
        await page.evaluate((t) => { document.getElementById('video').currentTime = t; }, to);
        await waitFor(`playing at ${to} s`, () => page.evaluate((t) => {
          const v = document.getElementById('video');
          return !v.seeking && v.readyState >= 3 && v.currentTime >= t && v.currentTime < t + 2;
        }, to), 10_000, 20).catch(async (e) => { console.log('the player says:', await say()); throw e; });
        console.log(`VP8 seek to ${to} s: ${Date.now() - seekStart} ms`);
      }
      await page.screenshot({ path: join(screenshotDir, 'video-on-demand-vp8.png') });
    } finally {
      await browser.close().catch(() => {});
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await server.stop();
  }
});
