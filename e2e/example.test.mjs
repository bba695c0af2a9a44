// examples/minimal.html, the twenty-line page the README shows, served by
// the binary: one click plays a session, acks reach the server, closing the
// tab frees the seat.

import { describe, test, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import { launchBrowser, missingPrerequisites, startServer, waitFor } from './lib/harness.mjs';

const missing = missingPrerequisites();
const skip = missing.length && process.env.CI !== 'true' ? `missing: ${missing.join('; ')}` : false;

describe('the minimal example page', { skip }, () => {
  let server;
  let browser;

  afterEach(async () => {
    if (browser) await browser.close().catch(() => {});
    if (server) await server.stop();
    browser = server = null;
  });

  test('plays a session from /examples/minimal.html and frees the seat on close', { timeout: 60_000 }, async (t) => {
    if (missing.length) throw new Error(`missing: ${missing.join('; ')}`);
    server = await startServer();
    browser = await launchBrowser();
    const page = browser.context.pages()[0] || (await browser.context.newPage());
    await page.goto(`${server.base}/examples/minimal.html`, { timeout: 15_000 });
    await page.click('#play');
    const status = await waitFor(
      async () => {
        const s = await page.locator('#status').textContent();
        return s.startsWith('playing demo') ? s : null;
      },
      { timeoutMs: 15_000, what: 'the example to say it plays' },
    );
    const id = status.match(/session (\S+)\)/)[1];
    const acked = await waitFor(
      async () => {
        const s = (await server.sessions()).sessions.find((x) => x.id === id);
        return s && s.last_ack_seq >= 10 ? s : null;
      },
      { timeoutMs: 10_000, what: `acks from the example page for ${id}` },
    );
    t.diagnostic(`${status}; last_ack_seq ${acked.last_ack_seq}`);
    await page.close();
    await waitFor(async () => (await server.sessions()).lockHeld === false, { timeoutMs: 5000, what: 'the seat freed after the tab closed' });
  });
});
