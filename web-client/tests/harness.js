// Shared harness for the browser tests: start a relaycast server on free
// loopback ports, launch Debian's Chromium with fake media devices, and read
// WebRTC stats from pages. Every wait is bounded.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));

// Data dirs (with their recordings) and browser profiles this test file
// made go when its process exits, so runs do not fill /tmp; tests may
// still read a stopped server's files until then. RELAYCAST_TEST_KEEP=1
// keeps them for a look.
const scratch = [];
function scratchDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}
process.on('exit', () => {
  if (process.env.RELAYCAST_TEST_KEEP === '1') return;
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});
export const repo = join(here, '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR || join(repo, 'target');
export const serverBinary = process.env.RELAYCAST_BIN || join(targetDir, 'debug', 'relaycast');
export const screenshotDir = join(targetDir, 'screenshots');
mkdirSync(screenshotDir, { recursive: true });

export const STREAM_KEY = 'browser-test-key-1234';

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/// Starts a server with the stream `live` (key STREAM_KEY) and any
/// `extraStreams` ({ name: key }).
export async function startServer({ extraStreams = {}, extraArgs = [], dataDir: reuseDir = null, env = {} } = {}) {
  const httpPort = await freePort();
  const udpPort = await freePort();
  const dataDir = reuseDir || scratchDir('relaycast-browser-');
  const keys = Object.entries({ live: STREAM_KEY, ...extraStreams }).flatMap(([name, key]) => ['--stream-key', `${name}=${key}`]);
  const proc = spawn(serverBinary, [
    '--http-addr', `127.0.0.1:${httpPort}`,
    '--udp-port', String(udpPort),
    '--public-ip', '127.0.0.1',
    '--data-dir', dataDir,
    ...keys,
    ...extraArgs,
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn', ...env } });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const base = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const res = await fetch(`${base}/readyz`);
      if (res.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`server did not start:\n${log}`);
    await sleep(100);
  }
  let modToken = null;
  return {
    base,
    dataDir,
    /// The first media worker's port (UDP, and ICE-TCP on the same number).
    udpPort,
    log: () => log,
    /// A token made by `relaycast token create` against this server's data dir.
    token: (role, name) => createToken(dataDir, role, name),
    /// Headers for moderator-only endpoints (one moderator token per server).
    modHeaders: async () => ({ Authorization: `Bearer ${modToken ||= await createToken(dataDir, 'moderator', 'test-mod')}` }),
    /// Stops the server with `signal`; resolves to how it exited and how
    /// long that took (SIGKILL after `graceMs`).
    stop: async ({ signal = 'SIGINT', graceMs = 5000 } = {}) => {
      const began = Date.now();
      if (proc.exitCode !== null || proc.signalCode !== null) return { code: proc.exitCode, signal: proc.signalCode, ms: 0 };
      const exited = new Promise((r) => proc.once('exit', (code, sig) => r({ code, signal: sig, ms: Date.now() - began })));
      proc.kill(signal);
      const result = await Promise.race([exited, sleep(graceMs).then(() => null)]);
      if (result) return result;
      proc.kill('SIGKILL');
      return { ...(await exited), killed: true };
    },
  };
}

/// Runs `relaycast token create --role <role> --name <name> --data-dir <dir>`
/// and returns the token (its last line of output).
export async function createToken(dataDir, role, name) {
  const proc = spawn(serverBinary, ['token', 'create', '--role', role, '--name', name, '--data-dir', dataDir],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { err += d; });
  const code = await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(15_000).then(() => 'timeout')]);
  if (code !== 0) {
    proc.kill('SIGKILL');
    throw new Error(`relaycast token create failed (${code}): ${err}${out}`);
  }
  const token = out.trim().split('\n').pop().trim();
  if (!token) throw new Error(`relaycast token create printed no token: ${err}`);
  return token;
}

/// `extraArgs`: more Chromium switches (e.g. a WebRTC IP handling policy).
export async function launchBrowser({ extraArgs = [] } = {}) {
  const userDataDir = scratchDir('relaycast-chromium-');
  // A persistent context is how Playwright takes a fresh --user-data-dir.
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
      ...extraArgs,
    ],
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// Polls `fn` until it returns a truthy value or `ms` pass.
export async function waitFor(what, fn, ms = 10_000, every = 100) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

/// Inbound video stats of the page's viewer PeerConnection.
export async function inboundVideo(page) {
  return page.evaluate(async () => {
    const pc = window.relaycastViewer;
    if (!pc) return null;
    let out = null;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out = { framesDecoded: s.framesDecoded || 0, frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0, packetsLost: s.packetsLost || 0 };
      }
    });
    return out;
  });
}

/// Opens /publish/live, starts publishing (3-layer simulcast) with the given
/// codec and waits until the publisher is connected.
export async function startPublishing(browser, base, codec = 'auto') {
  const page = await browser.newPage();
  await page.goto(`${base}/publish/live`);
  await page.selectOption('#codec', codec);
  await page.fill('#key', STREAM_KEY);
  await page.click('#start');
  await waitFor('publisher connected', () => page.evaluate(() => window.relaycastPublisher?.connectionState === 'connected'), 15_000);
  return page;
}

/// Waits until the broadcast is live with `n` measured layers (Chromium adds
/// layers as bandwidth feedback allows).
export async function waitForLayers(base, n = 3, ms = 25_000) {
  await waitFor(`${n} layers measured`, async () => {
    const b = await (await fetch(`${base}/api/broadcasts/live`)).json();
    return b.live && b.layers.length >= n;
  }, ms, 250);
}

const IN_NETNS = 'RELAYCAST_TEST_IN_NETNS';

/// Whether this test file runs inside the private network namespace that
/// `rerunInNetns` made (where `tc` may shape `lo` without touching the
/// machine's own loopback).
export const insideNetns = () => process.env[IN_NETNS] === '1';

/// Outside the namespace: one test that re-runs `file` (a test file's
/// `import.meta.url`) under `unshare -n` and passes when it passes there.
export function rerunInNetns(name, fileUrl) {
  test(name, () => {
    // The nested run is a test run of its own, not a child of this one.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const run = spawnSync('unshare', ['-n', '--', process.execPath, '--test', '--test-timeout=150000', fileURLToPath(fileUrl)], {
      env: { ...env, [IN_NETNS]: '1' },
      stdio: 'inherit',
      timeout: 170_000,
    });
    assert.equal(run.status, 0, 'the test inside the namespace passed');
  });
}

/// Runs a command, its output inherited (for `ip` and `tc` in a namespace).
export const sh = (...args) => execFileSync(args[0], args.slice(1), { stdio: 'inherit' });
