// The jitter buffer the AudioWorklet plays from. Pure JavaScript (no audio
// API), so Node tests drive it exactly as the audio thread does.
//
//   buffering ──(≥ startMs of audio queued)──▶ playing ──(underrun)──▶ buffering
//
// Counted in audio time, not in slices. While buffering it outputs silence;
// an underrun re-arms the prebuffer (one clean gap instead of a stutter).
// Above maxMs (a burst after a stall, a throttled tab) the oldest audio is
// dropped back to startMs, so latency returns to normal instead of staying
// behind forever. The ring is allocated when configured, never while
// playing: `read()` allocates nothing.

import { f16AudioTable, HAS_FLOAT16ARRAY } from './f16.js';

const FADE_FRAMES = 128;

export class JitterBuffer {
  constructor({ outRate = 48000, srcRate = 48000, startMs = 250, maxMs = 1000, ringSeconds = 3 } = {}) {
    this.ringSeconds = ringSeconds;
    this.cap = 0;
    this.underruns = 0;
    this.trimmedFrames = 0;
    this.receivedFrames = 0;
    this.playedFrames = 0;
    this.configure({ outRate, srcRate, startMs, maxMs });
  }

  /** (Re)configures; keeps the ring when its size does not change. */
  configure({ outRate = this.outRate, srcRate = this.srcRate, startMs = this.startMs, maxMs = this.maxMs } = {}) {
    this.outRate = outRate;
    this.srcRate = srcRate;
    this.startMs = startMs;
    this.maxMs = Math.max(maxMs, startMs);
    this.ratio = srcRate / outRate; // source frames per output frame
    const cap = Math.ceil(srcRate * Math.max(this.ringSeconds, (this.maxMs / 1000) * 2));
    if (cap !== this.cap) {
      this.cap = cap;
      this.L = new Float32Array(cap);
      this.R = new Float32Array(cap);
    }
    this.startFrames = Math.max(1, Math.round((srcRate * startMs) / 1000));
    this.maxFrames = Math.round((srcRate * this.maxMs) / 1000);
    this.flush();
  }

  flush() {
    this.readIdx = 0;
    this.writeIdx = 0;
    this.count = 0;
    this.frac = 0;
    this.fade = 0;
    this.playing = false;
  }

  /** `playedFrames` counts source frames played (the played position); `receivedFrames` those pushed. */

  /** Queued audio in ms (source time). */
  get bufferedMs() {
    return (this.count / this.srcRate) * 1000;
  }

  /** Pushes interleaved float samples. */
  pushFloat32(data, channels) {
    this.write(data, channels, null);
  }

  /** Pushes interleaved f16 LE samples from an ArrayBuffer (decoded straight into the ring). */
  pushF16(buffer, channels, offset = 0) {
    const n = Math.floor((buffer.byteLength - offset) / 2);
    if (HAS_FLOAT16ARRAY && offset % 2 === 0) {
      this.write(new globalThis.Float16Array(buffer, offset, n), channels, null, true);
    } else if (offset % 2 === 0) {
      this.write(new Uint16Array(buffer, offset, n), channels, f16AudioTable());
    } else {
      const copy = new Uint16Array(n);
      const v = new DataView(buffer, offset);
      for (let i = 0; i < n; i++) copy[i] = v.getUint16(i * 2, true);
      this.write(copy, channels, f16AudioTable());
    }
  }

  write(data, channels, table, checkFinite = false) {
    const ch = Math.max(1, channels | 0);
    let frames = Math.floor(data.length / ch);
    let offset = 0;
    this.receivedFrames += frames;
    if (frames > this.cap) {
      offset = (frames - this.cap) * ch;
      frames = this.cap;
    }
    const overflow = this.count + frames - this.cap;
    if (overflow > 0) this.drop(overflow);
    const { L, R, cap } = this;
    let w = this.writeIdx;
    const get = (j) => {
      const x = table ? table[data[j]] : data[j];
      return checkFinite && !(x > -Infinity && x < Infinity) ? 0 : x;
    };
    for (let i = 0; i < frames; i++) {
      const j = offset + i * ch;
      const l = get(j);
      L[w] = l;
      R[w] = ch > 1 ? get(j + 1) : l;
      if (++w === cap) w = 0;
    }
    this.writeIdx = w;
    this.count += frames;
    if (this.count > this.maxFrames) this.drop(this.count - this.startFrames);
  }

  drop(frames) {
    const n = Math.min(frames, this.count);
    this.readIdx = (this.readIdx + n) % this.cap;
    this.count -= n;
    this.trimmedFrames += n;
  }

  /**
   * Fills `outL`/`outR` (same length, any length: do not assume 128) and
   * returns whether audio (not the prebuffer's silence) was played.
   * `outR` may be null (mono output).
   */
  read(outL, outR) {
    const n = outL.length;
    const need = Math.ceil(n * this.ratio) + 1;
    if (!this.playing && this.count >= this.startFrames && this.count >= need) {
      this.playing = true;
      this.fade = FADE_FRAMES;
    }
    if (this.playing && this.count < need) {
      this.playing = false;
      this.underruns++;
    }
    if (!this.playing) {
      outL.fill(0);
      if (outR) outR.fill(0);
      return false;
    }
    const { L, R, cap, ratio } = this;
    let r = this.readIdx;
    if (ratio === 1) {
      for (let i = 0; i < n; i++) {
        const g = this.fade > 0 ? 1 - this.fade-- / FADE_FRAMES : 1;
        outL[i] = L[r] * g;
        if (outR) outR[i] = R[r] * g;
        if (++r === cap) r = 0;
      }
      this.count -= n;
      this.playedFrames += n;
    } else {
      // Linear resampling: a fallback for a context that refused the
      // engine's rate.
      let frac = this.frac;
      let used = 0;
      for (let i = 0; i < n; i++) {
        const g = this.fade > 0 ? 1 - this.fade-- / FADE_FRAMES : 1;
        const r1 = r + 1 === cap ? 0 : r + 1;
        outL[i] = (L[r] + (L[r1] - L[r]) * frac) * g;
        if (outR) outR[i] = (R[r] + (R[r1] - R[r]) * frac) * g;
        frac += ratio;
        while (frac >= 1) {
          frac -= 1;
          r = r + 1 === cap ? 0 : r + 1;
          used++;
        }
      }
      this.frac = frac;
      this.count -= used;
      this.playedFrames += used;
    }
    this.readIdx = r;
    return true;
  }
}
