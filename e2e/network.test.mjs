// Live clients on real-world links keep their seats: a page on a throttled
// link (DevTools network emulation at a few hundred kbit/s) and a page in a
// background tab (hidden, its timers throttled), each for a minute, with the
// server at its production pong rule (--pong-timeout-s 20).
//
// Run: cd e2e && npm test   (E2E_HOLD_S shortens the minute when debugging)

import { describe, test, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import { launchBrowser, missingPrerequisites, sleep, startServer, waitFor } from './lib/harness.mjs';
import { launchRawChromium } from './lib/cdp.mjs';

const missing = missingPrerequisites();
const skip = missing.length && process.env.CI !== 'true' ? `missing: ${missing.join('; ')}` : false;
const HOLD_S = Number(process.env.E2E_HOLD_S) || 60;
const KBITS = 300;

/**
 * The throttled page runs with the default grace windows (30 s stall, ping
 * every 5 s): a link this slow leaves the kernel's receive window shut for
 * seconds at a time, which the suite's 3 s stall grace would — correctly —
 * call a stall.
 */
const DEFAULT_FLAGS = ['--pong-timeout-s', '20', '--resume-window-s', '5'];
/** The hidden page runs with the suite's short grace windows, pong rule as in production. */
const SHORT_FLAGS = ['--dead-client-stall-s', '3', '--watchdog-interval-ms', '250', '--ping-interval-s', '1', '--pong-timeout-s', '20', '--resume-window-s', '5'];

const pageHook = 'JSON.stringify(window.seatkeeper ? window.seatkeeper.snapshot() : null)';

/**
 * Samples the page and /sessions every 2 s for HOLD_S and asserts the page
 * kept its one session all along; returns the first and last samples.
 */
async function holdsSeat(t, server, snap, first) {
  const samples = [];
  const deadline = Date.now() + HOLD_S * 1000;
  const startSeq = first.server.last_ack_seq;
  while (Date.now() < deadline) {
    await sleep(2000);
    const h = await snap();
    const body = await server.sessions();
    const s = body.sessions.find((x) => x.id === first.page.sessionId);
    samples.push({ h, s });
    assert.equal(h.state, 'streaming', `page state at +${samples.length * 2} s`);
    assert.equal(h.sessionId, first.page.sessionId, 'the page kept its session');
    assert.equal(h.reconnects, first.page.reconnects, 'the page did not reconnect');
    assert.ok(s, `session ${first.page.sessionId} still in /sessions at +${samples.length * 2} s`);
    assert.equal(s.state, 'streaming');
  }
  const last = samples[samples.length - 1];
  assert.ok(last.s.last_ack_seq > startSeq, `last_ack_seq rose over the hold (${startSeq} → ${last.s.last_ack_seq})`);
  assert.equal(await server.reaps(), 0, 'seatkeeper_reaps_total stays 0');
  t.diagnostic(`held ${HOLD_S} s: last_ack_seq ${startSeq} → ${last.s.last_ack_seq}, rtt ${last.s.ping_rtt_us} µs`);
  return last;
}

describe('live clients on slow or hidden pages keep their seats', { skip, concurrency: 1 }, () => {
  let server;
  let browser;
  let raw;

  afterEach(async (t) => {
    if (t && t.passed === false) {
      console.error(`--- server output (tail) ---\n${server ? server.output().slice(-6000) : '(none)'}`);
      if (browser) console.error(`--- browser console (tail) ---\n${browser.logs.slice(-60).join('\n')}`);
    }
    if (browser) await browser.close().catch(() => {});
    if (raw) await raw.close().catch(() => {});
    if (server) await server.stop();
    browser = raw = server = null;
  });

  test(`a page throttled to ${KBITS} kbit/s keeps its seat for ${HOLD_S} s`, { timeout: (HOLD_S + 60) * 1000 }, async (t) => {
    if (missing.length) throw new Error(`missing: ${missing.join('; ')}`);
    server = await startServer([], { flags: DEFAULT_FLAGS });
    browser = await launchBrowser();
    const page = browser.context.pages()[0] || (await browser.context.newPage());
    await page.goto(`${server.base}/`, { timeout: 15_000 });
    const snap = () => page.evaluate(() => window.seatkeeper.snapshot());
    await waitFor(async () => (await snap()).state === 'streaming', { timeoutMs: 15_000, what: 'the page to stream' });

    const cdp = await browser.context.newCDPSession(page);
    await cdp.send('Network.enable');
    const bytesPerS = (KBITS * 1000) / 8;
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 40, downloadThroughput: bytesPerS, uploadThroughput: bytesPerS });
    await sleep(3000); // let the throttle settle before the clock starts
    const h0 = await snap();
    const s0 = (await server.sessions()).sessions.find((x) => x.id === h0.sessionId);
    assert.ok(s0, 'the page has a session');
    const last = await holdsSeat(t, server, snap, { page: h0, server: s0 });

    // The throttle is real: the demo engine's 1.5 Mbit/s did not get through.
    const perSec = (last.h.slicesReceived - h0.slicesReceived) / HOLD_S;
    t.diagnostic(`${perSec.toFixed(1)} slices/s through the throttle (10/s produced), ${last.s.slices_dropped} dropped by flow control`);
    assert.ok(perSec < 5, `throttled page received ${perSec.toFixed(1)} slices/s; the throttle should hold it near 2`);
    assert.ok(last.s.slices_dropped > s0.slices_dropped, 'flow control dropped slices the link could not carry');
  });

  test(`a hidden background tab keeps its seat for ${HOLD_S} s`, { timeout: (HOLD_S + 60) * 1000 }, async (t) => {
    if (missing.length) throw new Error(`missing: ${missing.join('; ')}`);
    server = await startServer([], { flags: SHORT_FLAGS });
    raw = await launchRawChromium(`${server.base}/`);
    const snap = async () => JSON.parse(await raw.page.evaluate(pageHook));
    await waitFor(async () => (await snap())?.state === 'streaming', { timeoutMs: 20_000, what: 'the page to stream' });

    await raw.openTab(`${server.base}/healthz`);
    await waitFor(async () => (await raw.page.evaluate('document.visibilityState')) === 'hidden', { timeoutMs: 5000, what: 'the first tab to be hidden' });
    const h0 = await snap();
    const s0 = (await server.sessions()).sessions.find((x) => x.id === h0.sessionId);
    assert.ok(s0, 'the page has a session');
    const last = await holdsSeat(t, server, snap, { page: h0, server: s0 });
    assert.equal(last.h.visibility, 'hidden', 'the page stayed hidden throughout');
    assert.equal((await server.sessions()).sessions.length, 1, 'one session, the hidden page’s');
  });
});
