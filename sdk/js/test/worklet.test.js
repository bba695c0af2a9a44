// The worklet processor itself, run outside a browser: Node has no
// AudioWorkletGlobalScope, so the three globals a processor sees
// (AudioWorkletProcessor with its port, registerProcessor, sampleRate) are
// provided here. The real thing runs in the Chromium e2e suite; this checks
// what the browser cannot show: process() keeps returning true through
// underruns and odd block sizes, and the status reports are one reused object.

import { test } from 'node:test';
import assert from 'node:assert/strict';

const posted = [];
let registered = null;
globalThis.sampleRate = 48000;
globalThis.AudioWorkletProcessor = class {
  constructor() {
    this.port = { onmessage: null, postMessage: (m) => posted.push(m) };
  }
};
globalThis.registerProcessor = (name, cls) => {
  registered = { name, cls };
};
await import('../src/worklet.js');

const f16Slice = (ms, half = 0x3800) => new Uint16Array(((48000 * ms) / 1000) * 2).fill(half).buffer;

test('registers seatkeeper-player; plays after the prebuffer; never returns false', () => {
  assert.equal(registered.name, 'seatkeeper-player');
  const p = new registered.cls({ processorOptions: { srcRate: 48000, startMs: 100, maxMs: 1000 } });
  const out = [[new Float32Array(128), new Float32Array(128)]];
  for (let i = 0; i < 20; i++) assert.equal(p.process([], out), true, 'silence before any audio');
  p.port.onmessage({ data: { type: 'f16', data: f16Slice(100), channels: 2 } });
  let audible = 0;
  for (let i = 0; i < 60; i++) {
    assert.equal(p.process([], out), true);
    if (out[0][0][127] === 0.5) audible++;
  }
  assert.ok(audible > 30, `${audible} audible blocks`);
  // 100 ms is 37.5 blocks: the rest were an underrun, and process() still said true.
  const last = posted[posted.length - 1];
  assert.equal(last.type, 'status');
  assert.equal(last.underruns, 1);
  assert.equal(last.playing, false);
  assert.ok(last.playedFrames >= 4800 - 128 && last.playedFrames <= 4800, `${last.playedFrames}`);
  assert.equal(posted[0], last, 'one status object, reused');
});

test('odd block sizes and a mono output', () => {
  const p = new registered.cls({ processorOptions: { startMs: 10 } });
  p.port.onmessage({ data: { type: 'f16', data: f16Slice(50), channels: 2 } });
  const out = [[new Float32Array(97)]];
  for (let i = 0; i < 10; i++) assert.equal(p.process([], out), true);
  assert.equal(out[0][0][96], 0.5);
  assert.equal(p.process([], []), true, 'no outputs at all');
});
