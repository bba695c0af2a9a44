// The worklet's jitter buffer, driven in blocks as the audio thread would.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { JitterBuffer } from '../index.js';

const RATE = 48000;
const sliceOf = (ms, value = 0.5, channels = 2) => new Float32Array(((RATE * ms) / 1000) * channels).fill(value);

function play(jb, blocks, size = 128) {
  const L = new Float32Array(size);
  const R = new Float32Array(size);
  let audible = 0;
  for (let i = 0; i < blocks; i++) if (jb.read(L, R)) audible++;
  return { audible, L, R };
}

test('silent until the prebuffer (in audio time) is reached, then plays', () => {
  const jb = new JitterBuffer({ startMs: 250, maxMs: 1000 });
  jb.pushFloat32(sliceOf(100), 2);
  jb.pushFloat32(sliceOf(100), 2);
  assert.equal(play(jb, 4).audible, 0);
  assert.equal(jb.playing, false);
  jb.pushFloat32(sliceOf(100), 2);
  const { audible, L } = play(jb, 4);
  assert.equal(audible, 4);
  assert.equal(L[127], 0.5, 'past the fade-in');
  assert.ok(Math.abs(jb.bufferedMs - (300 - (512 / RATE) * 1000)) < 0.01);
  assert.equal(jb.playedFrames, 512);
});

test('an underrun re-arms the prebuffer and is counted', () => {
  const jb = new JitterBuffer({ startMs: 50, maxMs: 1000 });
  jb.pushFloat32(sliceOf(60), 2);
  play(jb, 100);
  assert.equal(jb.underruns, 1);
  assert.equal(jb.playing, false);
  jb.pushFloat32(sliceOf(20), 2);
  assert.equal(play(jb, 2).audible, 0, 'waits for 50 ms again, not 20');
  jb.pushFloat32(sliceOf(40), 2);
  assert.equal(play(jb, 2).audible, 2);
});

test('above maxMs the oldest audio is trimmed back to startMs', () => {
  const jb = new JitterBuffer({ startMs: 200, maxMs: 500 });
  for (let i = 0; i < 6; i++) jb.pushFloat32(sliceOf(100), 2);
  assert.ok(Math.abs(jb.bufferedMs - 200) < 0.01, `${jb.bufferedMs}`);
  assert.ok(jb.trimmedFrames > 0);
});

test('f16 payloads go straight into the ring; mono is duplicated; odd block sizes work', () => {
  const jb = new JitterBuffer({ startMs: 1, maxMs: 1000 });
  const u = new Uint16Array(480).fill(0x3800); // 0.5
  jb.pushF16(u.buffer, 1);
  const L = new Float32Array(300);
  const R = new Float32Array(300);
  assert.equal(jb.read(L, R), true);
  assert.equal(L[200], 0.5);
  assert.equal(R[200], 0.5);
  jb.pushF16(new Uint16Array(4).fill(0x7c00).buffer, 2); // Infinity → silence
  assert.ok(Number.isFinite(jb.bufferedMs));
});

test('read() allocates nothing: the ring is reused across reconfiguring to the same rate', () => {
  const jb = new JitterBuffer();
  const ring = jb.L;
  jb.configure({ startMs: 100 });
  assert.equal(jb.L, ring);
  jb.configure({ srcRate: 24000 });
  assert.notEqual(jb.L, ring);
  // Resampled (24 kHz source into a 48 kHz output): half a source frame per output frame.
  jb.configure({ startMs: 10 });
  jb.pushFloat32(new Float32Array(2400 * 2).fill(0.25), 2);
  const { audible } = play(jb, 4);
  assert.equal(audible, 4);
  assert.equal(jb.playedFrames, 256);
});
