// seatkeeper — the web client page, built on the seatkeeper-client package
// (served by the binary under /sdk/). This file wires the package's one
// event map to the page; the drawing lives in ui/.
//
//   idle ─start─▶ connecting ─ready─▶ streaming ─lost─▶ reconnecting ─ready─▶ streaming
//                     └──busy──▶ busy (countdown) ──▶ connecting
//                                         └─ 1000 / 1008 / 4002 / pagehide / gave up ─▶ ended
//
// `window.seatkeeper` exposes the state for the e2e suite and for debugging.

import { SeatkeeperClient, SeatkeeperPlayer } from './sdk/index.js';
import * as view from './ui/view.js';
import { knobPanel } from './ui/knobs.js';
import { rateMeter, renderFigures, engineLine } from './ui/figures.js';
import { startDrawing } from './ui/draw.js';

const ui = view.elements();
const clientId = tabId();
const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
const player = new SeatkeeperPlayer({ startMs: 250, maxMs: 1000 });
const client = new SeatkeeperClient({ url, clientId, player, maxAttempts: 10 });
const rate = rateMeter();
const knobs = knobPanel(ui.knobs, (name, value) => client.setParams({ [name]: value }));
const log = (text, kind) => view.log(ui, text, kind);

const page = {
  slicesReceived: 0,
  sessionStartedAt: 0,
  window: null,
  peaks: [], // [t, output peak], the last second
  busyTimer: 0,
  audioFailed: false,
};

// ── the client's events ───────────────────────────────────────────────────
client.on('state', ({ state }) => {
  const s = client.snapshot();
  view.setPill(ui, state, state === 'ended' && s.endReason === 'replaced' ? 'replaced' : state);
  knobs.setEnabled(state === 'streaming');
  if (state !== 'busy') stopCountdown();
});
client.on('connecting', ({ resuming }) => {
  view.hideOverlay(ui);
  log(resuming ? 'connecting: resuming' : 'connecting');
});
client.on('ready', (r) => {
  if (r.recovered) log(`resumed session ${r.session_id}`, 'ok');
  else {
    log(page.sessionStartedAt ? `new session ${r.session_id}` : `session ${r.session_id}`, 'ok');
    page.sessionStartedAt = performance.now();
  }
  page.window = r.window || null;
  ui.engine.textContent = engineLine(r.engine || {});
  knobs.render((r.engine || {}).knobs);
  knobs.setEnabled(true);
  view.hideOverlay(ui);
  view.hideBanner(ui);
});
client.on('slice', ({ data }) => {
  page.slicesReceived++;
  rate.add(data.byteLength);
});
client.on('error', (e) => {
  log(`error ${e.code}: ${e.message}`, 'bad');
  view.showBanner(ui, `${e.code}: ${e.message}`);
});
client.on('disconnected', (c) => log(`closed ${c.code}${c.reason ? ` (${c.reason})` : ''}`, 'warn'));
client.on('reconnecting', ({ attempt, maxAttempts, delayMs }) => log(`reconnecting in ${(delayMs / 1000).toFixed(2)} s (try ${attempt}/${maxAttempts})`));
client.on('busy', ({ retryAfterS }) => {
  log(`busy: retry in ${retryAfterS} s`, 'warn');
  view.showOverlay(ui, 'busy', 'All seats are taken', 'Someone else holds the seat right now. Trying again when the countdown ends.', 'Retry now');
  startCountdown();
});
client.on('ended', ({ reason, close, error, attempts }) => {
  const why = error ? `${error.code}: ${error.message}` : close && close.reason;
  const screens = {
    replaced: ['replaced', 'Session moved elsewhere', 'Another tab or connection resumed this session. This page stays quiet so the two do not fight over the seat.', 'New session'],
    normal: ['ended', 'Session ended', why || 'The server ended the session.', 'Start again'],
    policy: ['ended', 'Refused', why || 'Refused by the server (policy).', 'Try again'],
    refused: ['ended', 'Refused', why || `The server closed with ${close ? close.code : '?'}.`, 'Try again'],
    gave_up: ['ended', 'Connection lost', `No answer from the server after ${attempts} tries.`, 'Reconnect'],
  };
  log(`ended: ${reason}`, reason === 'bye' ? undefined : 'bad');
  if (screens[reason]) view.showOverlay(ui, ...screens[reason]);
});
player.on('status', (st) => {
  const now = performance.now();
  page.peaks.push([now, Math.max(st.peakL, st.peakR)]);
  while (page.peaks.length && now - page.peaks[0][0] > 1000) page.peaks.shift();
});

function startCountdown() {
  stopCountdown();
  const tick = () => {
    const s = client.snapshot();
    view.showCountdown(ui, s.busyUntil - performance.now(), s.busyRetryAfterS * 1000);
  };
  tick();
  page.busyTimer = setInterval(tick, 100);
}

function stopCountdown() {
  clearInterval(page.busyTimer);
  page.busyTimer = 0;
}

// ── the page's lifecycle ──────────────────────────────────────────────────
ui.overlayButton.addEventListener('click', () => {
  // Inside the click: the AudioContext may start only from a gesture (iOS).
  player.start().catch(() => {});
  view.hideOverlay(ui);
  if (client.state === 'busy') client.retryNow();
  else client.connect();
});
window.addEventListener('pagehide', () => client.disconnect()); // bye: the seat is free at once
window.addEventListener('pageshow', (ev) => {
  if (ev.persisted && client.snapshot().endReason === 'bye') {
    log('page restored: starting again');
    client.connect();
  }
});
// The client itself retries at once on `online` and when the tab is visible again.

window.seatkeeper = hook();
view.showOverlay(ui, 'start', 'Ready when you are', 'Audio needs a click to start in this browser.', 'Start');
view.setPill(ui, 'idle', 'idle');
startDrawing(ui, () => player.status);
setInterval(
  () =>
    renderFigures(ui, client.snapshot(), player.status, {
      rate: rate.read(),
      audioState: page.audioFailed ? 'none' : player.audioState,
      window: page.window,
      sessionStartedAt: page.sessionStartedAt,
      clientId,
      endpoint: url,
    }),
  250,
);
boot();

async function boot() {
  try {
    // Where autoplay is allowed the context runs at once or after a tick.
    await Promise.race([player.start(), sleep(300)]);
  } catch (e) {
    page.audioFailed = true;
    log(`audio unavailable: ${e && e.message ? e.message : e}`, 'bad');
    view.showBanner(ui, 'Audio output is unavailable in this browser; the session will still stream and ack.');
  }
  if (page.audioFailed || player.audioState === 'running') {
    log(page.audioFailed ? 'starting without audio' : 'autoplay allowed: starting');
    view.hideOverlay(ui);
    client.connect();
  } else {
    log('waiting for a click to start audio');
  }
}

/** The debugging hook (the e2e suite reads it). */
function hook() {
  const h = {
    get state() { return client.state; },
    get endReason() { return client.snapshot().endReason; },
    get sessionId() { return client.snapshot().sessionId; },
    get clientId() { return clientId; },
    get resumed() { return client.snapshot().resumed; },
    get resumes() { return client.snapshot().resumes; },
    get sessions() { return client.snapshot().sessions; },
    get reconnects() { return client.snapshot().reconnects; },
    get attempt() { return client.snapshot().attempt; },
    get lastSeq() { return client.snapshot().lastSeq; },
    get slicesReceived() { return page.slicesReceived; },
    get acksSent() { return client.snapshot().acksSent; },
    get audioState() { return player.audioState; },
    get sampleRate() { return player.ctx ? player.ctx.sampleRate : 0; },
    get playing() { return player.playing; },
    get buffered_ms() { return Math.round(player.bufferedMs); },
    get underruns() { return player.status.underruns; },
    get level() { return Math.max(player.status.peakL, player.status.peakR); },
    /** Loudest output peak over the last second (0 when nothing plays). */
    get peak1s() { return page.peaks.reduce((a, [, p]) => Math.max(a, p), 0); },
    get slicesPerSec() { return rate.read().perSec; },
    get stats() { return client.stats; },
    get busyRemainingS() { return client.state === 'busy' ? Math.max(0, (client.snapshot().busyUntil - performance.now()) / 1000) : 0; },
    get busyRetryAfterS() { return client.snapshot().busyRetryAfterS; },
    get lastClose() { return client.snapshot().lastClose; },
    get lastError() { return client.snapshot().lastError; },
    get wsReadyState() { return client.ws ? client.ws.readyState : -1; },
    get visibility() { return document.visibilityState; },
    snapshot() {
      const out = {};
      for (const k of Object.keys(Object.getOwnPropertyDescriptors(h))) {
        if (typeof h[k] !== 'function' && k !== 'client' && k !== 'player') out[k] = h[k];
      }
      return out;
    },
    start: () => client.connect(),
    client,
    player,
  };
  return h;
}

function tabId() {
  const fresh = () => `tab-${Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, '0')).join('')}`;
  try {
    let id = sessionStorage.getItem('seatkeeper.client_id');
    if (!id) {
      id = fresh();
      sessionStorage.setItem('seatkeeper.client_id', id);
    }
    return id;
  } catch {
    return fresh();
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
