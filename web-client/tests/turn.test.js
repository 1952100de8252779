// A viewer that can reach the server only through TURN plays: coturn
// (Debian's package) runs on 127.0.0.5 in a private network namespace
// (`unshare -n`) with the TURN REST shared secret, the server issues
// time-limited credentials from `--turn-secret` (`GET /api/ice-servers`,
// and `Link` headers for WHIP/WHEP clients), and nft drops every new UDP
// and TCP flow to the media port that does not come from the TURN relay.
// The publisher connects before the filter goes up (its flow is
// established, so it passes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startServer, launchBrowser, waitFor, inboundVideo, waitForLayers, STREAM_KEY, insideNetns, rerunInNetns, sh, sleep } from './harness.js';
import { ObsPublisher } from './obs-publisher.js';

const TURN_IP = '127.0.0.5';
const SECRET = 'turn-test-shared-secret';

/// The selected pair's local candidate type and protocol.
async function pairKind(page) {
  return page.evaluate(async () => {
    const stats = await window.relaycastViewer.getStats();
    const byId = new Map();
    stats.forEach((s) => byId.set(s.id, s));
    let out = null;
    stats.forEach((s) => {
      if (s.type !== 'transport' || !s.selectedCandidatePairId) return;
      const pair = byId.get(s.selectedCandidatePairId);
      const local = byId.get(pair.localCandidateId);
      out = { type: local?.candidateType, protocol: local?.protocol, relayProtocol: local?.relayProtocol };
    });
    return out;
  });
}

if (!insideNetns()) {
  rerunInNetns('a viewer reaching the server only through TURN plays (in a network namespace)', import.meta.url);
} else {
  test('inside the namespace: a viewer behind coturn plays, with credentials from --turn-secret', async () => {
    sh('ip', 'link', 'set', 'lo', 'up');
    const coturn = spawn('turnserver', [
      '-n', '--listening-ip', TURN_IP, '--relay-ip', TURN_IP, '--listening-port', '3478',
      '--use-auth-secret', '--static-auth-secret', SECRET, '--realm', 'relaycast.test',
      '--allow-loopback-peers', '--no-cli', '--no-tls', '--no-dtls',
      '--min-port', '49152', '--max-port', '49300', '--log-file', 'stdout', '--simple-log',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let coturnLog = '';
    coturn.stdout.on('data', (d) => { coturnLog += d; });
    coturn.stderr.on('data', (d) => { coturnLog += d; });
    const server = await startServer({
      extraArgs: ['--workers', '1', '--ice-server', `turn:${TURN_IP}:3478?transport=udp`, '--turn-secret', SECRET],
    });
    let browser;
    let publisher;
    try {
      await waitFor('coturn listening', () => coturnLog.includes('listener opened on') || coturnLog.includes('Total General servers'), 10_000, 100)
        .catch(() => { throw new Error(`coturn did not start:\n${coturnLog}`); });
      // The credentials the pages use.
      const offered = await (await fetch(`${server.base}/api/ice-servers`)).json();
      const turn = offered.ice_servers.find((s) => s.urls.startsWith('turn:'));
      assert.ok(turn?.username && turn?.credential, `TURN credentials offered: ${JSON.stringify(offered)}`);
      const expiry = Number(turn.username.split(':')[0]);
      assert.ok(expiry > Date.now() / 1000 + 3600, 'they are good for hours, not forever');

      // Connection tracking starts with the first rule that uses it: from
      // here on flows are tracked, so the publisher's is "established" when
      // the filter below goes up.
      sh('nft', 'add', 'table', 'inet', 'turntest');
      sh('nft', 'add', 'chain', 'inet', 'turntest', 'input', '{ type filter hook input priority 0 ; }');
      sh('nft', 'add', 'rule', 'inet', 'turntest', 'input', 'ct', 'state', 'established,related', 'accept');
      publisher = new ObsPublisher({ base: server.base, key: STREAM_KEY, layers: [{ width: 640, height: 360, kbps: 800 }], gop: 30, cbr: true });
      assert.equal((await publisher.start()).status, 201, 'the publisher is live');
      await waitForLayers(server.base, 1);

      // From now on only the relay reaches the media port.
      const port = server.udpPort;
      for (const proto of ['udp', 'tcp']) {
        sh('nft', 'add', 'rule', 'inet', 'turntest', 'input', 'ip', 'saddr', '!=', TURN_IP, proto, 'dport', String(port), 'ct', 'state', 'new', 'drop');
      }

      browser = await launchBrowser();
      const page = await browser.newPage();
      const opened = Date.now();
      await page.goto(`${server.base}/watch/live`);
      await waitFor('first decoded frame through TURN', async () => (await inboundVideo(page))?.framesDecoded > 0, 20_000, 20);
      const firstFrame = Date.now() - opened;
      const kind = await pairKind(page);
      console.log(`TURN: first frame ${firstFrame} ms after opening the page; local candidate ${JSON.stringify(kind)}`);
      assert.equal(kind?.type, 'relay', `the selected pair goes through the relay: ${JSON.stringify(kind)}`);
      await sleep(2000);
      const before = await inboundVideo(page);
      await sleep(3000);
      const after = await inboundVideo(page);
      const fps = (after.framesDecoded - before.framesDecoded) / 3;
      if (process.env.RELAYCAST_TEST_SERVER_LOG) console.log((await (await fetch(`${server.base}/metrics`)).text()).split('\n').filter((l) => /^relaycast_(drops_total|datagrams|packets)/.test(l) && !/ 0$/.test(l)).join('; '));
      console.log(`TURN: ${fps.toFixed(1)} frames/s, ${after.packetsLost - before.packetsLost} packets lost, ${after.frameWidth}×${after.frameHeight}`);
      assert.ok(fps > 15, `frames keep decoding through TURN (${fps.toFixed(1)}/s)`);
    } finally {
      await browser?.close().catch(() => {});
      await publisher?.stop().catch(() => {});
      await server.stop();
      coturn.kill('SIGTERM');
      if (process.env.RELAYCAST_TEST_SERVER_LOG) console.log(coturnLog.split('\n').slice(-40).join('\n'));
    }
  });
}
