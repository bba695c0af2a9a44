// The web client's pure parts (f16 decoding, the slice header, the backoff),
// loaded straight from web/app.js. No browser, no server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { REPO_DIR } from './lib/harness.mjs';

const src = fs.readFileSync(path.join(REPO_DIR, 'web', 'app.js'), 'utf8');
const app = await import(`data:text/javascript;base64,${Buffer.from(src).toString('base64')}`);

/** Reference float → half (round to nearest even), for round-trip checks. */
function toHalf(f) {
  const buf = new DataView(new ArrayBuffer(4));
  buf.setFloat32(0, f);
  const x = buf.getUint32(0);
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

test('float16ToFloat32: known values', () => {
  const f = app.float16ToFloat32;
  assert.equal(f(0x0000), 0);
  assert.ok(Object.is(f(0x8000), -0));
  assert.equal(f(0x3c00), 1);
  assert.equal(f(0xbc00), -1);
  assert.equal(f(0x3800), 0.5);
  assert.equal(f(0x4000), 2);
  assert.equal(f(0x7bff), 65504); // largest normal
  assert.equal(f(0x0400), 2 ** -14); // smallest normal
  assert.equal(f(0x0001), 2 ** -24); // smallest subnormal
  assert.equal(f(0x03ff), 1023 * 2 ** -24); // largest subnormal
  assert.equal(f(0x3555), 0.333251953125);
  assert.equal(f(0x7c00), Infinity);
  assert.equal(f(0xfc00), -Infinity);
  assert.ok(Number.isNaN(f(0x7e00)));
});

test('float16ToFloat32: every finite half round-trips through a reference encoder', () => {
  for (let h = 0; h < 65536; h++) {
    const v = app.float16ToFloat32(h);
    if (!Number.isFinite(v)) continue;
    assert.equal(toHalf(v), h, `half 0x${h.toString(16)} → ${v}`);
    assert.equal(app.F16_AUDIO[h], Math.fround(v));
  }
});

test('F16_AUDIO maps non-finite halves to silence', () => {
  assert.equal(app.F16_AUDIO[0x7c00], 0);
  assert.equal(app.F16_AUDIO[0xfc00], 0);
  assert.equal(app.F16_AUDIO[0x7e00], 0);
});

function slice({ version = 1, flags = 3, kind = 1, seq = 1n, ts = 0n, samples = [] } = {}) {
  const buf = new ArrayBuffer(20 + samples.length * 2);
  const v = new DataView(buf);
  v.setUint8(0, version);
  v.setUint8(1, flags);
  v.setUint16(2, kind, true);
  v.setBigUint64(4, BigInt(seq), true);
  v.setBigUint64(12, BigInt(ts), true);
  samples.forEach((s, i) => v.setUint16(20 + i * 2, toHalf(s), true));
  return buf;
}

test('parseSliceHeader reads the 20-byte little-endian header', () => {
  const h = app.parseSliceHeader(slice({ flags: 2, kind: 0x0102, seq: 0x0102030405n, ts: 123_456_789n, samples: [0, 0] }));
  assert.equal(h.version, 1);
  assert.equal(h.droppable, false);
  assert.equal(h.keyframe, true);
  assert.equal(h.kind, 0x0102);
  assert.equal(h.seq, 0x0102030405);
  assert.equal(h.seqBig, 0x0102030405n);
  assert.equal(h.timestampUs, 123_456_789);
  assert.equal(h.payloadBytes, 4);
  const d = app.parseSliceHeader(slice({ flags: 1 }));
  assert.equal(d.droppable, true);
  assert.equal(d.keyframe, false);
  assert.equal(app.parseSliceHeader(new ArrayBuffer(19)), null);
  // Large sequence numbers stay exact up to 2^53.
  assert.equal(app.parseSliceHeader(slice({ seq: 2n ** 53n })).seq, 2 ** 53);
});

test('decodePcmF16 decodes interleaved samples after the header', () => {
  const samples = [0, 0.5, -0.5, 1, -1, 0.25, 0.125, -0.0625];
  const pcm = app.decodePcmF16(slice({ samples }));
  assert.deepEqual(Array.from(pcm), samples);
  // An odd offset takes the DataView path and agrees.
  const buf = slice({ samples });
  const shifted = new ArrayBuffer(buf.byteLength + 1);
  new Uint8Array(shifted).set(new Uint8Array(buf), 1);
  assert.deepEqual(Array.from(app.decodePcmF16(shifted, 21)), samples);
});

test('backoffDelayMs: full jitter under min(cap, base·2^n)', () => {
  const max = (n) => app.backoffDelayMs(n, { random: () => 0.999999 });
  assert.ok(Math.abs(max(0) - 500) < 1);
  assert.ok(Math.abs(max(1) - 1000) < 1);
  assert.ok(Math.abs(max(2) - 2000) < 1);
  assert.ok(Math.abs(max(3) - 4000) < 1);
  assert.ok(Math.abs(max(10) - 4000) < 1);
  assert.equal(app.backoffDelayMs(4, { random: () => 0 }), 0);
  for (let i = 0; i < 1000; i++) {
    const d = app.backoffDelayMs(2);
    assert.ok(d >= 0 && d < 2000);
  }
});

test('no reconnect after 1000, 1008, 1013, 4002', () => {
  assert.deepEqual([...app.NO_RECONNECT_CODES].sort(), [1000, 1008, 1013, 4002]);
});
