// The connection as a pure state machine: events in, actions out. It owns
// no socket and no timer, so every path (resume, busy, 4002, backoff, give
// up) is testable in Node without a network; src/client.js is the thin
// driver that turns its actions into WebSocket calls and timers.
//
//   idle ─start─▶ connecting ─ready─▶ streaming ─lost─▶ reconnecting ─ready─▶ streaming
//                    │                    │                 │ (full-jitter backoff, give-up limit)
//                    └──busy + 1013──▶ busy (retry_after_s, then connecting)
//                                         └─ 1000 / 1008 / 4002 / disconnect() / gave up ─▶ ended
//
// Events (all carry `now`, a monotonic ms clock):
//   {type:'start'} {type:'open'} {type:'message', msg} {type:'slice', seq, bufferMs?}
//   {type:'close', code, reason, wasClean} {type:'timer', name} {type:'online'} {type:'retry'}
//   {type:'params', values} {type:'stop', bye?} {type:'seat_token', token}
// Actions:
//   {type:'connect'}                 open a new socket (the previous one is gone)
//   {type:'send', msg}               send JSON on the current socket
//   {type:'close', code, reason}     detach the current socket and close it
//   {type:'drop'}                    detach the current socket but keep it open until
//                                    the next one is answered (closing it first could
//                                    end the session we are about to resume)
//   {type:'deliver', seq}            the slice just reported is new: play it
//   {type:'setTimer', name, ms} {type:'clearTimer', name}
//   {type:'emit', name, detail}      an event for the application

import { backoffDelayMs, BACKOFF_BASE_MS, BACKOFF_CAP_MS } from './backoff.js';
import { CLOSE, isTerminalClose } from './codes.js';

export const DEFAULTS = Object.freeze({
  clientId: undefined,
  /** `hello.engine`: configuration for a new session (knobs, model choice). */
  engine: undefined,
  /** A pool seat token for the first fresh `hello` (single use). */
  seatToken: undefined,
  baseMs: BACKOFF_BASE_MS,
  capMs: BACKOFF_CAP_MS,
  /** Consecutive failed tries before giving up (`Infinity`: never). */
  maxAttempts: 10,
  /** From `connect` to `ready`/`busy`; longer counts as a failed try. */
  connectTimeoutMs: 8000,
  /** Nothing received for this long while streaming: the link is presumed dead (0: off). */
  stallMs: 6000,
  /** The backoff resets only after this long streaming (a server that accepts and closes must not loop fast). */
  healthyMs: 10_000,
  /** Busy without a retry_after_s. */
  defaultBusyS: 5,
  /** Extra random wait after retry_after_s, as a fraction of it (spreads a crowd). */
  busyJitter: 0.1,
  /** After `busy`, the server closes with 1013; if it does not, stop waiting after this. */
  busyCloseMs: 1500,
  random: Math.random,
});

export const STATES = Object.freeze(['idle', 'connecting', 'streaming', 'reconnecting', 'busy', 'ended']);

/** Creates a machine. `options` override DEFAULTS. */
export function createMachine(options = {}) {
  const o = { ...DEFAULTS, ...options };
  const s = {
    state: 'idle',
    endReason: null, // 'normal' | 'replaced' | 'policy' | 'refused' | 'gave_up' | 'bye'
    socket: false, // a socket exists (connecting or open)
    open: false,
    sessionId: null,
    resumeToken: null,
    seatToken: o.seatToken || null,
    resumed: false,
    resumes: 0,
    sessions: 0,
    lastSeq: 0,
    duplicates: 0,
    acksSent: 0,
    attempt: 0,
    reconnects: 0,
    nextRetryAt: 0,
    busyPending: false,
    busyRetryAfterS: 0,
    busyUntil: 0,
    lastClose: null,
    lastError: null,
    lastRxAt: 0,
    retryPending: false,
    knobs: {},
  };
  let out = [];
  const act = (a) => out.push(a);
  const emit = (name, detail) => act({ type: 'emit', name, detail });
  const timer = (name, ms) => act({ type: 'setTimer', name, ms: Math.max(0, ms) });
  const clear = (...names) => names.forEach((name) => act({ type: 'clearTimer', name }));
  const setState = (next) => {
    if (s.state === next) return;
    const prev = s.state;
    s.state = next;
    emit('state', { state: next, prev });
  };

  function connect(now, state) {
    s.socket = true;
    s.open = false;
    setState(state);
    act({ type: 'connect' });
    timer('connect', o.connectTimeoutMs);
    emit('connecting', { attempt: s.attempt, resuming: !!s.resumeToken });
    s.lastRxAt = now;
  }

  function hello() {
    const msg = { type: 'hello' };
    if (o.clientId) msg.client_id = String(o.clientId);
    if (s.resumeToken) msg.resume = s.resumeToken;
    if (s.seatToken) msg.seat_token = s.seatToken;
    const engine = { ...(o.engine || {}), ...s.knobs };
    if (Object.keys(engine).length) msg.engine = engine;
    return msg;
  }

  function end(reason, detail = {}) {
    clear('connect', 'retry', 'busy', 'busyClose', 'stall', 'healthy');
    s.retryPending = false;
    s.busyPending = false;
    s.endReason = reason;
    // Only a lost connection may still be resumed; after a replacement the
    // token would take the session back from whoever holds it now.
    if (reason !== 'gave_up') s.resumeToken = null;
    setState('ended');
    emit('ended', { reason, close: s.lastClose, error: s.lastError, ...detail });
  }

  function scheduleReconnect(now) {
    if (s.attempt >= o.maxAttempts) {
      end('gave_up', { attempts: s.attempt });
      return;
    }
    const delayMs = backoffDelayMs(s.attempt, { baseMs: o.baseMs, capMs: o.capMs, random: o.random });
    s.attempt++;
    s.reconnects++;
    s.nextRetryAt = now + delayMs;
    s.retryPending = true;
    setState('reconnecting');
    timer('retry', delayMs);
    emit('reconnecting', { attempt: s.attempt, maxAttempts: o.maxAttempts, delayMs, close: s.lastClose });
  }

  function enterBusy(now) {
    clear('connect', 'busyClose', 'stall', 'healthy');
    s.busyPending = false;
    const base = Math.max(0.5, Number(s.busyRetryAfterS) || o.defaultBusyS);
    s.busyRetryAfterS = base;
    const ms = base * 1000 * (1 + o.busyJitter * o.random());
    s.busyUntil = now + ms;
    setState('busy');
    timer('busy', ms);
    emit('busy', { retryAfterS: base, retryInMs: ms });
  }

  /** The transport is gone (close event, timeout, stall): decide what next. */
  function lost(now, close) {
    s.socket = false;
    s.open = false;
    s.lastClose = close;
    clear('connect', 'stall', 'healthy', 'busyClose');
    if (s.state === 'ended' || s.state === 'idle') return;
    emit('disconnected', close);
    const code = close.code;
    if (code === CLOSE.BUSY || s.busyPending) enterBusy(now);
    else if (code === CLOSE.REPLACED) end('replaced');
    else if (code === CLOSE.NORMAL) end('normal');
    else if (code === CLOSE.POLICY) end('policy');
    else if (isTerminalClose(code)) end('refused');
    else scheduleReconnect(now);
  }

  function onMessage(now, msg) {
    s.lastRxAt = now;
    switch (msg && msg.type) {
      case 'ready': {
        clear('connect', 'busyClose');
        const same = msg.session_id === s.sessionId;
        s.resumed = !!msg.resumed && same;
        if (s.resumed) s.resumes++;
        else {
          s.sessions++;
          s.lastSeq = 0;
          // A seat token admits one fresh session; this was it.
          s.seatToken = null;
        }
        s.sessionId = msg.session_id;
        s.resumeToken = msg.resume_token || null;
        s.lastError = null;
        s.busyRetryAfterS = 0;
        setState('streaming');
        timer('healthy', o.healthyMs);
        if (o.stallMs > 0) timer('stall', o.stallMs);
        emit('ready', { ...msg, resumed: s.resumed, recovered: s.resumed });
        break;
      }
      case 'busy':
        clear('connect');
        s.busyPending = true;
        s.busyRetryAfterS = Number(msg.retry_after_s) || o.defaultBusyS;
        timer('busyClose', o.busyCloseMs);
        break;
      case 'error':
        s.lastError = { code: String(msg.code), message: String(msg.message) };
        emit('error', s.lastError);
        break;
      case 'stats':
        emit('stats', msg);
        break;
      default:
        emit('message', msg); // newer servers may say more
    }
  }

  function onSlice(now, ev) {
    s.lastRxAt = now;
    if (s.state !== 'streaming') return;
    const ack = (seq) => {
      const msg = { type: 'ack', seq };
      if (typeof ev.bufferMs === 'number' && Number.isFinite(ev.bufferMs)) msg.buffer_ms = Math.max(0, Math.round(ev.bufferMs));
      s.acksSent++;
      act({ type: 'send', msg });
    };
    if (ev.seq <= s.lastSeq) {
      // Resent after a resume: ack again, do not play twice.
      s.duplicates++;
      ack(s.lastSeq);
      return;
    }
    s.lastSeq = ev.seq;
    act({ type: 'deliver', seq: ev.seq });
    ack(ev.seq);
  }

  function onTimer(now, name) {
    switch (name) {
      case 'connect':
        if (!s.socket) return;
        act({ type: 'close', code: 4000, reason: 'connect timeout' });
        lost(now, { code: CLOSE.ABNORMAL, reason: 'connect timeout', wasClean: false });
        break;
      case 'retry':
        if (!s.retryPending) return;
        s.retryPending = false;
        connect(now, 'reconnecting');
        break;
      case 'busy':
        if (s.state !== 'busy') return;
        s.busyUntil = 0;
        connect(now, 'connecting');
        break;
      case 'busyClose':
        if (!s.busyPending || !s.socket) return;
        act({ type: 'close', code: 4000, reason: 'busy' });
        lost(now, { code: CLOSE.BUSY, reason: 'busy', wasClean: false });
        break;
      case 'healthy':
        if (s.state === 'streaming') s.attempt = 0;
        break;
      case 'stall': {
        if (s.state !== 'streaming' || !(o.stallMs > 0)) return;
        const quiet = now - s.lastRxAt;
        if (quiet < o.stallMs) {
          timer('stall', o.stallMs - quiet);
          return;
        }
        // A half-open link (a slept laptop, a dead NAT entry): no close will
        // come. Reconnect now; the server hands the session to the new
        // socket and closes the old one with 4002.
        act({ type: 'drop' });
        lost(now, { code: CLOSE.ABNORMAL, reason: `nothing received for ${Math.round(quiet)} ms`, wasClean: false });
        break;
      }
      default:
        break;
    }
  }

  function handle(ev) {
    out = [];
    const now = ev.now ?? 0;
    switch (ev.type) {
      case 'start':
        if (s.state === 'idle' || s.state === 'ended') {
          s.endReason = null;
          s.attempt = 0;
          s.lastError = null;
          connect(now, 'connecting');
        }
        break;
      case 'open':
        if (!s.socket) break;
        s.open = true;
        s.lastRxAt = now;
        act({ type: 'send', msg: hello() });
        emit('open', { resuming: !!s.resumeToken });
        break;
      case 'message':
        if (s.socket) onMessage(now, ev.msg);
        break;
      case 'slice':
        if (s.socket) onSlice(now, ev);
        break;
      case 'close':
        if (s.socket) lost(now, { code: ev.code ?? CLOSE.ABNORMAL, reason: ev.reason || '', wasClean: !!ev.wasClean });
        break;
      case 'timer':
        onTimer(now, ev.name);
        break;
      case 'retry':
        // "Retry now" (a button on the busy screen): skip the wait.
        if (s.state === 'busy') {
          clear('busy');
          s.busyUntil = 0;
          connect(now, 'connecting');
          break;
        }
      // falls through: while reconnecting, a retry now is what `online` does
      case 'online':
        // The network is back: do not sit out the rest of a long backoff.
        if (s.state === 'reconnecting' && s.retryPending) {
          clear('retry');
          s.retryPending = false;
          connect(now, 'reconnecting');
        } else if (s.state === 'ended' && s.endReason === 'gave_up') {
          s.endReason = null;
          s.attempt = 0;
          connect(now, 'reconnecting');
        }
        break;
      case 'params': {
        const values = ev.values || {};
        Object.assign(s.knobs, values);
        if (s.state === 'streaming' && s.open) act({ type: 'send', msg: { ...values, type: 'params' } });
        break;
      }
      case 'seat_token':
        s.seatToken = ev.token || null;
        break;
      case 'stop': {
        if (s.state === 'ended' || s.state === 'idle') break;
        if (s.socket) {
          if (s.open && ev.bye !== false) act({ type: 'send', msg: { type: 'bye' } });
          act({ type: 'close', code: CLOSE.NORMAL, reason: 'bye' });
          s.socket = false;
          s.open = false;
        }
        end('bye');
        break;
      }
      default:
        break;
    }
    return out;
  }

  const snapshot = () => ({
    state: s.state,
    endReason: s.endReason,
    sessionId: s.sessionId,
    resumed: s.resumed,
    resumes: s.resumes,
    sessions: s.sessions,
    lastSeq: s.lastSeq,
    duplicates: s.duplicates,
    acksSent: s.acksSent,
    attempt: s.attempt,
    maxAttempts: o.maxAttempts,
    reconnects: s.reconnects,
    nextRetryAt: s.nextRetryAt,
    busyRetryAfterS: s.busyRetryAfterS,
    busyUntil: s.busyUntil,
    lastClose: s.lastClose,
    lastError: s.lastError,
    hasResumeToken: !!s.resumeToken,
    hasSeatToken: !!s.seatToken,
  });

  return {
    handle,
    snapshot,
    get state() {
      return s.state;
    },
    get options() {
      return o;
    },
  };
}
