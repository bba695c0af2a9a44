// The page's fixed elements and the small pieces of UI around them: the
// state pill, the overlay (start / busy / ended / replaced), the banner and
// the event log.

const $ = (id) => document.getElementById(id);

/** Looks up every element the page draws into. */
export function elements() {
  const ids = {
    pill: 'state', stateText: 'state-text', sessionId: 'session-id', engine: 'engine', scope: 'scope',
    overlay: 'overlay', overlayTitle: 'overlay-title', overlayText: 'overlay-text', overlayButton: 'overlay-button',
    countdown: 'countdown', meterL: 'meter-l', meterR: 'meter-r', dbL: 'db-l', dbR: 'db-r', banner: 'banner',
    rate: 'rate', rateSub: 'rate-sub', drops: 'drops', dropsSub: 'drops-sub', rtt: 'rtt', buffer: 'buffer',
    bufFill: 'bufbar-fill', acked: 'acked', inflight: 'inflight', link: 'link', linkSub: 'link-sub', knobs: 'knobs',
    log: 'log', dClient: 'd-client', dUptime: 'd-uptime', dWindow: 'd-window', dEndpoint: 'd-endpoint',
  };
  const ui = {};
  for (const [k, id] of Object.entries(ids)) ui[k] = $(id);
  return ui;
}

export function setPill(ui, state, text) {
  document.documentElement.dataset.state = state;
  ui.pill.dataset.state = state;
  ui.stateText.textContent = text;
}

export function showOverlay(ui, kind, title, text, button) {
  ui.overlay.dataset.kind = kind;
  ui.overlayTitle.textContent = title;
  ui.overlayText.textContent = text;
  ui.overlayButton.textContent = button || 'OK';
  ui.overlayButton.hidden = !button;
  ui.countdown.hidden = kind !== 'busy';
  ui.overlay.hidden = false;
}

export function hideOverlay(ui) {
  ui.overlay.hidden = true;
  ui.countdown.hidden = true;
}

/** The busy countdown: whole seconds left, and a ring that empties. */
export function showCountdown(ui, leftMs, totalMs) {
  ui.countdown.hidden = false;
  ui.countdown.textContent = String(Math.ceil(Math.max(0, leftMs) / 1000));
  ui.countdown.style.setProperty('--p', String(totalMs > 0 ? Math.max(0, leftMs) / totalMs : 0));
}

export function showBanner(ui, text, kind) {
  ui.banner.textContent = text;
  ui.banner.className = `banner${kind ? ` ${kind}` : ''}`;
  ui.banner.hidden = false;
}

export function hideBanner(ui) {
  ui.banner.hidden = true;
}

/** Prepends a line to the event log (newest first, 80 kept) and to the console. */
export function log(ui, text, kind) {
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
