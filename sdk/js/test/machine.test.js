// The connection state machine, path by path: events in, actions out.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createMachine } from '../index.js';

/** A machine plus helpers to feed it and inspect what it asked for. */
function harness(options = {}) {
  const m = createMachine({ clientId: 'tab-1', random: () => 0.5, ...options });
  let now = 0;
  const log = [];
  const feed = (ev) => {
    if (ev.at !== undefined) now = ev.at;
    const actions = m.handle({ now, ...ev });
    log.push(...actions);
    return actions;
  };
  const sends = (actions) => actions.filter((a) => a.type === 'send').map((a) => a.msg);
  const emits = (actions, name) => actions.filter((a) => a.type === 'emit' && a.name === name).map((a) => a.detail);
  const timerMs = (actions, name) => {
    const t = actions.find((a) => a.type === 'setTimer' && a.name === name);
    return t ? t.ms : undefined;
  };
  const ready = (over = {}) => ({ type: 'ready', session_id: 's1', resume_token: 'tok1', resumed: false, window: { slices: 16, bytes: 1 << 22 }, engine: {}, ...over });
  const stream = () => {
    feed({ type: 'start' });
    feed({ type: 'open' });
    return feed({ type: 'message', msg: ready() });
  };
  return { m, feed, sends, emits, timerMs, ready, stream, log, setNow: (t) => (now = t) };
}

test('start → connect, open → hello, ready → streaming', () => {
  const h = harness({ engine: { tempo: 90 } });
  const a = h.feed({ type: 'start' });
  assert.ok(a.some((x) => x.type === 'connect'));
  assert.equal(h.m.state, 'connecting');
  assert.equal(h.timerMs(a, 'connect'), 8000);
  const hello = h.sends(h.feed({ type: 'open' }))[0];
  assert.deepEqual(hello, { type: 'hello', client_id: 'tab-1', engine: { tempo: 90 } });
  const r = h.feed({ type: 'message', msg: h.ready() });
  assert.equal(h.m.state, 'streaming');
  assert.equal(h.emits(r, 'ready')[0].session_id, 's1');
  assert.equal(h.emits(r, 'ready')[0].recovered, false);
  assert.deepEqual(h.emits(r, 'state')[0], { state: 'streaming', prev: 'connecting' });
  assert.ok(r.some((x) => x.type === 'clearTimer' && x.name === 'connect'));
});

test('slices: new ones are delivered and acked with buffer_ms; duplicates acked, not delivered', () => {
  const h = harness();
  h.stream();
  const a1 = h.feed({ type: 'slice', seq: 1, bufferMs: 212.6 });
  assert.ok(a1.some((x) => x.type === 'deliver' && x.seq === 1));
  assert.deepEqual(h.sends(a1), [{ type: 'ack', seq: 1, buffer_ms: 213 }]);
  h.feed({ type: 'slice', seq: 2 });
  const dup = h.feed({ type: 'slice', seq: 2 });
  assert.ok(!dup.some((x) => x.type === 'deliver'));
  assert.deepEqual(h.sends(dup), [{ type: 'ack', seq: 2 }]);
  assert.equal(h.m.snapshot().duplicates, 1);
  assert.equal(h.m.snapshot().lastSeq, 2);
});

test('abnormal close → reconnect with backoff, hello carries the resume token, resumed ready keeps lastSeq', () => {
  const h = harness();
  h.stream();
  h.feed({ type: 'slice', seq: 7 });
  const lost = h.feed({ type: 'close', code: 1006, at: 100 });
  assert.equal(h.m.state, 'reconnecting');
  assert.equal(h.timerMs(lost, 'retry'), 250); // 0.5 · min(20 s, 500 ms)
  assert.equal(h.emits(lost, 'reconnecting')[0].attempt, 1);
  assert.equal(h.emits(lost, 'disconnected')[0].code, 1006);
  assert.ok(h.feed({ type: 'timer', name: 'retry' }).some((x) => x.type === 'connect'));
  assert.equal(h.sends(h.feed({ type: 'open' }))[0].resume, 'tok1');
  const r = h.feed({ type: 'message', msg: h.ready({ resumed: true, resume_token: 'tok2' }) });
  assert.equal(h.emits(r, 'ready')[0].recovered, true);
  const s = h.m.snapshot();
  assert.equal(s.resumes, 1);
  assert.equal(s.lastSeq, 7);
  assert.equal(s.sessions, 1);
});

test('a new session after a failed resume resets lastSeq', () => {
  const h = harness();
  h.stream();
  h.feed({ type: 'slice', seq: 9 });
  h.feed({ type: 'close', code: 1006 });
  h.feed({ type: 'timer', name: 'retry' });
  h.feed({ type: 'open' });
  h.feed({ type: 'message', msg: h.ready({ session_id: 's2', resumed: false }) });
  assert.equal(h.m.snapshot().lastSeq, 0);
  assert.equal(h.m.snapshot().sessions, 2);
  assert.ok(h.feed({ type: 'slice', seq: 1 }).some((x) => x.type === 'deliver'));
});

test('backoff grows per failed try and the give-up limit ends the machine', () => {
  const h = harness({ maxAttempts: 3, random: () => 0.999999 });
  h.stream();
  const delays = [];
  let a = h.feed({ type: 'close', code: 1006 });
  for (;;) {
    const ms = h.timerMs(a, 'retry');
    if (ms === undefined) break;
    delays.push(Math.round(ms));
    h.feed({ type: 'timer', name: 'retry' });
    a = h.feed({ type: 'close', code: 1006 });
  }
  assert.deepEqual(delays, [500, 1000, 2000]);
  assert.equal(h.m.state, 'ended');
  assert.equal(h.m.snapshot().endReason, 'gave_up');
  assert.equal(h.emits(a, 'ended')[0].reason, 'gave_up');
});

test('the backoff resets only after a healthy spell, not on every ready', () => {
  const h = harness({ random: () => 0.999999 });
  h.stream();
  h.feed({ type: 'close', code: 1006 });
  h.feed({ type: 'timer', name: 'retry' });
  h.feed({ type: 'open' });
  h.feed({ type: 'message', msg: h.ready() });
  // Accepted and closed at once: the next delay keeps growing.
  assert.equal(Math.round(h.timerMs(h.feed({ type: 'close', code: 1006 }), 'retry')), 1000);
  h.feed({ type: 'timer', name: 'retry' });
  h.feed({ type: 'open' });
  h.feed({ type: 'message', msg: h.ready() });
  h.feed({ type: 'timer', name: 'healthy' });
  assert.equal(Math.round(h.timerMs(h.feed({ type: 'close', code: 1006 }), 'retry')), 500);
});

test('busy: waits retry_after_s (plus jitter) after 1013, then connects again', () => {
  const h = harness({ busyJitter: 0 });
  h.feed({ type: 'start' });
  h.feed({ type: 'open' });
  h.feed({ type: 'message', msg: { type: 'busy', retry_after_s: 3 } });
  const a = h.feed({ type: 'close', code: 1013, at: 1000 });
  assert.equal(h.m.state, 'busy');
  assert.equal(h.timerMs(a, 'busy'), 3000);
  assert.deepEqual(h.emits(a, 'busy')[0], { retryAfterS: 3, retryInMs: 3000 });
  assert.equal(h.m.snapshot().busyUntil, 4000);
  assert.ok(h.feed({ type: 'timer', name: 'busy' }).some((x) => x.type === 'connect'));
  assert.equal(h.m.state, 'connecting');
  assert.equal(h.m.snapshot().attempt, 0, 'busy is not a failed try');
});

test('busy without the 1013 close: the machine stops waiting for it', () => {
  const h = harness({ busyJitter: 0 });
  h.feed({ type: 'start' });
  h.feed({ type: 'open' });
  const b = h.feed({ type: 'message', msg: { type: 'busy', retry_after_s: 2 } });
  assert.equal(h.timerMs(b, 'busyClose'), 1500);
  const a = h.feed({ type: 'timer', name: 'busyClose' });
  assert.ok(a.some((x) => x.type === 'close'));
  assert.equal(h.m.state, 'busy');
  assert.equal(h.timerMs(a, 'busy'), 2000);
});

test('4002: replaced, no reconnect, and the resume token is forgotten', () => {
  const h = harness();
  h.stream();
  const a = h.feed({ type: 'close', code: 4002, reason: 'replaced' });
  assert.equal(h.m.state, 'ended');
  assert.equal(h.m.snapshot().endReason, 'replaced');
  assert.equal(h.m.snapshot().hasResumeToken, false);
  assert.ok(!a.some((x) => x.type === 'setTimer' && x.name === 'retry'));
  assert.deepEqual(h.feed({ type: 'online' }).filter((x) => x.type === 'connect'), [], 'online does not fight back');
});

test('close codes: which end the machine and which retry', () => {
  const ends = { 1000: 'normal', 1003: 'refused', 1007: 'refused', 1008: 'policy', 1009: 'refused', 4000: 'refused', 4499: 'refused' };
  for (const [code, reason] of Object.entries(ends)) {
    const h = harness();
    h.stream();
    h.feed({ type: 'close', code: Number(code) });
    assert.equal(h.m.state, 'ended', `code ${code}`);
    assert.equal(h.m.snapshot().endReason, reason, `code ${code}`);
  }
  for (const code of [1001, 1006, 1011, 1012, 1014, 4500]) {
    const h = harness();
    h.stream();
    h.feed({ type: 'close', code });
    assert.equal(h.m.state, 'reconnecting', `code ${code}`);
  }
});

test('disconnect(): bye, close 1000, and a pending retry is cancelled', () => {
  const h = harness();
  h.stream();
  const a = h.feed({ type: 'stop' });
  assert.deepEqual(h.sends(a), [{ type: 'bye' }]);
  assert.ok(a.some((x) => x.type === 'close' && x.code === 1000));
  assert.equal(h.m.snapshot().endReason, 'bye');

  const r = harness();
  r.stream();
  r.feed({ type: 'close', code: 1006 });
  const s = r.feed({ type: 'stop' });
  assert.ok(s.some((x) => x.type === 'clearTimer' && x.name === 'retry'));
  assert.equal(r.m.state, 'ended');
  assert.deepEqual(r.feed({ type: 'timer', name: 'retry' }), [], 'a retry that fires late does nothing');
});

test('online: a pending backoff is cut short; after giving up it starts again', () => {
  const h = harness({ random: () => 0.999, maxAttempts: 1 });
  h.stream();
  h.feed({ type: 'close', code: 1006 });
  const a = h.feed({ type: 'online' });
  assert.ok(a.some((x) => x.type === 'connect'));
  assert.ok(a.some((x) => x.type === 'clearTimer' && x.name === 'retry'));
  h.feed({ type: 'close', code: 1006 });
  assert.equal(h.m.snapshot().endReason, 'gave_up');
  assert.ok(h.feed({ type: 'online' }).some((x) => x.type === 'connect'));
  assert.equal(h.m.state, 'reconnecting');
});

test('connect timeout counts as a failed try', () => {
  const h = harness();
  h.feed({ type: 'start' });
  const a = h.feed({ type: 'timer', name: 'connect' });
  assert.ok(a.some((x) => x.type === 'close'));
  assert.equal(h.m.state, 'reconnecting');
  assert.equal(h.m.snapshot().lastClose.reason, 'connect timeout');
});

test('stall: nothing received for stallMs drops the socket (kept open) and reconnects', () => {
  const h = harness({ stallMs: 6000 });
  h.stream();
  h.feed({ type: 'slice', seq: 1, at: 4000 });
  const early = h.feed({ type: 'timer', name: 'stall', at: 6000 });
  assert.equal(h.timerMs(early, 'stall'), 4000, 're-armed for the rest of the quiet time');
  const a = h.feed({ type: 'timer', name: 'stall', at: 10_000 });
  assert.ok(a.some((x) => x.type === 'drop'));
  assert.ok(!a.some((x) => x.type === 'close'), 'closing first could end the session we resume');
  assert.equal(h.m.state, 'reconnecting');
});

test('params are sent while streaming and carried into the next hello', () => {
  const h = harness();
  h.stream();
  assert.deepEqual(h.sends(h.feed({ type: 'params', values: { volume: 0.2 } })), [{ type: 'params', volume: 0.2 }]);
  h.feed({ type: 'close', code: 1006 });
  h.feed({ type: 'timer', name: 'retry' });
  assert.deepEqual(h.sends(h.feed({ type: 'open' }))[0].engine, { volume: 0.2 });
});

test('seat token: sent in the first hello, consumed by a fresh session', () => {
  const h = harness({ seatToken: 'seat-abc' });
  h.feed({ type: 'start' });
  assert.equal(h.sends(h.feed({ type: 'open' }))[0].seat_token, 'seat-abc');
  h.feed({ type: 'message', msg: h.ready() });
  assert.equal(h.m.snapshot().hasSeatToken, false);
  h.feed({ type: 'close', code: 1006 });
  h.feed({ type: 'timer', name: 'retry' });
  const hello = h.sends(h.feed({ type: 'open' }))[0];
  assert.equal(hello.seat_token, undefined);
  assert.equal(hello.resume, 'tok1');
});

test('server error is kept and reported; a 1008 after it ends with that error', () => {
  const h = harness();
  h.feed({ type: 'start' });
  h.feed({ type: 'open' });
  const e = h.feed({ type: 'message', msg: { type: 'error', code: 'bad_seat_token', message: 'no' } });
  assert.deepEqual(h.emits(e, 'error')[0], { code: 'bad_seat_token', message: 'no' });
  const a = h.feed({ type: 'close', code: 1008 });
  assert.equal(h.emits(a, 'ended')[0].error.code, 'bad_seat_token');
});

test('events of a socket that is gone are ignored', () => {
  const h = harness();
  assert.deepEqual(h.feed({ type: 'message', msg: h.ready() }), []);
  assert.deepEqual(h.feed({ type: 'close', code: 1006 }), []);
  assert.equal(h.m.state, 'idle');
});

test('retry now: skips the busy countdown; while reconnecting it skips the backoff', () => {
  const h = harness({ busyJitter: 0 });
  h.feed({ type: 'start' });
  h.feed({ type: 'open' });
  h.feed({ type: 'message', msg: { type: 'busy', retry_after_s: 30 } });
  h.feed({ type: 'close', code: 1013 });
  const a = h.feed({ type: 'retry' });
  assert.ok(a.some((x) => x.type === 'clearTimer' && x.name === 'busy'));
  assert.ok(a.some((x) => x.type === 'connect'));
  assert.equal(h.m.state, 'connecting');
  assert.deepEqual(h.feed({ type: 'timer', name: 'busy' }).filter((x) => x.type === 'connect'), [], 'the old countdown does nothing');

  const r = harness();
  r.stream();
  r.feed({ type: 'close', code: 1006 });
  assert.ok(r.feed({ type: 'retry' }).some((x) => x.type === 'connect'));
  assert.deepEqual(harness().feed({ type: 'retry' }), [], 'nothing to retry while idle');
});
