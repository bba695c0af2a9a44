// A small external engine in Node, speaking the engine protocol
// (docs/ENGINE.md) over a Unix socket: it announces knobs of every kind,
// streams a quiet sine as pcm_f16le slices at media rate, and records the
// params it receives, so a test can see the page's knob changes arrive.

import net from 'node:net';

const KNOBS = [
  { name: 'pitch', kind: 'number', min: 110, max: 880, step: 1, default: 220, unit: 'Hz', label: 'Pitch' },
  { name: 'gain', min: 0, max: 1, step: 0.01, value: 0.3 }, // no kind: a number, "value" as default
  { name: 'voice', kind: 'choice', options: ['sine', { value: 'square', label: 'Square wave' }], default: 'sine', label: 'Voice' },
  { name: 'loop', kind: 'toggle', default: true, label: 'Loop' },
];

const frame = (type, body) => {
  const head = Buffer.alloc(6);
  head.writeUInt32LE(body.length + 2, 0);
  head.writeUInt8(1, 4);
  head.writeUInt8(type, 5);
  return Buffer.concat([head, body]);
};
const json = (msg) => frame(1, Buffer.from(JSON.stringify(msg)));

/** A half-float for a value in [-1, 1] (enough precision for a test tone). */
function half(x) {
  const sign = x < 0 ? 0x8000 : 0;
  const a = Math.min(Math.abs(x), 1);
  if (a < 2 ** -14) return sign; // below the normal range: zero is close enough here
  const e = Math.floor(Math.log2(a));
  const mant = Math.round((a / 2 ** e - 1) * 1024);
  return sign | ((e + 15) << 10) | Math.min(mant, 1023);
}

/** Connects to `path` (retrying until the server listens); returns {params, close()}. */
export function startEngine(path) {
  const params = [];
  const sessions = new Map();
  let sock = null;
  let stopped = false;
  let buf = Buffer.alloc(0);

  const connect = () => {
    if (stopped) return;
    sock = net.connect(path);
    sock.on('connect', () => sock.write(json({ type: 'hello', name: 'knob-engine', version: '1.0.0', capabilities: { kinds: [1] }, warm: true })));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
        const len = buf.readUInt32LE(0);
        const body = buf.subarray(6, 4 + len);
        const type = buf.readUInt8(5);
        buf = buf.subarray(4 + len);
        if (type === 1) onMessage(JSON.parse(body.toString('utf8')));
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      for (const s of sessions.values()) clearInterval(s.timer);
      sessions.clear();
      if (!stopped) setTimeout(connect, 200);
    });
  };

  function onMessage(m) {
    if (m.type === 'session_start') {
      const s = { handle: m.handle, n: 0, timer: 0 };
      sessions.set(m.session_id, s);
      sock.write(json({ type: 'session_ready', session_id: m.session_id, info: { name: 'knob-engine', kind: 1, format: 'pcm_f16le', sample_rate: 48000, channels: 2, slice_ms: 100, knobs: KNOBS } }));
      s.timer = setInterval(() => sock.write(slice(s)), 100);
    } else if (m.type === 'params') {
      params.push(m.params);
    } else if (m.type === 'session_end') {
      const s = sessions.get(m.session_id);
      if (s) clearInterval(s.timer);
      sessions.delete(m.session_id);
    }
  }

  function slice(s) {
    const frames = 4800;
    const payload = Buffer.alloc(frames * 4);
    for (let i = 0; i < frames; i++) {
      const v = half(0.2 * Math.sin((2 * Math.PI * 220 * (s.n * frames + i)) / 48000));
      payload.writeUInt16LE(v, i * 4);
      payload.writeUInt16LE(v, i * 4 + 2);
    }
    const head = Buffer.alloc(16);
    head.writeUInt32LE(s.handle, 0);
    head.writeUInt16LE(1, 4);
    head.writeUInt8(3, 6); // droppable keyframe
    head.writeBigUInt64LE(BigInt(s.n * 100_000), 8);
    s.n++;
    return frame(2, Buffer.concat([head, payload]));
  }

  connect();
  return {
    params,
    close() {
      stopped = true;
      for (const s of sessions.values()) clearInterval(s.timer);
      if (sock) sock.destroy();
    },
  };
}
