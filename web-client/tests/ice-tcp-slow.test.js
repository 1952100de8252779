// A slow ICE-TCP viewer never holds its worker: it sheds layers like any
// congested viewer while a UDP viewer of the same worker stays on top. The
// test re-runs itself in a private network namespace (`unshare -n`) where
// `tc` may shape `lo`, and limits the TCP viewer's connection to 400 kbit/s
// (htb class with a 30 KB queue). Its connection's send queue then fills
// and what does not fit is dropped (`tcp_send_queue_full`), as a congested
// link would lose it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, waitFor, sleep, inboundVideo, waitForLayers, STREAM_KEY, insideNetns, rerunInNetns, sh } from './harness.js';
import { ObsPublisher } from './obs-publisher.js';

// As in bandwidth.test.js: the OBS-faithful publisher holds its rates.
const LAYERS = [
  { width: 640, height: 360, kbps: 2500 },
  { width: 320, height: 180, kbps: 500 },
  { width: 160, height: 90, kbps: 150 },
];
const TOP = LAYERS[0].width;

async function viewers(server) {
  const res = await fetch(`${server.base}/api/broadcasts/live/viewers`, { headers: await server.modHeaders() });
  return res.json();
}

async function drops(server, reason) {
  const metrics = await (await fetch(`${server.base}/metrics`)).text();
  const line = metrics.split('\n').find((l) => l.startsWith(`relaycast_drops_total{reason="${reason}"}`));
  return Number(line?.split(' ').pop() ?? 0);
}

const show = (v) => `${v?.width} (${v?.estimate_kbps} kbit/s, ${v?.loss_percent?.toFixed(0) ?? '-'} % lost)`;

if (!insideNetns()) {
  rerunInNetns('a slow ICE-TCP viewer sheds layers and never holds its worker (in a network namespace)', import.meta.url);
} else {
  test('inside the namespace: the TCP viewer behind 400 kbit/s moves down; the UDP viewer stays on top', async () => {
    sh('ip', 'link', 'set', 'lo', 'up');
    sh('tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '0');
    sh('tc', 'class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:20', 'htb', 'rate', '400kbit', 'ceil', '400kbit');
    sh('tc', 'qdisc', 'add', 'dev', 'lo', 'parent', '1:20', 'handle', '20:', 'bfifo', 'limit', '30000');
    // One worker: both viewers share it.
    const server = await startServer({ extraArgs: ['--workers', '1'] });
    let udpBrowser;
    let tcpBrowser;
    let publisher;
    let slow;
    try {
      publisher = new ObsPublisher({ base: server.base, key: STREAM_KEY, layers: LAYERS, gop: 30, cbr: true });
      assert.equal((await publisher.start()).status, 201, 'the publisher is live');
      await waitForLayers(server.base);
      tcpBrowser = await launchBrowser({ extraArgs: ['--webrtc-ip-handling-policy=disable_non_proxied_udp'] });
      slow = await tcpBrowser.newPage();
      await slow.goto(`${server.base}/watch/live`);
      await waitFor('TCP viewer connected', async () => (await viewers(server))[0]?.remote, 15_000);
      const tcpPort = (await viewers(server))[0].remote.split(':').pop();
      // Every state the TCP viewer's connection goes through.
      await slow.evaluate(() => {
        window.__states = [];
        const pc = window.relaycastViewer;
        const t0 = performance.now();
        pc.addEventListener('iceconnectionstatechange', () => window.__states.push(`${Math.round(performance.now() - t0)} ms ${pc.iceConnectionState}`));
      });
      udpBrowser = await launchBrowser();
      const free = await udpBrowser.newPage();
      await free.goto(`${server.base}/watch/live`);
      await waitFor('both viewers on the top layer', async () => {
        const v = await viewers(server);
        return v.length === 2 && v.every((x) => x.width >= TOP);
      }, 20_000, 250);

      // Only the TCP viewer's segments (to its port) go through the 400 kbit/s class.
      sh('tc', 'filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32',
        'match', 'ip', 'protocol', '6', '0xff', 'match', 'ip', 'dport', tcpPort, '0xffff', 'flowid', '1:20');
      const limited = Date.now();
      const freeWidths = [];
      const moved = await waitFor('the TCP viewer below the top layer', async () => {
        const v = await viewers(server);
        const slowV = v.find((x) => x.remote?.endsWith(`:${tcpPort}`));
        const freeV = v.find((x) => x !== slowV);
        console.log(`${Date.now() - limited} ms: TCP ${show(slowV)}, UDP ${show(freeV)}`);
        freeWidths.push(freeV?.width);
        return slowV && slowV.width != null && slowV.width < TOP && Date.now() - limited;
      }, 15_000, 500);
      console.log(`the TCP viewer left the top layer ${moved} ms after the 400 kbit/s limit; ${await drops(server, 'tcp_send_queue_full')} datagrams dropped at its full queue`);
      assert.ok(moved <= 12_000, `moved down within 12 s (took ${moved} ms)`);

      // Meanwhile and after, the UDP viewer of the same worker plays on, on top.
      const before = await inboundVideo(free);
      await sleep(3000);
      const after = await inboundVideo(free);
      const fps = (after.framesDecoded - before.framesDecoded) / 3;
      const lost = after.packetsLost - before.packetsLost;
      console.log(`UDP viewer meanwhile: ${fps.toFixed(1)} frames/s, ${lost} packets lost, ${after.frameWidth} wide`);
      assert.ok(freeWidths.every((w) => w >= TOP), `the UDP viewer stayed on top: ${freeWidths}`);
      assert.ok(fps > 15, `the UDP viewer keeps decoding (${fps.toFixed(1)} frames/s)`);
      assert.ok(lost <= 5, `the UDP viewer loses nothing to its neighbour (${lost} lost)`);
      // Not asserted, reported: behind this 30 KB router queue the TCP
      // viewer's own picture stalls after the move and its page
      // renegotiates when ICE says disconnected (see docs/operations.md).
      console.log(`TCP viewer ICE states so far: ${await slow.evaluate(() => window.__states.join(', ') || 'connected throughout')}`);
    } finally {
      console.log(`${await drops(server, 'tcp_send_queue_full').catch(() => '?')} datagrams dropped at full TCP queues`);
      console.log(`TCP viewer ICE states: ${await slow?.evaluate(() => window.__states?.join(', ')).catch(() => '?')}`);
      if (process.env.RELAYCAST_TEST_SERVER_LOG) console.log(server.log());
      await tcpBrowser?.close().catch(() => {});
      await udpBrowser?.close().catch(() => {});
      await publisher?.stop().catch(() => {});
      await server.stop();
    }
  });
}
