// Adaptive quality with Chromium as the constrained viewer, behind a real
// bottleneck: the test re-runs itself in a private network namespace
// (`unshare -n`) where `tc` may shape `lo`, and limits the viewer's UDP port
// to 400 kbit/s (htb class with a 30 KB queue); lifting the limit removes
// the filter. The viewer must settle on
// the low layer within 5 s and return to the top layer within 10 s of the
// limit being lifted; an unconstrained Chromium viewer stays on top.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, launchBrowser, waitFor, sleep, inboundVideo, waitForLayers, STREAM_KEY, insideNetns, rerunInNetns, sh } from './harness.js';
import { ObsPublisher } from './obs-publisher.js';

// The layers the issue specifies (~150 kbit/s, ~500 kbit/s, ~2.5 Mbit/s),
// from the OBS-faithful publisher (x264 CBR with filler, as OBS sends it, and
// a 1 s GOP: OBS's low-latency setting). Chromium's own encoder cannot be held to these
// rates: on its fake camera it sends only ~500/170/65 kbit/s, where a
// 400 kbit/s link rightly carries the middle layer.
// Small pictures keep the encoder and two decoders cheap on a 2-core
// machine; the bitrates are what the test is about.
const LAYERS = [
  { width: 640, height: 360, kbps: 2500 },
  { width: 320, height: 180, kbps: 500 },
  { width: 160, height: 90, kbps: 150 },
];
const TOP = LAYERS[0].width;
const LOW = LAYERS[2].width;

/// Packets received and lost by a watch page's video, from getStats.
/// Also the bytes of the video stream and of the whole transport (media,
/// retransmissions, padding and probes), to tell what fills the link.
const counts = (page) => page.evaluate(async () => {
  const out = { received: 0, lost: 0, videoBytes: 0, transportBytes: 0 };
  (await window.relaycastViewer.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') Object.assign(out, { received: s.packetsReceived, lost: s.packetsLost, videoBytes: s.bytesReceived, rtxBytes: s.retransmittedBytesReceived ?? 0, nacks: s.nackCount, width: s.frameWidth });
    if (s.type === 'transport') out.transportBytes = s.bytesReceived;
  });
  return out;
});


/// A viewer's state as the progress lines print it.
const show = (v) => `${v.width} (${v.estimate_kbps} kbit/s, ${v.loss_percent?.toFixed(0) ?? '-'} % lost, rtt ${v.rtt_ms ?? '-'} ms)`;

/// The server's drop counters and keyframe requests, on one line.
async function printMetrics(server) {
  const metrics = await (await fetch(`${server.base}/metrics`)).text();
  console.log(metrics.split('\n').filter((l) => /^relaycast_(drops_total|keyframe_req|datagrams)/.test(l)).join('; '));
}

async function viewers(server) {
  const res = await fetch(`${server.base}/api/broadcasts/live/viewers`, { headers: await server.modHeaders() });
  return res.json();
}

// On this 2-core machine (debug server, publisher, two Chromium viewers),
// with the worker's precise timer, 24 runs of 24 passed (21 by hand, 3 in
// suite runs). The last 6, with a heavy-loss report acted on at once,
// settled in 2.05-3.55 s with 0 packets lost in the 3 s after, and were
// back on the top layer 3.9-4.9 s after the limit was lifted. (Before the
// timer was precise, probes went out at two thirds of their rate and only
// about five runs in eight recovered within 10 s.)
// RELAYCAST_TEST_SERVER_LOG=1 prints the server's log at the end
// (RUST_LOG=relaycast_sfu::worker::adaptive=debug shows the loss caps, the
// estimator restarts and what each viewer's estimator is asked for).

if (!insideNetns()) {
  rerunInNetns('a Chromium viewer behind 400 kbit/s settles low and recovers (in a network namespace)', import.meta.url);
} else {
  test('inside the namespace: constrained viewer settles low, recovers; free viewer stays on top', async () => {
    sh('ip', 'link', 'set', 'lo', 'up');
    // Only the constrained viewer's packets go through the 400 kbit/s class;
    // everything else is unclassified (`default 0`), which htb sends
    // straight on without shaping. (A 10 Gbit/s default class instead
    // delayed every packet by htb's token timing: the free viewer's and
    // the probes' arrival times jittered, and so did the estimates.)
    sh('tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '0');
    sh('tc', 'class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:20', 'htb', 'rate', '400kbit', 'ceil', '400kbit');
    sh('tc', 'qdisc', 'add', 'dev', 'lo', 'parent', '1:20', 'handle', '20:', 'bfifo', 'limit', '30000');
    const server = await startServer();
    let browser;
    let publisher;
    try {
      publisher = new ObsPublisher({ base: server.base, key: STREAM_KEY, layers: LAYERS, gop: 30, cbr: true });
      const started = await publisher.start();
      assert.equal(started.status, 201, 'the publisher is live');
      browser = await launchBrowser();
      await waitForLayers(server.base);
      const constrained = await browser.newPage();
      await constrained.goto(`${server.base}/watch/live`);
      await waitFor('constrained viewer connected', async () => (await viewers(server))[0]?.remote, 15_000);
      const free = await browser.newPage();
      await free.goto(`${server.base}/watch/live`);
      await waitFor('both viewers on the top layer', async () => {
        const v = await viewers(server);
        return v.length === 2 && v.every((x) => x.width >= TOP);
      }, 20_000, 250);

      const layers = (await (await fetch(`${server.base}/api/broadcasts/live`)).json()).layers;
      console.log(`layers: ${JSON.stringify(layers)}`);
      const port = (await viewers(server))[0].remote.split(':').pop();
      sh('tc', 'filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32',
        'match', 'ip', 'protocol', '17', '0xff', 'match', 'ip', 'dport', port, '0xffff', 'flowid', '1:20');
      const limited = Date.now();
      const freeWidths = [];
      const settled = await waitFor('constrained viewer on the low layer', async () => {
        const v = await viewers(server);
        console.log(`${Date.now() - limited} ms: constrained ${show(v[0])}, free ${show(v[1])}`);
        freeWidths.push(v[1].width);
        return v[0].width <= LOW && Date.now() - limited;
      }, 8_000, 250);
      console.log(`Chromium viewer settled on the low layer ${settled} ms after the 400 kbit/s limit`);
      assert.ok(settled <= 5000, `settled within 5 s (took ${settled} ms)`);
      // Settled: pictures keep being decoded and most packets arrive. (The
      // probes that look for spare capacity still cost some loss on a link
      // at its limit; the figure is printed, and bounded here.)
      const trace = async (ms) => {
        for (const end = Date.now() + ms; Date.now() < end;) {
          const v = await viewers(server);
          console.log(`settled +${Date.now() - limited - settled} ms: constrained ${show(v[0])}, free ${show(v[1])}`);
          await sleep(500);
        }
      };
      await trace(1000);
      const before = await counts(constrained);
      const framesBefore = (await inboundVideo(constrained)).framesDecoded;
      await trace(3000);
      const after = await counts(constrained);
      const received = after.received - before.received;
      const lost = after.lost - before.lost;
      const kbps = (bytes) => Math.round((bytes * 8) / 3000);
      console.log(`settled: ${received} packets received, ${lost} lost in 3 s; video ${kbps(after.videoBytes - before.videoBytes)} kbit/s, transport ${kbps(after.transportBytes - before.transportBytes)} kbit/s, retransmitted ${kbps(after.rtxBytes - before.rtxBytes)} kbit/s, ${after.nacks - before.nacks} NACKs sent, decoded width ${after.width}`);
      assert.ok(lost <= Math.max(3, received * 0.25), `loss is not sustained once settled (${lost} lost of ${received + lost})`);
      await printMetrics(server);
      const decoded = (await inboundVideo(constrained)).framesDecoded - framesBefore;
      console.log(`settled: ${decoded} frames decoded in 3 s`);
      assert.ok(decoded > 10, `video keeps playing on the low layer (${decoded} frames in 3 s)`);

      // Lift the limit: the viewer's packets are unclassified again.
      sh('tc', 'filter', 'del', 'dev', 'lo', 'parent', '1:', 'prio', '1');
      const lifted = Date.now();
      const recovered = await waitFor('constrained viewer back on the top layer', async () => {
        const v = await viewers(server);
        const rates = (await (await fetch(`${server.base}/api/broadcasts/live`)).json()).layers.map((l) => l.bitrate_kbps);
        console.log(`${Date.now() - lifted} ms after lifting: constrained ${show(v[0])}, free ${show(v[1])}, layers ${rates} kbit/s`);
        freeWidths.push(v[1].width);
        return v[0].width >= TOP && Date.now() - lifted;
      }, 12_000, 250);
      console.log(`Chromium viewer back on the top layer ${recovered} ms after lifting the limit`);
      assert.ok(recovered <= 10_000, `recovered within 10 s (took ${recovered} ms)`);
      assert.ok(freeWidths.every((w) => w >= TOP), `the free viewer stayed on top: ${freeWidths}`);
    } finally {
      await printMetrics(server).catch(() => {});
      if (process.env.RELAYCAST_TEST_SERVER_LOG) console.log(server.log());
      // The namespace's UDP counters: receive-buffer overflows here mean a
      // process (server or browser) fell behind, not the shaped link.
      console.log(readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:')).join('\n'));
      await browser?.close().catch(() => {});
      await publisher?.stop().catch(() => {});
      await server.stop();
    }
  });
}
