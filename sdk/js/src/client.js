// The thin driver: turns the state machine's actions (src/machine.js) into
// WebSocket calls and timers, and its emits into events on this one object.
// Works in browsers and in Node ≥ 22 (global WebSocket); pass `WebSocket`
// in the options elsewhere.

import { createMachine } from './machine.js';
import { parseSliceHeader, isPcmF16 } from './slice.js';
import { Emitter } from './emitter.js';

const now = () => (globalThis.performance ? globalThis.performance.now() : Date.now());

/** The WebSocket URL of the server that served this page (`/ws` on the same origin). */
export function defaultUrl() {
  const loc = globalThis.location;
  if (!loc || !/^https?:$/.test(loc.protocol)) throw new Error('seatkeeper-client: pass `url` (no page location to derive it from)');
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/ws`;
}

export class SeatkeeperClient extends Emitter {
  /**
   * @param {object} [options] see index.d.ts (ClientOptions)
   */
  constructor(options = {}) {
    super();
    const { url, WebSocket: WS, player, getSeatToken, listenOnline = true, ...machineOptions } = options;
    this.url = url || null;
    this.WebSocket = WS || globalThis.WebSocket;
    this.player = player || null;
    this.getSeatToken = getSeatToken || null;
    this.engine = null;
    this.stats = null;
    this.machine = createMachine(machineOptions);
    this.ws = null;
    this.stale = null; // a dropped socket kept open until the next one is answered
    this.timers = new Map();
    this.gen = 0;
    this.bufferMs = undefined;
    // The network is back, or the tab is visible again (a background tab's
    // timers may have held a retry back for up to a minute): retry now.
    this.onOnline = () => this.dispatch({ type: 'online' });
    this.onVisible = () => {
      if (globalThis.document && globalThis.document.visibilityState === 'visible') this.dispatch({ type: 'online' });
    };
    this.listening = false;
    this.listenOnline = listenOnline;
    if (this.player && typeof this.player.on === 'function') {
      this.player.on('status', (st) => {
        this.bufferMs = st.bufferedMs;
      });
    }
  }

  get state() {
    return this.machine.state;
  }

  /** Everything the machine knows, plus the engine description and the latest stats. */
  snapshot() {
    return { ...this.machine.snapshot(), engine: this.engine, stats: this.stats, bufferMs: this.bufferMs };
  }

  /** Starts (or, after `ended`, starts again). */
  connect() {
    if (this.listenOnline && !this.listening && typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('online', this.onOnline);
      if (globalThis.document) globalThis.document.addEventListener('visibilitychange', this.onVisible);
      this.listening = true;
    }
    this.dispatch({ type: 'start' });
  }

  /** Ends the session (`bye`, close 1000) and cancels any pending retry. */
  disconnect() {
    this.dispatch({ type: 'stop' });
    if (this.listening) {
      globalThis.removeEventListener('online', this.onOnline);
      if (globalThis.document) globalThis.document.removeEventListener('visibilitychange', this.onVisible);
      this.listening = false;
    }
  }

  /** Skips a pending wait (busy countdown or backoff) and connects now. */
  retryNow() {
    this.dispatch({ type: 'retry' });
  }

  /** Sends knobs to the engine; they are also carried into the `hello` of a new session. */
  setParams(values) {
    this.dispatch({ type: 'params', values });
  }

  /** The playback buffer depth to report in acks (`buffer_ms`), when no player is attached. */
  reportBuffer(ms) {
    this.bufferMs = ms;
  }

  /** Feeds one event to the machine and carries out its actions. */
  dispatch(ev) {
    const actions = this.machine.handle({ now: now(), ...ev });
    for (const a of actions) this.perform(a);
  }

  perform(a) {
    switch (a.type) {
      case 'connect':
        this.open();
        break;
      case 'send':
        if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(a.msg));
        break;
      case 'close':
        this.detach(this.ws, a.code, a.reason);
        this.ws = null;
        break;
      case 'drop':
        if (this.stale) this.detach(this.stale, 4000, 'abandoned by client');
        this.stale = this.ws;
        this.detach(this.ws, null);
        this.ws = null;
        break;
      case 'deliver':
        break; // handled in onBinary, which knows the frame
      case 'setTimer': {
        clearTimeout(this.timers.get(a.name));
        // One timer per name; the machine clears what it no longer wants
        // and ignores a timer that no longer applies to its state.
        this.timers.set(
          a.name,
          setTimeout(() => {
            this.timers.delete(a.name);
            this.dispatch({ type: 'timer', name: a.name });
          }, a.ms),
        );
        break;
      }
      case 'clearTimer':
        clearTimeout(this.timers.get(a.name));
        this.timers.delete(a.name);
        break;
      case 'emit':
        this.onEmit(a.name, a.detail);
        break;
      default:
        break;
    }
  }

  onEmit(name, detail) {
    if (name === 'ready') {
      this.engine = detail.engine || {};
      if (this.player && typeof this.player.configure === 'function') this.player.configure(this.engine);
      if (!detail.resumed) this.stats = null;
    } else if (name === 'stats') {
      this.stats = detail;
    } else if (name === 'ended' && this.player && typeof this.player.flush === 'function') {
      this.player.flush();
    }
    this.emit(name, detail);
  }

  async open() {
    const gen = ++this.gen;
    if (this.getSeatToken && !this.machine.snapshot().hasSeatToken && !this.machine.snapshot().hasResumeToken) {
      try {
        const token = await this.getSeatToken();
        if (gen !== this.gen) return;
        this.machine.handle({ type: 'seat_token', token, now: now() });
      } catch (e) {
        if (gen !== this.gen) return;
        this.emit('error', { code: 'seat_token', message: String((e && e.message) || e) });
        this.dispatch({ type: 'close', code: 1006, reason: 'no seat token', wasClean: false });
        return;
      }
    }
    let ws;
    try {
      ws = new this.WebSocket(this.url || defaultUrl());
    } catch (e) {
      this.emit('error', { code: 'connect', message: String((e && e.message) || e) });
      queueMicrotask(() => gen === this.gen && this.dispatch({ type: 'close', code: 1006, reason: 'cannot connect', wasClean: false }));
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => gen === this.gen && this.dispatch({ type: 'open' });
    ws.onmessage = (ev) => {
      if (gen !== this.gen) return;
      this.closeStale();
      if (typeof ev.data === 'string') this.onText(ev.data);
      else this.onBinary(ev.data);
    };
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (gen !== this.gen) return;
      this.closeStale();
      this.ws = null;
      this.dispatch({ type: 'close', code: ev.code, reason: ev.reason, wasClean: ev.wasClean });
    };
  }

  closeStale() {
    if (!this.stale) return;
    this.detach(this.stale, 4000, 'abandoned by client');
    this.stale = null;
  }

  /** Detaches a socket's handlers; closes it when `code` is given. */
  detach(ws, code, reason) {
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (code == null) return;
    try {
      if (ws.readyState === 0 || ws.readyState === 1) ws.close(code, reason);
    } catch {
      /* already closed */
    }
  }

  onText(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      this.emit('error', { code: 'client_bad_json', message: 'the server sent a text frame that is not JSON' });
      return;
    }
    this.dispatch({ type: 'message', msg });
  }

  onBinary(buf) {
    const header = parseSliceHeader(buf);
    if (!header) {
      this.emit('error', { code: 'client_short_frame', message: `binary frame of ${buf.byteLength} bytes is shorter than a slice header` });
      return;
    }
    const bufferMs = this.player ? this.player.bufferedMs : this.bufferMs;
    const actions = this.machine.handle({ type: 'slice', seq: header.seq, bufferMs, now: now() });
    const fresh = actions.some((a) => a.type === 'deliver');
    if (fresh) {
      const slice = { header, data: buf, engine: this.engine };
      if (this.player && isPcmF16(header, this.engine || {})) this.player.push(buf);
      this.emit('slice', slice);
    }
    for (const a of actions) this.perform(a);
  }
}
