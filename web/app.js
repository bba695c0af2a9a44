// seatkeeper — the browser client. A plain ES module, no build step.
//
// One WebSocket to `ws(s)://<this origin>/ws`. Text frames are JSON control
// messages (CONTRACT.md, "WebSocket messages"); binary frames are slices: a
// 20-byte little-endian header, then interleaved f16 PCM. Slices are decoded
// here, handed to the AudioWorklet in worklet.js (a jitter buffer) and acked.
//
// Connection states, as shown in the pill and in `window.seatkeeper.state`:
//
//   idle ─start─▶ connecting ─ready─▶ streaming ─abnormal close─▶ reconnecting ─ready─▶ streaming
//                     │                   │                           │ (5 tries, full-jitter backoff)
//                     └──busy/1013──▶ busy (countdown, then connecting again)
//                                         └─1000 / 1008 / 4002 / pagehide / gave up──▶ ended
//
// The pure helpers (f16 decoding, the slice header, the backoff) are
// exported so they can be tested outside a browser; everything that touches
// the page runs only when there is a document.

/** Slice header length in bytes. */
export const HEADER_BYTES = 20;
/** Slice header version this client understands. */
export const SLICE_VERSION = 1;
/** Slice kind of the demo engine: PCM f16, interleaved. */
export const KIND_PCM_F16 = 1;
/** Header flag bits. */
export const FLAG_DROPPABLE = 1;
export const FLAG_KEYFRAME = 2;

/** IEEE 754 half → float, exactly (NaN and ±Infinity included). */
export function float16ToFloat32(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x03ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * All 65536 halves as floats, for decoding audio: a table lookup per sample.
 * Non-finite values become 0 here so a corrupt sample can never blow up the
 * output.
 */
export const F16_AUDIO = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const v = float16ToFloat32(h);
    t[h] = Number.isFinite(v) ? v : 0;
  }
  return t;
})();

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Parses a slice header. `buf` is an ArrayBuffer. Returns null when the frame
 * is shorter than a header. `seq` is a Number (exact up to 2^53), `seqBig`
 * the exact BigInt.
 */
export function parseSliceHeader(buf) {
  if (!(buf instanceof ArrayBuffer) || buf.byteLength < HEADER_BYTES) return null;
  const v = new DataView(buf);
  const flags = v.getUint8(1);
  const seqBig = v.getBigUint64(4, true);
  const tsBig = v.getBigUint64(12, true);
  return {
    version: v.getUint8(0),
    flags,
    droppable: (flags & FLAG_DROPPABLE) !== 0,
    keyframe: (flags & FLAG_KEYFRAME) !== 0,
    kind: v.getUint16(2, true),
    seq: Number(seqBig),
    seqBig,
    timestampUs: Number(tsBig),
    payloadBytes: buf.byteLength - HEADER_BYTES,
  };
}

/** Decodes a slice's f16 LE payload (after the header) into a Float32Array. */
export function decodePcmF16(buf, offset = HEADER_BYTES) {
  const n = Math.floor((buf.byteLength - offset) / 2);
  const out = new Float32Array(n);
  if (LITTLE_ENDIAN && offset % 2 === 0) {
    const halves = new Uint16Array(buf, offset, n);
    for (let i = 0; i < n; i++) out[i] = F16_AUDIO[halves[i]];
  } else {
    const v = new DataView(buf, offset);
    for (let i = 0; i < n; i++) out[i] = F16_AUDIO[v.getUint16(i * 2, true)];
  }
  return out;
}

/** Exponential backoff with full jitter: uniform in [0, min(cap, base·2^attempt)). */
export function backoffDelayMs(attempt, { baseMs = 500, capMs = 4000, random = Math.random } = {}) {
  return random() * Math.min(capMs, baseMs * 2 ** attempt);
}

/** Close codes after which the client does not reconnect on its own. */
export const NO_RECONNECT_CODES = Object.freeze([1000, 1008, 1013, 4002]);

// ───────────────────────────────────────────────────────────────────────────
// Everything below runs in the page.

const CONFIG = Object.freeze({
  reconnect: { baseMs: 500, capMs: 4000, tries: 5 },
  /** From `new WebSocket` to `ready`/`busy`; longer counts as a failed try. */
  connectTimeoutMs: 8000,
  /** No frame at all for this long while streaming: the link is presumed dead. */
  stallMs: 6000,
  /** Jitter buffer: start (and restart after an underrun) at, trim above. */
  startMs: 250,
  maxMs: 1000,
  /** Busy without a retry_after_s: wait this long. */
  defaultBusyS: 5,
  /** Knob changes are sent at most this often while dragging. */
  paramsEveryMs: 50,
});

const STATE_TEXT = {
  idle: 'idle',
  connecting: 'connecting',
  streaming: 'streaming',
  busy: 'busy',
  reconnecting: 'reconnecting',
  ended: 'ended',
};

// Smoothed meter state (peak-hold with decay), per channel.
const meters = { l: { v: 0, hold: 0, holdAt: 0 }, r: { v: 0, hold: 0, holdAt: 0 } };

if (typeof window !== 'undefined' && typeof document !== 'undefined') {
  main();
}

function main() {
  const $ = (id) => document.getElementById(id);
  const ui = {
    pill: $('state'),
    stateText: $('state-text'),
    sessionId: $('session-id'),
    engine: $('engine'),
    scope: $('scope'),
    overlay: $('overlay'),
    overlayTitle: $('overlay-title'),
    overlayText: $('overlay-text'),
    overlayButton: $('overlay-button'),
    countdown: $('countdown'),
    meterL: $('meter-l'),
    meterR: $('meter-r'),
    dbL: $('db-l'),
    dbR: $('db-r'),
    banner: $('banner'),
    rate: $('rate'),
    rateSub: $('rate-sub'),
    drops: $('drops'),
    dropsSub: $('drops-sub'),
    rtt: $('rtt'),
    buffer: $('buffer'),
    bufFill: $('bufbar-fill'),
    acked: $('acked'),
    inflight: $('inflight'),
    link: $('link'),
    linkSub: $('link-sub'),
    knobs: $('knobs'),
    log: $('log'),
    dClient: $('d-client'),
    dUptime: $('d-uptime'),
    dWindow: $('d-window'),
    dEndpoint: $('d-endpoint'),
  };

  // ── state ──────────────────────────────────────────────────────────────
  const st = {
    state: 'idle',
    endReason: null, // 'normal' | 'policy' | 'replaced' | 'gave_up' | 'bye' | 'error'
    started: false,
    clientId: clientId(),
    sessionId: null,
    resumeToken: null,
    resumed: false,
    resumes: 0,
    sessions: 0, // how many distinct sessions this page has had
    lastSeq: 0,
    slicesReceived: 0,
    slicesPlayed: 0,
    duplicates: 0,
    acksSent: 0,
    engine: null,
    window: null,
    stats: null,
    statsAt: 0,
    attempt: 0, // consecutive failed reconnect tries
    reconnects: 0,
    nextRetryAt: 0,
    busyRetryAfterS: 0,
    busyUntil: 0,
    busyCount: 0,
    lastClose: null, // {code, reason, wasClean}
    lastError: null, // {code, message}
    lastRxAt: 0,
    connectedAt: 0,
    sessionStartedAt: 0,
    knobValues: {}, // knobs the user moved, resent in a fresh hello
    arrivals: [], // slice arrival times (ms), last ~2 s
    bytesIn: [], // [t, bytes] pairs, last ~2 s
    peaks: [], // [t, output peak] pairs, last ~1 s
    audio: { playing: false, bufferedMs: 0, underruns: 0, trimmedMs: 0, peakL: 0, peakR: 0, rmsL: 0, rmsR: 0 },
    wave: new Float32Array(256),
  };

  let ws = null;
  let gen = 0; // connection generation: callbacks of older sockets are ignored
  let timers = { connect: 0, retry: 0, busy: 0, stall: 0 };
  let ctx = null;
  let node = null;
  let srcRate = 48000;
  let unsupportedLogged = false;

  // ── debugging hook for tests and curious people ────────────────────────
  const hook = {
    get state() { return st.state; },
    get endReason() { return st.endReason; },
    get sessionId() { return st.sessionId; },
    get clientId() { return st.clientId; },
    get resumed() { return st.resumed; },
    get resumes() { return st.resumes; },
    get sessions() { return st.sessions; },
    get reconnects() { return st.reconnects; },
    get attempt() { return st.attempt; },
    get lastSeq() { return st.lastSeq; },
    get slicesReceived() { return st.slicesReceived; },
    get acksSent() { return st.acksSent; },
    get audioState() { return ctx ? ctx.state : 'none'; },
    get sampleRate() { return ctx ? ctx.sampleRate : 0; },
    get playing() { return st.audio.playing; },
    get buffered_ms() { return Math.round(st.audio.bufferedMs); },
    get underruns() { return st.audio.underruns; },
    get level() { return Math.max(st.audio.peakL, st.audio.peakR); },
    /** Loudest output peak over the last second (0 when nothing plays). */
    get peak1s() { return st.peaks.reduce((a, [, p]) => Math.max(a, p), 0); },
    get slicesPerSec() { return slicesPerSec(); },
    get stats() { return st.stats; },
    get busyRemainingS() { return st.state === 'busy' ? Math.max(0, (st.busyUntil - Date.now()) / 1000) : 0; },
    get busyRetryAfterS() { return st.busyRetryAfterS; },
    get lastClose() { return st.lastClose; },
    get lastError() { return st.lastError; },
    get wsReadyState() { return ws ? ws.readyState : -1; },
    snapshot() {
      const out = {};
      for (const k of Object.keys(Object.getOwnPropertyDescriptors(hook))) {
        if (typeof hook[k] !== 'function') out[k] = hook[k];
      }
      return out;
    },
    start: () => start(),
  };
  window.seatkeeper = hook;

  // ── boot ───────────────────────────────────────────────────────────────
  ui.overlayButton.addEventListener('click', onOverlayButton);
  window.addEventListener('pagehide', onPageHide);
  window.addEventListener('pageshow', (ev) => {
    if (ev.persisted && st.endReason === 'bye') {
      log('page restored: starting again');
      restart();
    }
  });
  // After giving up, a sign of life from the machine is worth one more go.
  const retryAfterGivingUp = (why) => {
    if (st.state === 'ended' && st.endReason === 'gave_up') {
      log(`${why}: trying again`);
      restart();
    }
  };
  window.addEventListener('online', () => retryAfterGivingUp('network is back'));
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') retryAfterGivingUp('page is visible again');
  });
  showOverlay('start', 'Ready when you are', 'Audio needs a click to start in this browser.', 'Start');
  setState('idle');
  requestAnimationFrame(draw);
  setInterval(renderFigures, 250);
  boot();

  async function boot() {
    try {
      await initAudio();
    } catch (e) {
      log(`audio unavailable: ${e && e.message ? e.message : e}`, 'bad');
      showBanner('Audio output is unavailable in this browser; the session will still stream and ack.');
    }
    if (ctx && ctx.state !== 'running') {
      // Where autoplay is allowed the context runs at once or after a tick.
      await Promise.race([ctx.resume().catch(() => {}), sleep(300)]);
    }
    if (!ctx || ctx.state === 'running') {
      log(ctx ? 'autoplay allowed: starting' : 'starting without audio');
      start();
    } else {
      log('waiting for a click to start audio');
    }
  }

  async function initAudio() {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) throw new Error('no Web Audio');
    try {
      ctx = new AC({ sampleRate: srcRate, latencyHint: 'interactive' });
    } catch {
      ctx = new AC({ latencyHint: 'interactive' });
    }
    ctx.addEventListener('statechange', () => {
      log(`audio ${ctx.state}`);
      if (ctx.state === 'suspended' && st.started) {
        showBanner('Audio is paused by the browser — click anywhere to resume.', 'info');
        document.addEventListener('click', () => ctx.resume(), { once: true });
      } else if (ctx.state === 'running') {
        hideBanner();
      }
    });
    if (!ctx.audioWorklet) throw new Error('no AudioWorklet (is the page served over http://localhost or https?)');
    await ctx.audioWorklet.addModule(new URL('worklet.js', import.meta.url));
    node = new AudioWorkletNode(ctx, 'seatkeeper-player', {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [2],
      processorOptions: { srcRate, startMs: CONFIG.startMs, maxMs: CONFIG.maxMs },
    });
    node.port.onmessage = (ev) => onWorklet(ev.data);
    node.connect(ctx.destination);
  }

  function start() {
    if (st.started) return;
    st.started = true;
    hideOverlay();
    if (ctx && ctx.state !== 'running') ctx.resume().catch(() => {});
    connect('connecting');
  }

  function restart() {
    st.started = false;
    st.endReason = null;
    st.attempt = 0;
    start();
  }

  function onOverlayButton() {
    const kind = ui.overlay.dataset.kind;
    if (ctx && ctx.state !== 'running') ctx.resume().catch(() => {});
    if (kind === 'start') start();
    else if (kind === 'busy') retryNow();
    else restart();
  }

  // ── connection ─────────────────────────────────────────────────────────
  function wsUrl() {
    const u = new URL('ws', location.href);
    u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    u.search = '';
    u.hash = '';
    return u.href;
  }

  function connect(asState) {
    clearTimers();
    const my = ++gen;
    setState(asState);
    let sock;
    try {
      sock = new WebSocket(wsUrl());
    } catch (e) {
      log(`cannot open WebSocket: ${e.message}`, 'bad');
      lost(my, { code: 1006, reason: e.message, wasClean: false });
      return;
    }
    sock.binaryType = 'arraybuffer';
    const previous = ws;
    ws = sock;
    st.connectedAt = performance.now();
    timers.connect = setTimeout(() => {
      if (my !== gen) return;
      log(`no answer within ${CONFIG.connectTimeoutMs / 1000} s`, 'warn');
      abandon(sock);
      lost(my, { code: 1006, reason: 'connect timeout', wasClean: false });
    }, CONFIG.connectTimeoutMs);

    sock.onopen = () => {
      if (my !== gen) return;
      const hello = { type: 'hello', client_id: st.clientId };
      if (st.resumeToken) hello.resume = st.resumeToken;
      if (Object.keys(st.knobValues).length) hello.engine = { ...st.knobValues };
      send(hello);
      log(st.resumeToken ? 'connected: resuming' : 'connected: hello');
    };
    sock.onmessage = (ev) => {
      if (my !== gen) return;
      st.lastRxAt = performance.now();
      if (typeof ev.data === 'string') onText(ev.data, my);
      else onSlice(ev.data);
    };
    sock.onerror = () => {};
    sock.onclose = (ev) => {
      if (my !== gen) return;
      lost(my, { code: ev.code, reason: ev.reason, wasClean: ev.wasClean });
    };
    // A socket we gave up on (stalled) stays open until the new one is
    // answered: closing it first with a clean code would end the session
    // we are about to resume. The server replaces it (4002) on resume.
    if (previous && previous !== sock) {
      const old = previous;
      const closeOld = () => abandon(old);
      sock.addEventListener('message', closeOld, { once: true });
      sock.addEventListener('close', closeOld, { once: true });
    }
  }

  /**
   * Detaches a socket's handlers and closes it. The default code is one the
   * server must not read as a clean end (it would release a session we may
   * still resume); only `bye` closes with 1000.
   */
  function abandon(sock, code = 4000, reason = 'abandoned by client') {
    sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
    try {
      if (sock.readyState === WebSocket.CONNECTING || sock.readyState === WebSocket.OPEN) {
        sock.close(code, reason);
      }
    } catch {
      /* already closed */
    }
  }

  function send(msg) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  function clearTimers() {
    for (const k of Object.keys(timers)) {
      clearTimeout(timers[k]);
      clearInterval(timers[k]);
      timers[k] = 0;
    }
  }

  function lost(my, close) {
    if (my !== gen) return;
    gen++; // whatever that socket still says is stale now
    clearTimers();
    st.lastClose = close;
    const what = `closed ${close.code}${close.reason ? ` (${close.reason})` : ''}`;
    if (st.state === 'ended') return;
    if (close.code === 1013 || (st.state === 'busy' && st.busyUntil === 0)) {
      log(what, 'warn');
      enterBusy(st.busyRetryAfterS || CONFIG.defaultBusyS);
    } else if (close.code === 4002) {
      log(`${what}: another connection took this session over`, 'warn');
      end('replaced', 'Session moved elsewhere', 'Another tab or connection resumed this session. This page stays quiet so the two do not fight over the seat.', 'New session');
    } else if (close.code === 1000) {
      log(what, 'warn');
      end('normal', 'Session ended', close.reason || 'The server ended the session.', 'Start again');
    } else if (close.code === 1008) {
      log(what, 'bad');
      const msg = st.lastError ? `${st.lastError.code}: ${st.lastError.message}` : close.reason || 'Refused by the server (policy).';
      end('policy', 'Refused', msg, 'Try again');
    } else if (st.state === 'busy') {
      // A busy answer whose 1013 got lost on the way: still busy.
      log(what, 'warn');
    } else {
      log(what, 'warn');
      scheduleReconnect();
    }
  }

  function scheduleReconnect() {
    const { baseMs, capMs, tries } = CONFIG.reconnect;
    if (st.attempt >= tries) {
      log(`gave up after ${tries} tries`, 'bad');
      end('gave_up', 'Connection lost', `No answer from the server after ${tries} tries.`, 'Reconnect');
      return;
    }
    const delay = backoffDelayMs(st.attempt, { baseMs, capMs });
    st.attempt++;
    st.reconnects++;
    st.nextRetryAt = performance.now() + delay;
    setState('reconnecting');
    log(`reconnecting in ${(delay / 1000).toFixed(2)} s (try ${st.attempt}/${tries})`);
    timers.retry = setTimeout(() => connect('reconnecting'), delay);
  }

  function enterBusy(retryAfterS) {
    clearTimers();
    const s = Math.max(0.5, Number(retryAfterS) || CONFIG.defaultBusyS);
    st.busyRetryAfterS = s;
    st.busyUntil = Date.now() + s * 1000;
    st.busyCount++;
    setState('busy');
    const tick = () => {
      const left = Math.max(0, st.busyUntil - Date.now());
      ui.countdown.textContent = String(Math.ceil(left / 1000));
      ui.countdown.style.setProperty('--p', String(left / (s * 1000)));
      if (left <= 0) retryNow();
    };
    showOverlay('busy', 'All seats are taken', 'Someone else holds the seat right now. Trying again when the countdown ends.', 'Retry now');
    ui.countdown.hidden = false;
    tick();
    timers.busy = setInterval(tick, 100);
  }

  function retryNow() {
    clearTimers();
    st.busyUntil = 0;
    hideOverlay();
    connect('connecting');
  }

  function end(reason, title, text, button) {
    clearTimers();
    st.endReason = reason;
    st.started = false;
    // Only a lost connection may still be resumed; after a replacement the
    // token would take the session back from whoever has it now.
    if (reason !== 'gave_up') st.resumeToken = null;
    setState('ended');
    if (title) showOverlay(reason === 'replaced' ? 'replaced' : 'ended', title, text, button);
    if (node) node.port.postMessage({ type: 'flush' });
  }

  function onPageHide() {
    if (!ws) return;
    const sock = ws;
    const said = send({ type: 'bye' });
    gen++;
    clearTimers();
    abandon(sock, 1000, 'bye');
    st.endReason = 'bye';
    st.started = false;
    st.resumeToken = null;
    setState('ended');
    if (said) log('bye');
  }

  // ── messages ───────────────────────────────────────────────────────────
  function onText(text, my) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      log('server sent a text frame that is not JSON', 'bad');
      return;
    }
    switch (msg && msg.type) {
      case 'ready':
        onReady(msg);
        break;
      case 'busy':
        clearTimeout(timers.connect);
        st.busyRetryAfterS = Number(msg.retry_after_s) || CONFIG.defaultBusyS;
        log(`busy: retry in ${st.busyRetryAfterS} s`, 'warn');
        st.busyUntil = 0;
        setState('busy');
        // The server closes with 1013 next; if it does not, do not wait for it.
        timers.connect = setTimeout(() => {
          if (my !== gen) return;
          abandon(ws);
          lost(my, { code: 1013, reason: 'busy', wasClean: false });
        }, 1500);
        break;
      case 'error':
        st.lastError = { code: String(msg.code), message: String(msg.message) };
        log(`error ${msg.code}: ${msg.message}`, 'bad');
        showBanner(`${msg.code}: ${msg.message}`);
        break;
      case 'stats':
        st.stats = msg;
        st.statsAt = performance.now();
        break;
      default:
        break; // newer servers may say more
    }
  }

  function onReady(msg) {
    clearTimeout(timers.connect);
    const sameSession = msg.session_id === st.sessionId;
    st.resumed = !!msg.resumed;
    if (msg.resumed && sameSession) {
      st.resumes++;
      log(`resumed session ${msg.session_id}`, 'ok');
    } else {
      if (st.sessionId) log(`new session ${msg.session_id} (the old one could not be resumed)`, 'warn');
      else log(`session ${msg.session_id}`, 'ok');
      st.sessions++;
      st.lastSeq = 0;
      st.stats = null;
    }
    if (!(msg.resumed && sameSession)) st.sessionStartedAt = performance.now();
    st.sessionId = msg.session_id;
    st.resumeToken = msg.resume_token || null;
    st.window = msg.window || null;
    st.attempt = 0;
    st.lastError = null;
    hideBanner();
    setEngine(msg.engine || {});
    setState('streaming');
    hideOverlay();
    armStallWatch();
  }

  function armStallWatch() {
    clearInterval(timers.stall);
    const my = gen;
    timers.stall = setInterval(() => {
      if (my !== gen || st.state !== 'streaming') return;
      if (performance.now() - st.lastRxAt > CONFIG.stallMs) {
        // Half-open link (a slept laptop, a dead NAT entry): no close will
        // come. Reconnect now; the old socket is closed once the new one is
        // answered, and the server hands the session over (4002 to the old).
        log(`nothing received for ${CONFIG.stallMs / 1000} s: link presumed dead`, 'warn');
        const stale = ws;
        gen++;
        clearTimers();
        if (stale) {
          stale.onopen = stale.onmessage = stale.onclose = stale.onerror = null;
        }
        scheduleReconnect();
      }
    }, 500);
  }

  function onSlice(buf) {
    const h = parseSliceHeader(buf);
    if (!h) {
      log('short binary frame ignored', 'warn');
      return;
    }
    st.slicesReceived++;
    const now = performance.now();
    st.arrivals.push(now);
    st.bytesIn.push([now, buf.byteLength]);
    if (h.seq <= st.lastSeq) {
      // A slice we already have (a resend after resume): ack, don't replay.
      st.duplicates++;
      ack(st.lastSeq);
      return;
    }
    const eng = st.engine || {};
    const kind = eng.kind ?? KIND_PCM_F16;
    if (h.version === SLICE_VERSION && h.kind === kind && h.kind === KIND_PCM_F16 && (!eng.format || eng.format === 'pcm_f16le')) {
      const pcm = decodePcmF16(buf);
      if (node) node.port.postMessage({ type: 'pcm', data: pcm, channels: eng.channels || 2 }, [pcm.buffer]);
      st.slicesPlayed++;
    } else if (!unsupportedLogged) {
      unsupportedLogged = true;
      log(`slice v${h.version} kind ${h.kind} is not playable here; acking without playing`, 'warn');
    }
    st.lastSeq = h.seq;
    ack(h.seq);
  }

  function ack(seq) {
    if (send({ type: 'ack', seq })) st.acksSent++;
  }

  function onWorklet(m) {
    if (!m || m.type !== 'status') return;
    st.audio = m;
    if (m.wave) st.wave = m.wave;
    const now = performance.now();
    st.peaks.push([now, Math.max(m.peakL, m.peakR)]);
    while (st.peaks.length && now - st.peaks[0][0] > 1000) st.peaks.shift();
  }

  // ── engine knobs ───────────────────────────────────────────────────────
  function setEngine(engine) {
    const prev = st.engine;
    st.engine = engine;
    const rate = Number(engine.sample_rate) || 48000;
    if (rate !== srcRate && node) {
      srcRate = rate;
      node.port.postMessage({ type: 'config', srcRate, startMs: CONFIG.startMs, maxMs: CONFIG.maxMs });
    }
    const bits = [engine.name || 'engine'];
    if (engine.format) bits.push(engine.format);
    if (engine.sample_rate) bits.push(`${engine.sample_rate / 1000} kHz`);
    if (engine.channels) bits.push(engine.channels === 2 ? 'stereo' : `${engine.channels} ch`);
    if (engine.slice_ms) bits.push(`${engine.slice_ms} ms`);
    ui.engine.textContent = bits.join(' · ');
    const knobs = Array.isArray(engine.knobs) ? engine.knobs : [];
    const same = prev && JSON.stringify((prev.knobs || []).map((k) => k.name)) === JSON.stringify(knobs.map((k) => k.name));
    if (same && ui.knobs.querySelector('input')) {
      for (const k of knobs) {
        const input = ui.knobs.querySelector(`input[data-name="${cssEscape(k.name)}"]`);
        if (input && document.activeElement !== input && typeof k.value === 'number') setKnobValue(input, k.value);
      }
      return;
    }
    ui.knobs.textContent = '';
    if (!knobs.length) {
      const p = document.createElement('p');
      p.className = 'muted';
      p.textContent = 'This engine has no knobs.';
      ui.knobs.append(p);
      return;
    }
    for (const k of knobs) ui.knobs.append(knobRow(k));
  }

  function knobRow(k) {
    const row = document.createElement('div');
    row.className = 'knob';
    const id = `knob-${String(k.name).replace(/[^a-z0-9_-]/gi, '_')}`;
    const label = document.createElement('label');
    label.htmlFor = id;
    label.textContent = String(k.name);
    const input = document.createElement('input');
    input.type = 'range';
    input.id = id;
    input.dataset.name = String(k.name);
    input.min = String(k.min ?? 0);
    input.max = String(k.max ?? 1);
    input.step = String(k.step ?? 'any');
    const out = document.createElement('output');
    out.htmlFor = id;
    row.append(label, input, out);
    setKnobValue(input, typeof k.value === 'number' ? k.value : Number(input.min));
    let timer = 0;
    let lastSent = 0;
    const push = () => {
      timer = 0;
      lastSent = performance.now();
      const value = knobNumber(input);
      st.knobValues[input.dataset.name] = value;
      send({ type: 'params', [input.dataset.name]: value });
    };
    input.addEventListener('input', () => {
      setKnobValue(input, knobNumber(input));
      const wait = CONFIG.paramsEveryMs - (performance.now() - lastSent);
      if (wait <= 0) push();
      else if (!timer) timer = setTimeout(push, wait);
    });
    input.addEventListener('change', () => {
      clearTimeout(timer);
      push();
    });
    return row;
  }

  function knobNumber(input) {
    const v = Number(input.value);
    const step = Number(input.step);
    return Number.isInteger(step) && step >= 1 ? Math.round(v) : Math.round(v * 1e6) / 1e6;
  }

  function setKnobValue(input, value) {
    input.value = String(value);
    const min = Number(input.min);
    const max = Number(input.max);
    const p = max > min ? ((Number(input.value) - min) / (max - min)) * 100 : 0;
    input.style.setProperty('--fill', `${p}%`);
    const out = input.parentElement && input.parentElement.querySelector('output');
    if (out) {
      const step = Number(input.step);
      out.textContent = Number.isInteger(step) && step >= 1 ? String(Math.round(value)) : Number(value).toFixed(2);
    }
  }

  // ── rendering ──────────────────────────────────────────────────────────
  function setState(s) {
    if (st.state !== s) {
      st.state = s;
      document.documentElement.dataset.state = s;
    }
    ui.pill.dataset.state = s;
    let text = STATE_TEXT[s] || s;
    if (s === 'ended' && st.endReason === 'replaced') text = 'replaced';
    ui.stateText.textContent = text;
    for (const input of ui.knobs.querySelectorAll('input')) input.disabled = s !== 'streaming';
  }

  function showOverlay(kind, title, text, button) {
    ui.overlay.dataset.kind = kind;
    ui.overlayTitle.textContent = title;
    ui.overlayText.textContent = text;
    ui.overlayButton.textContent = button || 'OK';
    ui.overlayButton.hidden = !button;
    ui.countdown.hidden = kind !== 'busy';
    ui.overlay.hidden = false;
  }

  function hideOverlay() {
    ui.overlay.hidden = true;
    ui.countdown.hidden = true;
  }

  function showBanner(text, kind) {
    ui.banner.textContent = text;
    ui.banner.className = `banner${kind ? ` ${kind}` : ''}`;
    ui.banner.hidden = false;
  }

  function hideBanner() {
    ui.banner.hidden = true;
  }

  function slicesPerSec() {
    const now = performance.now();
    while (st.arrivals.length && now - st.arrivals[0] > 2000) st.arrivals.shift();
    while (st.bytesIn.length && now - st.bytesIn[0][0] > 2000) st.bytesIn.shift();
    const span = Math.min(2000, now - (st.connectedAt || now));
    if (span < 500) return st.arrivals.length ? st.arrivals.length / (span / 1000 || 1) : 0;
    return st.arrivals.length / (span / 1000);
  }

  function renderFigures() {
    renderDetails();
    const streaming = st.state === 'streaming';
    ui.sessionId.textContent = st.sessionId || '—';
    const rate = slicesPerSec();
    ui.rate.textContent = streaming || rate ? rate.toFixed(1) : '—';
    const kbps = st.bytesIn.reduce((a, [, b]) => a + b, 0) * 8 / 2 / 1000;
    ui.rateSub.textContent = streaming ? `${kbps >= 1000 ? `${(kbps / 1000).toFixed(2)} Mbit/s` : `${kbps.toFixed(0)} kbit/s`}` : '—';
    const s = st.stats;
    if (s) {
      ui.drops.textContent = String(s.slices_dropped ?? 0);
      ui.drops.classList.toggle('warn', (s.slices_dropped || 0) > 0);
      const sent = Number(s.slices_sent) || 0;
      const dropped = Number(s.slices_dropped) || 0;
      ui.dropsSub.textContent = sent + dropped ? `${((dropped / (sent + dropped)) * 100).toFixed(1)} % of ${sent + dropped}` : 'by flow control';
      ui.rtt.textContent = s.rtt_us == null ? '—' : fmtRtt(Number(s.rtt_us));
      ui.inflight.textContent = `${s.in_flight ?? 0} in flight${st.window ? ` / ${st.window.slices}` : ''}`;
    } else {
      ui.drops.textContent = '—';
      ui.rtt.textContent = '—';
      ui.inflight.textContent = st.window ? `window ${st.window.slices}` : '—';
    }
    ui.acked.textContent = st.lastSeq ? `#${st.lastSeq}` : '—';
    const buffered = st.audio.bufferedMs || 0;
    ui.buffer.textContent = ctx && ctx.state === 'running' ? `${Math.round(buffered)} ms` : ctx ? ctx.state : 'no audio';
    ui.buffer.classList.toggle('warn', !st.audio.playing && streaming);
    ui.bufFill.style.width = `${Math.min(100, buffered / 10)}%`;
    if (st.state === 'reconnecting') {
      const left = Math.max(0, st.nextRetryAt - performance.now());
      ui.link.textContent = `try ${st.attempt}/${CONFIG.reconnect.tries}`;
      ui.linkSub.textContent = left > 0 ? `next in ${(left / 1000).toFixed(1)} s` : 'connecting…';
    } else {
      const changes = st.resumes + Math.max(0, st.sessions - 1);
      ui.link.textContent = !st.sessionId ? '—' : changes === 0 ? 'steady' : st.resumes ? `${st.resumes} resume${st.resumes === 1 ? '' : 's'}` : `${st.sessions} sessions`;
      ui.linkSub.textContent = `${st.audio.underruns || 0} underrun${st.audio.underruns === 1 ? '' : 's'}`;
    }
  }

  function renderDetails() {
    ui.dClient.textContent = st.clientId;
    ui.dEndpoint.textContent = wsUrl().replace(/^wss?:\/\//, '');
    ui.dEndpoint.title = wsUrl();
    const w = st.window;
    ui.dWindow.textContent = w ? `${w.slices} slices · ${fmtBytes(w.bytes)}` : '—';
    if (st.sessionId && st.sessionStartedAt && st.state !== 'ended') {
      const s = Math.floor((performance.now() - st.sessionStartedAt) / 1000);
      ui.dUptime.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
    } else if (!st.sessionId) {
      ui.dUptime.textContent = '—';
    }
  }

  function fmtBytes(b) {
    const n = Number(b) || 0;
    if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(n % (1 << 20) ? 1 : 0)} MiB`;
    if (n >= 1024) return `${Math.round(n / 1024)} KiB`;
    return `${n} B`;
  }

  function fmtRtt(us) {
    if (us < 1000) return `${us} µs`;
    if (us < 10000) return `${(us / 1000).toFixed(2)} ms`;
    return `${Math.round(us / 1000)} ms`;
  }

  function draw(t) {
    drawScope();
    drawMeter(ui.meterL, meters.l, st.audio.peakL || 0, ui.dbL, t);
    drawMeter(ui.meterR, meters.r, st.audio.peakR || 0, ui.dbR, t);
    requestAnimationFrame(draw);
  }

  function fitCanvas(c) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * dpr));
    const h = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width !== w || c.height !== h) {
      c.width = w;
      c.height = h;
    }
    return [w, h, dpr];
  }

  function drawScope() {
    const c = ui.scope;
    const [w, h, dpr] = fitCanvas(c);
    const g = c.getContext('2d');
    g.clearRect(0, 0, w, h);
    const mid = h / 2;
    g.strokeStyle = 'rgba(255,255,255,0.08)';
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(0, mid);
    g.lineTo(w, mid);
    g.stroke();
    const wave = st.wave;
    const n = wave.length;
    if (!n) return;
    // Auto-gain (gently) so quiet material is still visible.
    let peak = 0;
    for (let i = 0; i < n; i++) peak = Math.max(peak, Math.abs(wave[i]));
    const gain = peak > 0.001 ? Math.min(4, 0.8 / peak) : 1;
    const grad = g.createLinearGradient(0, 0, w, 0);
    grad.addColorStop(0, '#7c9cff');
    grad.addColorStop(1, '#4fd1c5');
    g.lineJoin = 'round';
    g.lineCap = 'round';
    // A wide soft stroke under a sharp one: a glow without filters.
    for (const [width, alpha] of [[8 * dpr, 0.12], [2.2 * dpr, 1]]) {
      g.globalAlpha = alpha;
      g.strokeStyle = grad;
      g.lineWidth = width;
      g.beginPath();
      for (let i = 0; i < n; i++) {
        const x = (i / (n - 1)) * w;
        const y = mid - wave[i] * gain * (h * 0.42);
        if (i === 0) g.moveTo(x, y);
        else g.lineTo(x, y);
      }
      g.stroke();
    }
    g.globalAlpha = 1;
  }

  function drawMeter(c, m, peak, label, t) {
    const [w, h] = fitCanvas(c);
    const g = c.getContext('2d');
    // Fast attack, slow release; a peak marker that holds for a second.
    m.v = peak > m.v ? peak : m.v * 0.9 + peak * 0.1;
    if (peak >= m.hold || t - m.holdAt > 1000) {
      m.hold = peak;
      m.holdAt = t;
    }
    const db = (x) => (x > 0 ? 20 * Math.log10(x) : -Infinity);
    const pos = (x) => Math.max(0, Math.min(1, (db(x) + 60) / 60)); // −60 dB … 0 dB
    g.clearRect(0, 0, w, h);
    const grad = g.createLinearGradient(0, 0, w, 0);
    grad.addColorStop(0, '#3ddc97');
    grad.addColorStop(0.75, '#4fd1c5');
    grad.addColorStop(0.9, '#f6c453');
    grad.addColorStop(1, '#ff6b6b');
    g.fillStyle = grad;
    g.fillRect(0, 0, pos(m.v) * w, h);
    if (pos(m.hold) > 0) {
      g.fillStyle = 'rgba(255,255,255,0.85)';
      g.fillRect(Math.max(0, pos(m.hold) * w - 2), 0, 2, h);
    }
    const d = db(m.v);
    label.textContent = Number.isFinite(d) && d > -90 ? `${d.toFixed(1)} dB` : '−∞';
  }

  // ── log ────────────────────────────────────────────────────────────────
  function log(text, kind) {
    const li = document.createElement('li');
    if (kind) li.className = kind;
    const time = document.createElement('time');
    const d = new Date();
    time.textContent = `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
    const span = document.createElement('span');
    span.textContent = text;
    li.append(time, span);
    ui.log.prepend(li);
    while (ui.log.children.length > 80) ui.log.lastChild.remove();
    if (window.console && console.debug) console.debug(`[seatkeeper] ${text}`);
  }

  function clientId() {
    try {
      let id = sessionStorage.getItem('seatkeeper.client_id');
      if (!id) {
        id = `tab-${randomHex(4)}`;
        sessionStorage.setItem('seatkeeper.client_id', id);
      }
      return id;
    } catch {
      return `tab-${randomHex(4)}`;
    }
  }
}

function randomHex(bytes) {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function cssEscape(s) {
  return window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/["\\]/g, '\\$&');
}
