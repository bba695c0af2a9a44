// The waveform and the two level meters, drawn every animation frame from
// what the worklet really played (its status reports), not from what
// arrived.

const meters = { l: { v: 0, hold: 0, holdAt: 0 }, r: { v: 0, hold: 0, holdAt: 0 } };

/** Starts the animation loop; `audio()` returns the player's latest status. */
export function startDrawing(ui, audio) {
  const frame = (t) => {
    const a = audio();
    drawScope(ui.scope, a.wave);
    drawMeter(ui.meterL, meters.l, a.peakL || 0, ui.dbL, t);
    drawMeter(ui.meterR, meters.r, a.peakR || 0, ui.dbR, t);
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
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

function drawScope(c, wave) {
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
  const n = wave ? wave.length : 0;
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
