// The main-thread side of the AudioWorklet player for `pcm_f16le` slices.
//
//   const player = new SeatkeeperPlayer();
//   button.onclick = () => { player.start(); client.connect(); };  // start() inside the click (iOS)
//
// Each slice's payload is copied once and transferred to the worklet
// (src/worklet.js), which decodes it into a preallocated ring. The worklet
// reports its played position and buffer depth about every 20 ms; the
// client puts that depth in its acks (`buffer_ms`). A SharedArrayBuffer
// ring would need cross-origin isolation (COOP/COEP headers, which many
// hosts cannot set), so the transport is postMessage everywhere.

import { Emitter } from './emitter.js';
import { HEADER_BYTES } from './slice.js';

export class SeatkeeperPlayer extends Emitter {
  /** @param {object} [options] see index.d.ts (PlayerOptions) */
  constructor({ context = null, sampleRate = 48000, startMs = 250, maxMs = 1000, workletUrl = null, destination = null } = {}) {
    super();
    this.ctx = context;
    this.sampleRate = sampleRate;
    this.startMs = startMs;
    this.maxMs = maxMs;
    this.workletUrl = workletUrl || new URL('./worklet.js', import.meta.url).href;
    this.destination = destination;
    this.node = null;
    this.ready = null;
    this.srcRate = sampleRate;
    this.channels = 2;
    this.status = { playing: false, bufferedMs: 0, underruns: 0, playedFrames: 0, receivedFrames: 0, peakL: 0, peakR: 0, rmsL: 0, rmsR: 0, trimmedMs: 0 };
    this.pending = [];
  }

  /**
   * Creates (or resumes) the AudioContext and loads the worklet. Call it from
   * a click handler where autoplay is not allowed: the context is created
   * and resumed synchronously, before the first await.
   */
  start() {
    if (!this.ctx) {
      const AC = globalThis.AudioContext || globalThis.webkitAudioContext;
      if (!AC) return Promise.reject(new Error('no Web Audio in this environment'));
      this.ctx = new AC({ sampleRate: this.sampleRate, latencyHint: 'interactive' });
    }
    const resumed = this.ctx.state === 'running' ? Promise.resolve() : this.ctx.resume().catch(() => {});
    if (!this.ready) this.ready = this.load();
    return Promise.all([this.ready, resumed]).then(() => undefined);
  }

  async load() {
    await this.ctx.audioWorklet.addModule(this.workletUrl);
    this.node = new AudioWorkletNode(this.ctx, 'seatkeeper-player', {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [2],
      processorOptions: { srcRate: this.srcRate, startMs: this.startMs, maxMs: this.maxMs },
    });
    this.node.port.onmessage = (ev) => {
      const m = ev.data;
      if (m && m.type === 'status') {
        this.status = m;
        this.emit('status', m);
      }
    };
    this.node.connect(this.destination || this.ctx.destination);
    for (const m of this.pending.splice(0)) this.post(m.msg, m.transfer);
    this.ctx.onstatechange = () => this.emit('audiostate', { state: this.ctx.state });
    this.emit('audiostate', { state: this.ctx.state });
  }

  /** The AudioContext's state: 'running', 'suspended', 'closed', or 'none' before start(). */
  get audioState() {
    return this.ctx ? this.ctx.state : 'none';
  }

  /** Queued audio in ms, as last reported by the worklet. */
  get bufferedMs() {
    return this.status.bufferedMs;
  }

  get playing() {
    return this.status.playing;
  }

  /** Applies `ready.engine` (sample_rate, channels). */
  configure(engine = {}) {
    const rate = Number(engine.sample_rate) || this.srcRate;
    this.channels = Number(engine.channels) || 2;
    if (rate !== this.srcRate) {
      this.srcRate = rate;
      this.post({ type: 'config', srcRate: rate, startMs: this.startMs, maxMs: this.maxMs });
    }
  }

  /** Sets the prebuffer and the trim threshold (ms of audio). */
  setBuffer({ startMs = this.startMs, maxMs = this.maxMs } = {}) {
    this.startMs = startMs;
    this.maxMs = maxMs;
    this.post({ type: 'config', srcRate: this.srcRate, startMs, maxMs });
  }

  /** Queues one slice frame (header included, as received). The frame itself is not detached. */
  push(frame) {
    const data = frame.slice(HEADER_BYTES);
    this.post({ type: 'f16', data, channels: this.channels }, [data]);
  }

  /** Drops whatever is queued (the prebuffer re-arms). */
  flush() {
    this.post({ type: 'flush' });
  }

  post(msg, transfer = []) {
    if (this.node) this.node.port.postMessage(msg, transfer);
    else if (this.pending.length < 64 || msg.type !== 'f16') this.pending.push({ msg, transfer });
  }

  async close() {
    if (this.node) this.node.disconnect();
    this.node = null;
    this.ready = null;
    if (this.ctx && this.ctx.state !== 'closed') await this.ctx.close();
    this.ctx = null;
  }
}
