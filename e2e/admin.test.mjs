// The operator's page (/admin on the admin listener) in Debian's Chromium:
// a live session's socket evidence as the sampler sees it, and a frozen
// client's reap with its evidence, as a person watching a stall would see
// them. UPDATE_SCREENSHOT=1 rewrites docs/admin.png.
//
// Run: cd e2e && npm test   (SEATKEEPER_BIN overrides the server binary)

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';

import { REPO_DIR, freePort, launchBrowser, missingPrerequisites, startServer, waitFor } from './lib/harness.mjs';

const missing = missingPrerequisites();
const skip = missing.length && process.env.CI !== 'true' ? `missing: ${missing.join('; ')}` : false;

/** A masked client text frame (RFC 6455 §5.2), payload under 64 KiB. */
function textFrame(text) {
  const payload = Buffer.from(text);
  const mask = crypto.randomBytes(4);
  const head = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([head, mask, body]);
}

/**
 * A raw WebSocket client that says hello and then reads nothing at all:
 * a frozen tab. Returns the socket (destroy it to end).
 */
function frozenClient(port, clientId) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      const key = crypto.randomBytes(16).toString('base64');
      s.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    s.once('data', (head) => {
      if (!head.toString('latin1').startsWith('HTTP/1.1 101')) return reject(new Error(`no upgrade: ${head}`));
      s.write(textFrame(JSON.stringify({ type: 'hello', client_id: clientId })));
      s.pause(); // never read again
      resolve(s);
    });
    s.on('error', () => {});
  });
}

describe('the operator page', { skip }, () => {
  test('shows live socket evidence, then a frozen client reaped with its evidence', async () => {
    const adminPort = await freePort();
    const server = await startServer(['--seats', '3', '--admin-listen', `127.0.0.1:${adminPort}`]);
    const browser = await launchBrowser();
    let frozen;
    let second;
    try {
      // The page is on the admin listener only.
      assert.equal((await fetch(`${server.base}/admin`)).status, 404);
      const page = await browser.context.newPage();
      // A live session from a second page: reads and acks every slice.
      const live = await browser.context.newPage();
      await live.goto(`${server.base}/healthz`);
      await live.evaluate((url) => {
        const ws = new WebSocket(url);
        ws.binaryType = 'arraybuffer';
        ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', client_id: 'live-tab' }));
        ws.onmessage = (m) => {
          if (typeof m.data === 'string') return;
          const seq = Number(new DataView(m.data).getBigUint64(4, true));
          ws.send(JSON.stringify({ type: 'ack', seq }));
        };
        window.liveWs = ws;
      }, `ws://127.0.0.1:${server.port}/ws`);
      await page.setViewportSize({ width: 1640, height: 480 });
      await page.goto(`http://127.0.0.1:${adminPort}/admin`);
      await waitFor(async () => (await page.locator('#sessions tr').count()) === 1, { timeoutMs: 10_000, what: 'the live session on the page' });
      const rowText = await waitFor(
        async () => {
          const t = await page.locator('#sessions tr').first().innerText();
          return /healthy|draining/.test(t) && t;
        },
        { timeoutMs: 5000, what: 'the sampler verdict on the page' },
      );
      assert.match(rowText, /live-tab/);
      assert.match(rowText, /ESTABLISHED/);

      frozen = await frozenClient(server.port, 'frozen-tab');
      await waitFor(async () => (await page.locator('#sessions tr').count()) === 2, { timeoutMs: 10_000, what: 'the frozen session on the page' });
      // The stall clock runs on the page, then the reap lands in its list.
      await waitFor(async () => /frozen-tab[\s\S]*send_stall/.test(await page.locator('#sessions').innerText()), {
        timeoutMs: 10_000,
        what: 'the send-stall clock counting for the frozen client',
      });
      await waitFor(async () => (await page.locator('#reaps tr').count()) >= 1, { timeoutMs: 20_000, what: 'the reap on the page' });
      const reap = await page.locator('#reaps tr').first().innerText();
      assert.match(reap, /frozen-tab|send_stall|unresponsive/);
      assert.match(reap, /send_stall|unresponsive/);
      // The live session is untouched.
      await waitFor(async () => (await page.locator('#sessions tr').count()) === 1, { timeoutMs: 5000, what: 'only the live session left' });
      assert.match(await page.locator('#sessions tr').first().innerText(), /live-tab/);
      if (process.env.UPDATE_SCREENSHOT === '1') {
        // One more frozen tab, caught mid-stall, beside the reap of the first.
        second = await frozenClient(server.port, 'frozen-tab-2');
        await waitFor(async () => /frozen-tab-2[\s\S]*send_stall/.test(await page.locator('#sessions').innerText()), { timeoutMs: 10_000, what: 'the second stall' });
        await page.waitForTimeout(1200);
        await page.screenshot({ path: path.join(REPO_DIR, 'docs', 'admin.png') });
      }
    } finally {
      frozen?.destroy();
      second?.destroy();
      await browser.close();
      await server.stop();
    }
  });
});
