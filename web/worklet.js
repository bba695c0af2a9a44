// seatkeeper — the AudioWorklet player.
//
// A jitter buffer on the audio thread. The main thread posts decoded PCM
// (Float32Array, interleaved) as it arrives from the network; this
// processor plays it out gap-free:
//
//   buffering ──(≥ startMs buffered)──▶ playing ──(underrun)──▶ buffering
//
// While buffering it outputs silence. When the buffer grows past maxMs (a
// burst after a stall, or a tab that was throttled) the oldest audio is
// dropped down to startMs so the latency comes back to normal instead of
// staying a second behind forever. Source material at a rate other than the
// context's is resampled linearly (Chrome normally honours the 48 kHz the
// client asks for, so this is a fallback).
//
// Every ~20 ms the processor reports its state and the levels of what it
// just played, so the page can draw a meter and a waveform of the real
// output rather than of what arrived.

const RING_SECONDS = 3;
const REPORT_EVERY_QUANTA = 8; // 8 × 128 frames ≈ 21 ms at 48 kHz
const WAVE_POINTS = 256;
const FADE_FRAMES = 128;

class SeatkeeperPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.configure(o.srcRate || 48000, o.startMs || 250, o.maxMs || 1000);
    this.playing = false;
    this.fade = 0; // frames of fade-in left after a (re)start
    this.underruns = 0;
    this.trimmedFrames = 0;
    this.receivedFrames = 0;
    this.playedFrames = 0;
    this.quanta = 0;
    this.peakL = 0;
    this.peakR = 0;
    this.sumSqL = 0;
    this.sumSqR = 0;
    this.levelFrames = 0;
    this.wave = new Float32Array(WAVE_POINTS);
    this.waveAt = 0;
    this.waveStride = 1;
    this.port.onmessage = (ev) => this.onMessage(ev.data);
  }

  configure(srcRate, startMs, maxMs) {
    this.srcRate = srcRate;
    this.ratio = srcRate / sampleRate; // source frames per output frame
    this.cap = Math.ceil(srcRate * RING_SECONDS);
    this.L = new Float32Array(this.cap);
    this.R = new Float32Array(this.cap);
    this.readIdx = 0;
    this.frac = 0;
    this.writeIdx = 0;
    this.count = 0; // source frames available
    this.startFrames = Math.round((srcRate * startMs) / 1000);
    this.maxFrames = Math.round((srcRate * maxMs) / 1000);
    this.playing = false;
  }

  onMessage(msg) {
    switch (msg && msg.type) {
      case 'pcm':
        this.push(msg.data, msg.channels || 2);
        break;
      case 'config':
        this.configure(msg.srcRate || this.srcRate, msg.startMs || 250, msg.maxMs || 1000);
        break;
      case 'flush':
        this.readIdx = this.writeIdx = this.count = 0;
        this.frac = 0;
        this.playing = false;
        break;
      default:
        break;
    }
  }

  push(data, channels) {
    let frames = Math.floor(data.length / channels);
    let offset = 0;
    this.receivedFrames += frames;
    if (frames > this.cap) {
      offset = (frames - this.cap) * channels;
      frames = this.cap;
    }
    const overflow = this.count + frames - this.cap;
    if (overflow > 0) this.drop(overflow);
    let w = this.writeIdx;
    const L = this.L;
    const R = this.R;
    const cap = this.cap;
    if (channels === 1) {
      for (let i = 0; i < frames; i++) {
        const v = data[offset + i];
        L[w] = v;
        R[w] = v;
        if (++w === cap) w = 0;
      }
    } else {
      for (let i = 0; i < frames; i++) {
        const j = offset + i * channels;
        L[w] = data[j];
        R[w] = data[j + 1];
        if (++w === cap) w = 0;
      }
    }
    this.writeIdx = w;
    this.count += frames;
    if (this.count > this.maxFrames) {
      // Too far behind real time: skip the oldest audio back to the start
      // threshold (one audible jump instead of a permanent delay).
      this.drop(this.count - this.startFrames);
    }
  }

  drop(frames) {
    const n = Math.min(frames, this.count);
    this.readIdx = (this.readIdx + n) % this.cap;
    this.count -= n;
    this.trimmedFrames += n;
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const outL = out[0];
    const outR = out.length > 1 ? out[1] : null;
    const n = outL.length;
    const need = Math.ceil(n * this.ratio) + 1;

    if (!this.playing && this.count >= this.startFrames && this.count >= need) {
      this.playing = true;
      this.fade = FADE_FRAMES;
    }
    if (this.playing && this.count < need) {
      // Underrun: play silence and build the cushion up again.
      this.playing = false;
      this.underruns++;
    }

    if (this.playing) {
      const L = this.L;
      const R = this.R;
      const cap = this.cap;
      let r = this.readIdx;
      if (this.ratio === 1) {
        for (let i = 0; i < n; i++) {
          let g = 1;
          if (this.fade > 0) g = 1 - this.fade-- / FADE_FRAMES;
          outL[i] = L[r] * g;
          if (outR) outR[i] = R[r] * g;
          if (++r === cap) r = 0;
        }
        this.count -= n;
      } else {
        let frac = this.frac;
        let used = 0;
        for (let i = 0; i < n; i++) {
          let g = 1;
          if (this.fade > 0) g = 1 - this.fade-- / FADE_FRAMES;
          const r1 = r + 1 === cap ? 0 : r + 1;
          outL[i] = (L[r] + (L[r1] - L[r]) * frac) * g;
          if (outR) outR[i] = (R[r] + (R[r1] - R[r]) * frac) * g;
          frac += this.ratio;
          while (frac >= 1) {
            frac -= 1;
            r = r + 1 === cap ? 0 : r + 1;
            used++;
          }
        }
        this.frac = frac;
        this.count -= used;
      }
      this.readIdx = r;
      this.playedFrames += n;
    } else {
      outL.fill(0);
      if (outR) outR.fill(0);
    }
    for (let c = 2; c < out.length; c++) out[c].fill(0);

    this.measure(outL, outR || outL, n);
    if (++this.quanta % REPORT_EVERY_QUANTA === 0) this.report();
    return true;
  }

  measure(a, b, n) {
    let pl = this.peakL;
    let pr = this.peakR;
    let sl = 0;
    let sr = 0;
    for (let i = 0; i < n; i++) {
      const x = a[i];
      const y = b[i];
      const ax = x < 0 ? -x : x;
      const ay = y < 0 ? -y : y;
      if (ax > pl) pl = ax;
      if (ay > pr) pr = ay;
      sl += x * x;
      sr += y * y;
    }
    this.peakL = pl;
    this.peakR = pr;
    this.sumSqL += sl;
    this.sumSqR += sr;
    this.levelFrames += n;
    // A decimated mono copy for the waveform view (≈ the last 50 ms).
    const stride = Math.max(1, Math.floor((REPORT_EVERY_QUANTA * n) / WAVE_POINTS));
    for (let i = 0; i < n; i += stride) {
      this.wave[this.waveAt] = (a[i] + b[i]) * 0.5;
      this.waveAt = (this.waveAt + 1) % WAVE_POINTS;
    }
  }

  report() {
    const frames = this.levelFrames || 1;
    const wave = new Float32Array(WAVE_POINTS);
    for (let i = 0; i < WAVE_POINTS; i++) wave[i] = this.wave[(this.waveAt + i) % WAVE_POINTS];
    this.port.postMessage(
      {
        type: 'status',
        playing: this.playing,
        bufferedMs: (this.count / this.srcRate) * 1000,
        underruns: this.underruns,
        trimmedMs: (this.trimmedFrames / this.srcRate) * 1000,
        receivedFrames: this.receivedFrames,
        playedFrames: this.playedFrames,
        peakL: this.peakL,
        peakR: this.peakR,
        rmsL: Math.sqrt(this.sumSqL / frames),
        rmsR: Math.sqrt(this.sumSqR / frames),
        wave,
      },
      [wave.buffer],
    );
    this.peakL = this.peakR = 0;
    this.sumSqL = this.sumSqR = 0;
    this.levelFrames = 0;
  }
}

registerProcessor('seatkeeper-player', SeatkeeperPlayer);
