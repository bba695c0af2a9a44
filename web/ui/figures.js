// The live figures: slices a second, bit rate, drops, RTT, buffer, last ack,
// link health, and the connection details. Rendered four times a second
// from the client's snapshot and the player's latest status.

/** Arrival bookkeeping for rates (the last ~2 s). */
export function rateMeter() {
  const arrivals = [];
  let since = 0;
  return {
    add(bytes) {
      const now = performance.now();
      if (!since) since = now;
      arrivals.push([now, bytes]);
    },
    reset() {
      arrivals.length = 0;
      since = 0;
    },
    /** {perSec, kbps} over the last 2 s (or since the first arrival). */
    read() {
      const now = performance.now();
      while (arrivals.length && now - arrivals[0][0] > 2000) arrivals.shift();
      const span = Math.max(250, Math.min(2000, now - (since || now))) / 1000;
      const bytes = arrivals.reduce((a, [, b]) => a + b, 0);
      return { perSec: arrivals.length / span, kbps: (bytes * 8) / span / 1000 };
    },
  };
}

export function fmtBytes(b) {
  const n = Number(b) || 0;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(n % (1 << 20) ? 1 : 0)} MiB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KiB`;
  return `${n} B`;
}

export function fmtRtt(us) {
  if (us < 1000) return `${us} µs`;
  if (us < 10000) return `${(us / 1000).toFixed(2)} ms`;
  return `${Math.round(us / 1000)} ms`;
}

/**
 * Draws every tile. `s` is the client's snapshot, `audio` the player's
 * status, `x` page-level extras ({rate, audioState, window, sessionStartedAt, clientId, endpoint}).
 */
export function renderFigures(ui, s, audio, x) {
  const streaming = s.state === 'streaming';
  ui.sessionId.textContent = s.sessionId || '—';
  const { perSec, kbps } = x.rate;
  ui.rate.textContent = streaming || perSec ? perSec.toFixed(1) : '—';
  ui.rateSub.textContent = streaming ? (kbps >= 1000 ? `${(kbps / 1000).toFixed(2)} Mbit/s` : `${kbps.toFixed(0)} kbit/s`) : '—';
  const st = s.stats;
  if (st) {
    const sent = Number(st.slices_sent) || 0;
    const dropped = Number(st.slices_dropped) || 0;
    ui.drops.textContent = String(dropped);
    ui.drops.classList.toggle('warn', dropped > 0);
    ui.dropsSub.textContent = sent + dropped ? `${((dropped / (sent + dropped)) * 100).toFixed(1)} % of ${sent + dropped}` : 'by flow control';
    ui.rtt.textContent = st.rtt_us == null ? '—' : fmtRtt(Number(st.rtt_us));
    ui.inflight.textContent = `${st.in_flight ?? 0} in flight${x.window ? ` / ${x.window.slices}` : ''}`;
  } else {
    ui.drops.textContent = '—';
    ui.rtt.textContent = '—';
    ui.inflight.textContent = x.window ? `window ${x.window.slices}` : '—';
  }
  ui.acked.textContent = s.lastSeq ? `#${s.lastSeq}` : '—';
  const buffered = audio.bufferedMs || 0;
  ui.buffer.textContent = x.audioState === 'running' ? `${Math.round(buffered)} ms` : x.audioState === 'none' ? 'no audio' : x.audioState;
  ui.buffer.classList.toggle('warn', !audio.playing && streaming);
  ui.bufFill.style.width = `${Math.min(100, buffered / 10)}%`;
  if (s.state === 'reconnecting') {
    const left = Math.max(0, s.nextRetryAt - performance.now());
    ui.link.textContent = `try ${s.attempt}/${s.maxAttempts}`;
    ui.linkSub.textContent = left > 0 ? `next in ${(left / 1000).toFixed(1)} s` : 'connecting…';
  } else {
    const changes = s.resumes + Math.max(0, s.sessions - 1);
    ui.link.textContent = !s.sessionId ? '—' : changes === 0 ? 'steady' : s.resumes ? `${s.resumes} resume${s.resumes === 1 ? '' : 's'}` : `${s.sessions} sessions`;
    const u = audio.underruns || 0;
    ui.linkSub.textContent = `${u} underrun${u === 1 ? '' : 's'}`;
  }
  ui.dClient.textContent = x.clientId;
  ui.dEndpoint.textContent = x.endpoint.replace(/^wss?:\/\//, '');
  ui.dEndpoint.title = x.endpoint;
  ui.dWindow.textContent = x.window ? `${x.window.slices} slices · ${fmtBytes(x.window.bytes)}` : '—';
  if (s.sessionId && x.sessionStartedAt && s.state !== 'ended') {
    const sec = Math.floor((performance.now() - x.sessionStartedAt) / 1000);
    ui.dUptime.textContent = `${Math.floor(sec / 60)}:${String(sec % 60).padStart(2, '0')}`;
  } else if (!s.sessionId) {
    ui.dUptime.textContent = '—';
  }
}

/** The engine line under "Engine": name · format · rate · channels · slice length. */
export function engineLine(engine) {
  const bits = [engine.name || 'engine'];
  if (engine.format) bits.push(engine.format);
  if (engine.sample_rate) bits.push(`${engine.sample_rate / 1000} kHz`);
  if (engine.channels) bits.push(engine.channels === 2 ? 'stereo' : `${engine.channels} ch`);
  if (engine.slice_ms) bits.push(`${engine.slice_ms} ms`);
  return bits.join(' · ');
}
