// Knobs of every kind (number with unit and label, a number without kind,
// choice, toggle), announced by an external engine, drawn by the page, and
// sent back to the engine as params when moved.

import { describe, test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { OUT_DIR, launchBrowser, missingPrerequisites, startServer, waitFor } from './lib/harness.mjs';
import { startEngine } from './lib/engine.mjs';

const missing = missingPrerequisites();
const skip = missing.length && process.env.CI !== 'true' ? `missing: ${missing.join('; ')}` : false;

describe('knobs of every kind', { skip }, () => {
  let server;
  let browser;
  let engine;
  let dir;

  afterEach(async (t) => {
    if (t && t.passed === false && server) console.error(`--- server output (tail) ---\n${server.output().slice(-4000)}`);
    if (browser) await browser.close().catch(() => {});
    if (engine) engine.close();
    if (server) await server.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    browser = engine = server = dir = null;
  });

  test('the page draws number, choice and toggle knobs and sends their changes', { timeout: 60_000 }, async (t) => {
    if (missing.length) throw new Error(`missing: ${missing.join('; ')}`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seatkeeper-e2e-engine-'));
    const sock = path.join(dir, 'engine.sock');
    server = await startServer(['--engine', `unix:${sock}`]);
    engine = startEngine(sock);
    await waitFor(async () => (await fetch(`${server.base}/readyz`)).status === 200, { timeoutMs: 10_000, what: 'the engine to connect (/readyz 200)' });

    browser = await launchBrowser();
    const page = browser.context.pages()[0] || (await browser.context.newPage());
    await page.goto(`${server.base}/`, { timeout: 15_000 });
    await waitFor(async () => (await page.evaluate(() => window.seatkeeper.state)) === 'streaming', { timeoutMs: 15_000, what: 'the page to stream' });

    const kinds = await page.locator('#knobs [data-name]').evaluateAll((els) => els.map((e) => [e.dataset.name, e.dataset.kind, e.tagName.toLowerCase(), e.type]));
    t.diagnostic(JSON.stringify(kinds));
    assert.deepEqual(kinds, [
      ['pitch', 'number', 'input', 'range'],
      ['gain', 'number', 'input', 'range'],
      ['voice', 'choice', 'select', 'select-one'],
      ['loop', 'toggle', 'input', 'checkbox'],
    ]);
    assert.equal(await page.locator('label[for="knob-pitch"]').textContent(), 'Pitch');
    assert.equal(await page.locator('output[for="knob-pitch"]').textContent(), '220 Hz');
    assert.equal(await page.locator('#knob-gain').inputValue(), '0.3');
    assert.deepEqual(await page.locator('#knob-voice option').allTextContents(), ['sine', 'Square wave']);
    assert.equal(await page.locator('#knob-loop').isChecked(), true);

    await page.locator('#knob-pitch').fill('440');
    await page.locator('#knob-voice').selectOption('square');
    await page.locator('#knob-loop').uncheck();
    const got = await waitFor(
      () => {
        const all = Object.assign({}, ...engine.params);
        return all.pitch === 440 && all.voice === 'square' && all.loop === false ? all : null;
      },
      { timeoutMs: 5000, what: 'the engine to receive pitch 440, voice square, loop false' },
    );
    t.diagnostic(`engine got ${JSON.stringify(got)}`);
    assert.equal(await page.locator('output[for="knob-loop"]').textContent(), 'off');
    fs.mkdirSync(OUT_DIR, { recursive: true });
    await page.locator('section.knobs').screenshot({ path: path.join(OUT_DIR, 'knobs.png'), timeout: 10_000 });
  });
});
