// Slice framing and f16 decoding: the bit-level decoder against a reference
// encoder for all 65536 halves, and the native Float16Array path (when this
// Node has one) against the bit-level one.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  float16ToFloat32,
  f16AudioTable,
  decodeF16,
  decodePcmF16,
  parseSliceHeader,
  encodeSlice,
  isPcmF16,
  HEADER_BYTES,
  HAS_FLOAT16ARRAY,
  normalizeKnobs,
} from '../index.js';

/** Reference float → half (round to nearest even). */
export function toHalf(f) {
  const buf = new DataView(new ArrayBuffer(4));
  buf.setFloat32(0, f);
  const x = buf.getUint32(0);
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
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

const halves = (samples) => {
  const u = new Uint16Array(samples.length);
  samples.forEach((s, i) => (u[i] = toHalf(s)));
  return u;
};

test('float16ToFloat32: known values', () => {
  const f = float16ToFloat32;
  assert.equal(f(0x0000), 0);
  assert.ok(Object.is(f(0x8000), -0));
  assert.equal(f(0x3c00), 1);
  assert.equal(f(0xbc00), -1);
  assert.equal(f(0x7bff), 65504);
  assert.equal(f(0x0400), 2 ** -14);
  assert.equal(f(0x0001), 2 ** -24);
  assert.equal(f(0x03ff), 1023 * 2 ** -24);
  assert.equal(f(0x7c00), Infinity);
  assert.equal(f(0xfc00), -Infinity);
  assert.ok(Number.isNaN(f(0x7e00)));
});

test('every finite half round-trips; the audio table maps non-finite to silence', () => {
  const t = f16AudioTable();
  for (let h = 0; h < 65536; h++) {
    const v = float16ToFloat32(h);
    if (!Number.isFinite(v)) {
      assert.equal(t[h], 0);
      continue;
    }
    assert.equal(toHalf(v), h, `half 0x${h.toString(16)}`);
    assert.equal(t[h], Math.fround(v));
  }
});

test('decodeF16: bit-level and native paths agree on all 65536 halves', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const bits = decodeF16(all.buffer, 0, null, { native: false });
  assert.equal(bits.length, 65536);
  assert.equal(bits[0x3c00], 1);
  assert.equal(bits[0x7c00], 0);
  if (HAS_FLOAT16ARRAY) assert.deepEqual(decodeF16(all.buffer, 0, null, { native: true }), bits);
});

test('slice header: 20 bytes little-endian, seq exact past 2^32', () => {
  const frame = encodeSlice({ flags: 2, kind: 0x0102, seq: 0x0102030405n, timestampUs: 123_456_789, payload: new Uint8Array(4) });
  assert.equal(frame.byteLength, HEADER_BYTES + 4);
  const bytes = new Uint8Array(frame);
  assert.deepEqual([...bytes.slice(0, 12)], [1, 2, 0x02, 0x01, 0x05, 0x04, 0x03, 0x02, 0x01, 0, 0, 0]);
  const h = parseSliceHeader(frame);
  assert.equal(h.version, 1);
  assert.equal(h.keyframe, true);
  assert.equal(h.droppable, false);
  assert.equal(h.kind, 0x0102);
  assert.equal(h.seq, 0x0102030405);
  assert.equal(h.seqBig, 0x0102030405n);
  assert.equal(h.timestampUs, 123_456_789);
  assert.equal(h.payloadBytes, 4);
  assert.equal(parseSliceHeader(encodeSlice({ flags: 1 })).droppable, true);
  assert.equal(parseSliceHeader(new ArrayBuffer(19)), null);
  assert.equal(parseSliceHeader(encodeSlice({ seq: 2n ** 53n })).seq, 2 ** 53);
});

test('decodePcmF16: interleaved samples after the header, odd offsets too', () => {
  const samples = [0, 0.5, -0.5, 1, -1, 0.25, 0.125, -0.0625];
  const frame = encodeSlice({ payload: halves(samples) });
  assert.deepEqual(Array.from(decodePcmF16(frame)), samples);
  assert.deepEqual(Array.from(decodePcmF16(frame, HEADER_BYTES, { native: false })), samples);
  const shifted = new ArrayBuffer(frame.byteLength + 1);
  new Uint8Array(shifted).set(new Uint8Array(frame), 1);
  assert.deepEqual(Array.from(decodePcmF16(shifted, HEADER_BYTES + 1)), samples);
});

test('isPcmF16 follows ready.engine', () => {
  const h = parseSliceHeader(encodeSlice({ kind: 1 }));
  assert.equal(isPcmF16(h, { format: 'pcm_f16le', kind: 1 }), true);
  assert.equal(isPcmF16(h, {}), true);
  assert.equal(isPcmF16(h, { format: 'opus' }), false);
  assert.equal(isPcmF16(parseSliceHeader(encodeSlice({ kind: 7 })), { kind: 7 }), false);
  assert.equal(isPcmF16(parseSliceHeader(encodeSlice({ version: 2 })), {}), false);
});

test('normalizeKnobs: number (with or without kind, value as default), choice, toggle; junk skipped', () => {
  const k = normalizeKnobs([
    { name: 'volume', min: 0, max: 1, step: 0.01, value: 0.8 },
    { name: 'tempo', kind: 'number', min: 60, max: 180, default: 500, unit: 'bpm', label: 'Tempo' },
    { name: 'voice', kind: 'choice', options: ['a', { value: 'b', label: 'Bee' }], default: 'b' },
    { name: 'loop', kind: 'toggle', default: true },
    { name: 'bad', kind: 'number', min: 5, max: 1 },
    { kind: 'toggle' },
    null,
    { name: 'mystery', kind: 'dial' },
  ]);
  assert.deepEqual(
    k.map((x) => [x.name, x.kind, x.default]),
    [['volume', 'number', 0.8], ['tempo', 'number', 180], ['voice', 'choice', 'b'], ['loop', 'toggle', true]],
  );
  assert.equal(k[1].unit, 'bpm');
  assert.equal(k[1].label, 'Tempo');
  assert.equal(k[0].label, 'volume');
  assert.deepEqual(k[2].options, [{ value: 'a', label: 'a' }, { value: 'b', label: 'Bee' }]);
  assert.deepEqual(normalizeKnobs('nope'), []);
});
