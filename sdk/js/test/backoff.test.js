import { test } from 'node:test';
import assert from 'node:assert/strict';

import { backoffDelayMs, BACKOFF_BASE_MS, BACKOFF_CAP_MS } from '../index.js';

test('full jitter under min(20 s, 500 ms · 2^n)', () => {
  assert.equal(BACKOFF_BASE_MS, 500);
  assert.equal(BACKOFF_CAP_MS, 20_000);
  const max = (n) => Math.round(backoffDelayMs(n, { random: () => 0.999999 }));
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 10, 1000].map(max), [500, 1000, 2000, 4000, 8000, 16000, 20000, 20000, 20000]);
  assert.equal(backoffDelayMs(4, { random: () => 0 }), 0);
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelayMs(2);
    assert.ok(d >= 0 && d < 2000, `${d}`);
  }
  assert.equal(Math.round(backoffDelayMs(3, { baseMs: 100, capMs: 300, random: () => 0.999999 })), 300);
});

test('the delays are spread, not in step', () => {
  const seen = new Set();
  for (let i = 0; i < 200; i++) seen.add(Math.floor(backoffDelayMs(3) / 100));
  assert.ok(seen.size > 20, `only ${seen.size} distinct 100 ms buckets`);
});
