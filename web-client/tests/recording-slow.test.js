// Storage slower than the broadcast: recordings go to moto's S3 server
// through a 256 kbit/s link (htb on lo, in a private network namespace: the
// test re-runs itself under `unshare -n`) while an OBS-faithful broadcast
// of ~3.6 Mbit/s is recorded with a small recorder queue. The recorder must
// drop and count (`recorder_backpressure`) and the live Chromium viewer must
// lose nothing and keep decoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser, freePort, inboundVideo, waitFor, sleep, STREAM_KEY, insideNetns, rerunInNetns, sh } from './harness.js';
import { ObsPublisher } from './obs-publisher.js';


async function recorderDrops(server) {
  const metrics = await (await fetch(`${server.base}/metrics`)).text();
  const line = metrics.split('\n').find((l) => l.startsWith('relaycast_drops_total{reason="recorder_backpressure"}'));
  return Number(line?.split(' ').pop() ?? 0);
}

if (!insideNetns()) {
  rerunInNetns('slow storage costs the recording packets, never the live viewers (in a network namespace)', import.meta.url);
} else {
  test('inside the namespace: the recorder drops and counts, the viewer loses nothing', async () => {
    sh('ip', 'link', 'set', 'lo', 'up');
    const motoPort = await freePort();
    // Only traffic to moto's port is shaped; media and HTTP to relaycast are not.
    sh('tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '0');
    sh('tc', 'class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:20', 'htb', 'rate', '256kbit', 'ceil', '256kbit');
    sh('tc', 'filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'u32',
      'match', 'ip', 'dport', String(motoPort), '0xffff', 'flowid', '1:20');
    const moto = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(motoPort)], { stdio: 'ignore' });
    const motoUrl = `http://127.0.0.1:${motoPort}`;
    const config = join(mkdtempSync(join(tmpdir(), 'relaycast-slow-')), 'relaycast.toml');
    writeFileSync(config, '[recordings]\nqueue = 64\n');
    let server;
    let browser;
    let pub;
    try {
      await waitFor('moto', async () => (await fetch(`${motoUrl}/slow`, { method: 'PUT' }).catch(() => null))?.ok, 20_000, 200);
      server = await startServer({
        extraArgs: ['--config', config, '--recordings-url', 's3://slow/recordings'],
        env: { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1', AWS_ENDPOINT: motoUrl, AWS_ALLOW_HTTP: 'true' },
      });
      pub = new ObsPublisher({ base: server.base, key: STREAM_KEY, layers: 3, log: () => {} });
      await pub.start();
      browser = await launchBrowser();
      const page = await browser.newPage();
      await page.goto(`${server.base}/watch/live`);
      await waitFor('the viewer decodes', async () => (await inboundVideo(page))?.framesDecoded > 0, 15_000, 50);
      const before = await inboundVideo(page);
      await waitFor('the recorder to fall behind', async () => (await recorderDrops(server)) > 0, 30_000, 250);
      await sleep(8000);
      const after = await inboundVideo(page);
      const drops = await recorderDrops(server);
      console.log(`recorder dropped ${drops} packets; the viewer decoded ${after.framesDecoded - before.framesDecoded} frames meanwhile, ${after.packetsLost} lost`);
      assert.ok(drops > 100, `${drops} recorder drops`);
      assert.equal(after.packetsLost, 0, 'the live viewer lost nothing');
      assert.ok(after.framesDecoded - before.framesDecoded > 8 * 25, 'the live viewer kept decoding');
    } finally {
      await pub?.stop().catch(() => {});
      await browser?.close().catch(() => {});
      await server?.stop();
      moto.kill('SIGKILL');
    }
  });
}
