// Graceful shutdown with real clients: an OBS-faithful publisher (the
// WebRTC library OBS uses) and a Chromium viewer are live when the server
// gets SIGTERM. The server says goodbye to every peer (DTLS close_notify
// and RTCP BYE), so the publisher's PeerConnection leaves `connected` at
// once (what makes OBS take its reconnect path, instead of waiting ~30 s
// for ICE consent to expire) and the viewer's DTLS transport closes and its
// tracks end; the server exits 0 within 10 s with the SQLite WAL
// checkpointed into the database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launchBrowser, waitFor, inboundVideo, sleep, STREAM_KEY } from './harness.js';
import { ObsPublisher } from './obs-publisher.js';

test('SIGTERM closes every peer at once, checkpoints the database and exits within 10 s', async () => {
  const server = await startServer();
  let browser;
  let pub;
  try {
    pub = new ObsPublisher({ base: server.base, key: STREAM_KEY, layers: 1 });
    await pub.start();
    browser = await launchBrowser();
    const viewer = await browser.newPage();
    await viewer.goto(`${server.base}/watch/live`);
    await waitFor('viewer playing', async () => (await inboundVideo(viewer))?.framesDecoded > 0, 20_000, 50);

    // Something in the WAL to checkpoint.
    const guest = await (await fetch(`${server.base}/api/guest`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"Ada"}' })).json();
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${server.base}/api/broadcasts/live/comments`, {
        method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${guest.token}` }, body: JSON.stringify({ comment: `before shutdown ${i}` }),
      });
      assert.equal(res.status, 201);
    }
    const wal = join(server.dataDir, 'relaycast.db-wal');
    assert.ok(existsSync(wal) && statSync(wal).size > 0, 'the WAL has pages before shutdown');

    await viewer.evaluate(() => {
      const pc = window.relaycastViewer;
      window.goodbye = { t0: performance.now(), events: [] };
      const dtls = pc.getReceivers().find((r) => r.transport).transport;
      const mark = (what) => window.goodbye.events.push([what, Math.round(performance.now() - window.goodbye.t0)]);
      dtls.addEventListener('statechange', () => mark(`dtls ${dtls.state}`));
      for (const r of pc.getReceivers()) r.track.addEventListener('ended', () => mark(`${r.track.kind} ended`));
    });
    const statesBefore = pub.states.length;
    const sent = Date.now();
    const exit = await server.stop({ signal: 'SIGTERM', graceMs: 10_000 });
    assert.ok(!exit.killed, `the server exited by itself (${JSON.stringify(exit)})`);
    assert.equal(exit.code, 0, JSON.stringify(exit));
    assert.ok(exit.ms < 10_000, `exited in ${exit.ms} ms`);

    // The publisher leaves `connected` at once: OBS's reconnect path.
    const left = await waitFor('the publisher PeerConnection leaves connected', () => pub.states.slice(statesBefore)
      .find((s) => ['disconnected', 'failed', 'closed'].includes(s.state)), 3_000, 20);
    const publisherMs = left.at - sent;
    assert.ok(publisherMs < 2_000, `publisher saw ${left.state} after ${publisherMs} ms`);

    // The viewer's DTLS transport is closed by the server's close_notify,
    // and the BYE ends its tracks.
    await sleep(1_500);
    const { events } = await viewer.evaluate(() => window.goodbye);
    const dtlsClosed = events.find(([e]) => e === 'dtls closed');
    assert.ok(dtlsClosed && dtlsClosed[1] < 2_000, `viewer events: ${JSON.stringify(events)}`);
    assert.ok(events.some(([e]) => e === 'video ended'), `viewer events: ${JSON.stringify(events)}`);

    // Checkpointed: the WAL is empty (or gone) and the comments are in the database.
    assert.ok(!existsSync(wal) || statSync(wal).size === 0, `WAL left with ${existsSync(wal) ? statSync(wal).size : 0} bytes`);
    console.log(`SIGTERM: server exited 0 in ${exit.ms} ms; publisher ${left.state} after ${publisherMs} ms; viewer ${JSON.stringify(events)}`);
  } finally {
    await pub?.stop().catch(() => {});
    await browser?.close().catch(() => {});
    await server.stop();
  }
});
