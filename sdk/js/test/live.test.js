// The client (driver + machine) against the real release binary, over
// loopback, with Node's own WebSocket: hello, slices acked (buffer_ms
// included), a resume after the socket is cut, busy for a second client,
// and disconnect() releasing the seat. SEATKEEPER_BIN names the binary; with
// CI=true a missing binary fails instead of skipping.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { SeatkeeperClient } from '../index.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(HERE, '../../..', process.env.SEATKEEPER_BIN || 'target/release/seatkeeper');
const WS = globalThis.WebSocket;
const missing = [];
if (!fs.existsSync(BIN)) missing.push(`server binary ${BIN}`);
if (typeof WS !== 'function') missing.push('a global WebSocket (Node ≥ 22, or node --experimental-websocket)');
const skip = missing.length && process.env.CI !== 'true' ? `missing: ${missing.join('; ')}` : false;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(fn, what, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

let server;
let relay;
after(() => {
  if (server) server.kill('SIGTERM');
  if (relay) relay.close();
});

/** A TCP relay to the server whose `cut()` resets every relayed connection (a network blip). */
function startRelay(port) {
  const pairs = new Set();
  const srv = net.createServer((down) => {
    const up = net.connect(port, '127.0.0.1');
    const pair = { down, up };
    pairs.add(pair);
    const done = () => {
      pairs.delete(pair);
      down.destroy();
      up.destroy();
    };
    for (const s of [down, up]) s.on('error', done).on('close', done);
    down.pipe(up);
    up.pipe(down);
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () =>
      resolve({
        url: `ws://127.0.0.1:${srv.address().port}/ws`,
        cut() {
          for (const { down, up } of [...pairs]) {
            down.resetAndDestroy();
            up.resetAndDestroy();
          }
          pairs.clear();
        },
        close() {
          for (const { down, up } of pairs) {
            down.destroy();
            up.destroy();
          }
          srv.close();
        },
      }),
    ),
  );
}

async function start() {
  if (missing.length) throw new Error(`cannot run: ${missing.join('; ')}`);
  const port = await freePort();
  server = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--resume-window-s', '5'], { stdio: 'ignore' });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(() => fetch(`${base}/healthz`).then((r) => r.ok, () => false), '/healthz');
  return { base, port, url: `ws://127.0.0.1:${port}/ws`, sessions: () => fetch(`${base}/sessions`).then((r) => r.json()) };
}

test('streams, acks, resumes after a cut, answers busy, releases on disconnect', { skip, timeout: 60_000 }, async () => {
  const srv = await start();
  relay = await startRelay(srv.port);
  const client = new SeatkeeperClient({ url: relay.url, WebSocket: WS, clientId: 'node-test', listenOnline: false });
  const states = [];
  client.on('state', ({ state }) => states.push(state));
  let slices = 0;
  client.on('slice', () => slices++);
  client.reportBuffer(120);
  const ready = new Promise((r) => client.once('ready', r));
  client.connect();
  const first = await ready;
  assert.equal(first.resumed, false);
  await waitFor(() => slices >= 5, 'five slices');
  const s1 = await waitFor(async () => (await srv.sessions()).sessions.find((s) => s.id === first.session_id && s.last_ack_seq >= 3), 'acks in /sessions');
  assert.equal(s1.client_id, 'node-test');

  // A second client finds the one seat taken.
  const other = new SeatkeeperClient({ url: srv.url, WebSocket: WS, listenOnline: false, busyJitter: 0 });
  const busy = new Promise((r) => other.once('busy', r));
  other.connect();
  const b = await busy;
  assert.ok(b.retryAfterS > 0);
  other.disconnect();
  assert.equal(other.state, 'ended');

  // Reset the TCP connection (no close handshake): the client resumes.
  const resumed = new Promise((r) => client.once('ready', r));
  relay.cut();
  const again = await resumed;
  assert.equal(again.session_id, first.session_id);
  assert.equal(again.recovered, true);
  const before = client.snapshot().lastSeq;
  await waitFor(() => client.snapshot().lastSeq > before + 3, 'slices after the resume');
  assert.ok(states.includes('reconnecting'));

  client.disconnect();
  assert.equal(client.state, 'ended');
  await waitFor(async () => (await srv.sessions()).lockHeld === false, 'the seat released after disconnect()');
});
