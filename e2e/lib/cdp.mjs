// Chromium driven over the raw DevTools protocol, without Playwright.
// Playwright keeps every page it controls "visible" (focus emulation), so a
// page that must really be hidden — a background tab, with the throttled
// timers that come with it — runs in a Chromium of its own, started here
// with --remote-debugging-port on loopback and talked to over one
// WebSocket per page.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { CHROMIUM, CHROMIUM_ARGS, freePort, waitFor, within } from './harness.mjs';

/** Starts Chromium on `url`; returns {page, openTab(url), close()}. */
export async function launchRawChromium(url) {
  if (typeof WebSocket !== 'function') throw new Error('a global WebSocket is needed (Node ≥ 22, or node --experimental-websocket)');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'seatkeeper-e2e-raw-'));
  const port = await freePort();
  const child = spawn(CHROMIUM, [...CHROMIUM_ARGS, `--user-data-dir=${userDataDir}`, `--remote-debugging-port=${port}`, '--remote-debugging-address=127.0.0.1', url], {
    stdio: 'ignore',
  });
  const base = `http://127.0.0.1:${port}`;
  const target = await waitFor(
    async () => {
      const list = await (await fetch(`${base}/json/list`, { signal: AbortSignal.timeout(1000) })).json();
      return list.find((t) => t.type === 'page' && t.url.startsWith(url.replace(/\/$/, '')));
    },
    { timeoutMs: 20_000, intervalMs: 200, what: 'the raw Chromium page target' },
  );
  const page = await attach(target.webSocketDebuggerUrl);
  return {
    pid: child.pid,
    page,
    /** Opens a tab in front of the first one (which becomes hidden). */
    async openTab(tabUrl) {
      const r = await fetch(`${base}/json/new?${tabUrl}`, { method: 'PUT', signal: AbortSignal.timeout(5000) });
      if (!r.ok) throw new Error(`/json/new answered ${r.status}`);
      return r.json();
    },
    async close() {
      page.close();
      child.kill('SIGTERM');
      await within(5000, new Promise((r) => child.once('exit', r)), 'raw Chromium exit').catch(() => child.kill('SIGKILL'));
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

async function attach(wsUrl) {
  const ws = new WebSocket(wsUrl);
  await within(10_000, new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`cannot open ${wsUrl}`));
  }), 'the DevTools WebSocket');
  let id = 0;
  const pending = new Map();
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(new Error(`${m.error.message} (${m.error.code})`));
    else p.resolve(m.result);
  };
  const send = (method, params = {}) =>
    within(
      10_000,
      new Promise((resolve, reject) => {
        const i = ++id;
        pending.set(i, { resolve, reject });
        ws.send(JSON.stringify({ id: i, method, params }));
      }),
      method,
    );
  return {
    send,
    /** Evaluates an expression in the page and returns its JSON value. */
    async evaluate(expression) {
      const r = await send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) throw new Error(`page threw: ${r.exceptionDetails.text}`);
      return r.result.value;
    },
    close: () => ws.close(),
  };
}
