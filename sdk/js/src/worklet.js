// The AudioWorklet processor (audio thread). Load it with
// `audioContext.audioWorklet.addModule(new URL('./worklet.js', import.meta.url))`
// — SeatkeeperPlayer does. The main thread transfers each slice's f16
// payload by postMessage; it is decoded straight into the jitter buffer's
// preallocated ring (src/jitter.js). process() allocates nothing, never
// returns false (that would kill the node on the first underrun) and takes
// whatever block size the browser gives it.
//
// About every 20 ms it reports its state — played position, buffer depth,
// underruns, levels and a short waveform of what it really played — in a
// reused message object (the structured clone on post is the browser's).

import { JitterBuffer } from './jitter.js';

const REPORT_EVERY_FRAMES = 1024; // ≈ 21 ms at 48 kHz
const WAVE_POINTS = 256;

class SeatkeeperProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    // `sampleRate` is the AudioWorkletGlobalScope's output rate.
    this.jb = new JitterBuffer({ outRate: sampleRate, srcRate: o.srcRate || 48000, startMs: o.startMs || 250, maxMs: o.maxMs || 1000 });
    this.sinceReport = 0;
    this.peakL = 0;
    this.peakR = 0;
    this.sumSqL = 0;
    this.sumSqR = 0;
    this.levelFrames = 0;
    this.wave = new Float32Array(WAVE_POINTS);
    this.waveOut = new Float32Array(WAVE_POINTS);
    this.waveAt = 0;
    this.status = {
      type: 'status',
      playing: false,
      bufferedMs: 0,
      underruns: 0,
      trimmedMs: 0,
      receivedFrames: 0,
      playedFrames: 0,
      srcRate: 0,
      peakL: 0,
      peakR: 0,
      rmsL: 0,
      rmsR: 0,
      wave: this.waveOut,
    };
    this.port.onmessage = (ev) => this.onMessage(ev.data);
  }

  onMessage(msg) {
    switch (msg && msg.type) {
      case 'f16':
        this.jb.pushF16(msg.data, msg.channels || 2);
        break;
      case 'pcm':
        this.jb.pushFloat32(msg.data, msg.channels || 2);
        break;
      case 'config':
        this.jb.configure({ srcRate: msg.srcRate, startMs: msg.startMs, maxMs: msg.maxMs });
        break;
      case 'flush':
        this.jb.flush();
        break;
      default:
        break;
    }
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    if (!out || !out.length) return true;
    const outL = out[0];
    const outR = out.length > 1 ? out[1] : null;
    this.jb.read(outL, outR);
    for (let c = 2; c < out.length; c++) out[c].fill(0);
    this.measure(outL, outR || outL);
    this.sinceReport += outL.length;
    if (this.sinceReport >= REPORT_EVERY_FRAMES) {
      this.sinceReport = 0;
      this.report();
    }
    return true;
  }

  measure(a, b) {
    const n = a.length;
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
    // A decimated mono copy for a waveform view (≈ the last 20 ms).
    const stride = Math.max(1, Math.floor(REPORT_EVERY_FRAMES / WAVE_POINTS));
    for (let i = 0; i < n; i += stride) {
      this.wave[this.waveAt] = (a[i] + b[i]) * 0.5;
      this.waveAt = (this.waveAt + 1) % WAVE_POINTS;
    }
  }

  report() {
    const jb = this.jb;
    const st = this.status;
    const frames = this.levelFrames || 1;
    for (let i = 0; i < WAVE_POINTS; i++) this.waveOut[i] = this.wave[(this.waveAt + i) % WAVE_POINTS];
    st.playing = jb.playing;
    st.bufferedMs = jb.bufferedMs;
    st.underruns = jb.underruns;
    st.trimmedMs = (jb.trimmedFrames / jb.srcRate) * 1000;
    st.receivedFrames = jb.receivedFrames;
    st.playedFrames = jb.playedFrames;
    st.srcRate = jb.srcRate;
    st.peakL = this.peakL;
    st.peakR = this.peakR;
    st.rmsL = Math.sqrt(this.sumSqL / frames);
    st.rmsR = Math.sqrt(this.sumSqR / frames);
    this.port.postMessage(st);
    this.peakL = this.peakR = 0;
    this.sumSqL = this.sumSqR = 0;
    this.levelFrames = 0;
  }
}

registerProcessor('seatkeeper-player', SeatkeeperProcessor);
