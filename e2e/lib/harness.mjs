// Test harness: the real server binary, Debian's Chromium, a TCP relay, and
// bounded waits. Everything here talks to 127.0.0.1 only.

import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const E2E_DIR = path.resolve(HERE, '..');
export const REPO_DIR = path.resolve(E2E_DIR, '..');

/** The server binary under test. */
export const SEATKEEPER_BIN = path.resolve(E2E_DIR, process.env.SEATKEEPER_BIN || '../target/release/seatkeeper');
/** Debian's Chromium. */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
/** Where diagnostics (extra screenshots, logs) go; ignored by git. */
export const OUT_DIR = path.join(E2E_DIR, 'out');

/** Chromium's command line, as the issue prescribes (plus a fresh --user-data-dir). */
export const CHROMIUM_ARGS = Object.freeze([
  '--headless',
  '--no-sandbox',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]);

/** Server flags for the suite: short grace windows so reaps happen in seconds. */
export const SERVER_FLAGS = Object.freeze([
  '--dead-client-stall-s', '3',
  '--watchdog-interval-ms', '250',
  '--pong-timeout-s', '6',
  '--ping-interval-s', '1',
  '--resume-window-s', '5',
]);

/** What is missing to run the browser scenarios (empty when all is there). */
export function missingPrerequisites() {
  const missing = [];
  if (!isExecutable(SEATKEEPER_BIN)) missing.push(`server binary ${SEATKEEPER_BIN} (build it: cargo build --release -p seatkeeper, or set SEATKEEPER_BIN)`);
  if (!isExecutable(CHROMIUM)) missing.push(`Chromium at ${CHROMIUM} (apt-get install -y chromium)`);
  return missing;
}

function isExecutable(p) {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns something truthy; returns that. Every wait in
 * the suite goes through here, so every wait is bounded.
 */
export async function waitFor(fn, { timeoutMs = 10_000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= deadline) {
      const detail = lastErr ? `; last error: ${lastErr.message}` : `; last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}

/** Races a promise against a timeout (for calls that could hang). */
export async function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ── the server ─────────────────────────────────────────────────────────────

/**
 * Starts `seatkeeper serve` on a free loopback port and waits for /healthz.
 * `flags` replaces the suite's short grace windows (SERVER_FLAGS).
 */
export async function startServer(extraFlags = [], { flags = SERVER_FLAGS } = {}) {
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const server = spawnServer(port, [...flags, ...extraFlags]);
    try {
      await waitFor(
        async () => {
          if (server.exited) throw new Error(`server exited with ${server.exitCode}: ${server.output().slice(-2000)}`);
          const r = await fetch(`${server.base}/healthz`, { signal: AbortSignal.timeout(1000) });
          return r.status === 200;
        },
        { timeoutMs: 15_000, intervalMs: 100, what: `GET /healthz on port ${port}` },
      );
      return server;
    } catch (e) {
      lastErr = e;
      await server.stop();
      // A port taken between freePort() and bind: try another.
      if (!/in use|AddrInUse|address already/i.test(String(e.message))) break;
    }
  }
  throw lastErr;
}

function spawnServer(port, extraFlags) {
  const args = ['serve', '--listen', `127.0.0.1:${port}`, ...extraFlags];
  const child = spawn(SEATKEEPER_BIN, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks = [];
  let size = 0;
  const keep = (b) => {
    chunks.push(b);
    size += b.length;
    while (size > 512 * 1024 && chunks.length > 1) size -= chunks.shift().length;
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const server = {
    port,
    pid: child.pid,
    base: `http://127.0.0.1:${port}`,
    exited: false,
    exitCode: null,
    output: () => Buffer.concat(chunks).toString('utf8'),
    /** The sum of `seatkeeper_reaps_total` over every reason, from /metrics. */
    async reaps() {
      const r = await fetch(`${server.base}/metrics`, { signal: AbortSignal.timeout(2000) });
      const text = await r.text();
      let n = 0;
      for (const m of text.matchAll(/^seatkeeper_reaps_total(?:\{[^}]*\})? (\d+)/gm)) n += Number(m[1]);
      return n;
    },
    async sessions() {
      const r = await fetch(`${server.base}/sessions`, { signal: AbortSignal.timeout(2000) });
      if (r.status !== 200) throw new Error(`GET /sessions answered ${r.status}`);
      return r.json();
    },
    async stop() {
      if (server.exited) return;
      child.kill('SIGTERM');
      try {
        await waitFor(() => server.exited, { timeoutMs: 5000, what: 'server exit after SIGTERM' });
      } catch {
        child.kill('SIGKILL');
        await waitFor(() => server.exited, { timeoutMs: 3000, what: 'server exit after SIGKILL' }).catch(() => {});
      }
    },
  };
  child.on('exit', (code, signal) => {
    server.exited = true;
    server.exitCode = code ?? signal;
  });
  child.on('error', (e) => {
    server.exited = true;
    server.exitCode = e.message;
  });
  return server;
}

// ── the browser ────────────────────────────────────────────────────────────

/**
 * Launches Chromium with a fresh profile. Playwright is told `headless:
 * false` so that it adds none of its own headless flags (it would add
 * --mute-audio, among others); `--headless` comes from CHROMIUM_ARGS.
 */
export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'seatkeeper-e2e-profile-'));
  const context = await within(
    30_000,
    chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: false,
      args: [...CHROMIUM_ARGS],
      viewport: { width: 1280, height: 800 },
      deviceScaleFactor: 1,
      timeout: 30_000,
    }),
    'launching Chromium',
  );
  const browserPid = findBrowserPid(userDataDir);
  const logs = [];
  const watch = (page) => {
    page.on('console', (m) => logs.push(`[${new Date().toISOString().slice(11, 23)}] ${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  return {
    context,
    userDataDir,
    browserPid,
    logs,
    /** Closes the browser; if that hangs, kills its whole process group. */
    async close() {
      const group = browserPid ? processGroup(browserPid) : [];
      for (const pid of group) signal(pid, 'SIGCONT');
      try {
        await within(10_000, context.close(), 'closing Chromium');
      } catch {
        for (const pid of group) signal(pid, 'SIGKILL');
      }
      for (const pid of group) if (alive(pid)) signal(pid, 'SIGKILL');
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** The main Chromium process: the one started with our --user-data-dir and no --type. */
function findBrowserPid(userDataDir) {
  // Chromium rewrites the argv of its children (one space-joined string),
  // so match on the joined command line.
  for (const pid of allPids()) {
    const cmd = cmdline(pid).join(' ');
    if (cmd.includes(`--user-data-dir=${userDataDir}`) && !/(^| )--type=/.test(cmd)) return pid;
  }
  return null;
}

function allPids() {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

function statFields(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parens: split after the last ')'.
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Every process in the browser's process tree (by parent links). */
export function processGroup(rootPid) {
  const parent = new Map();
  for (const pid of allPids()) {
    const f = statFields(pid);
    if (f) parent.set(pid, Number(f[1]));
  }
  const out = [];
  for (const pid of parent.keys()) {
    let p = pid;
    for (let hops = 0; hops < 20 && p > 1; hops++) {
      if (p === rootPid) {
        out.push(pid);
        break;
      }
      p = parent.get(p);
    }
  }
  return out;
}

export function alive(pid) {
  const f = statFields(pid);
  return !!f && f[0] !== 'Z';
}

/** Process state letter: R, S, T (stopped), Z … */
export function procState(pid) {
  const f = statFields(pid);
  return f ? f[0] : null;
}

export function signal(pid, sig) {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

export function processName(pid) {
  const cmd = cmdline(pid).join(' ');
  const type = cmd.match(/--type=\S+/);
  const sub = cmd.match(/--utility-sub-type=\S+/);
  let comm = '?';
  try {
    comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    /* gone */
  }
  return [comm, type && type[0], sub && sub[0]].filter(Boolean).join(' ');
}

/**
 * PIDs of the processes holding an established TCP connection to
 * 127.0.0.1:`port`, from `ss -tnpH` (the client side: peer port = `port`).
 */
export async function socketOwners(port, { excludePid } = {}) {
  const out = await new Promise((resolve, reject) => {
    execFile('ss', ['-tnpH', 'state', 'established'], { timeout: 5000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
  const pids = new Set();
  for (const line of out.split('\n')) {
    const cols = line.trim().split(/\s+/);
    // state filter drops the State column: Recv-Q Send-Q Local Peer Process
    const peer = cols[3];
    if (!peer || !peer.endsWith(`:${port}`)) continue;
    for (const m of line.matchAll(/pid=(\d+)/g)) {
      const pid = Number(m[1]);
      if (pid !== excludePid) pids.add(pid);
    }
  }
  return [...pids];
}

// ── a TCP relay, to cut connections from outside the page ──────────────────

/** Relays 127.0.0.1:<its port> to 127.0.0.1:`targetPort`; `cut()` resets every relayed connection. */
export function startRelay(targetPort) {
  const pairs = new Set();
  let accepted = 0;
  const server = net.createServer((down) => {
    accepted++;
    const up = net.connect(targetPort, '127.0.0.1');
    const pair = { down, up };
    pairs.add(pair);
    const done = () => {
      pairs.delete(pair);
      down.destroy();
      up.destroy();
    };
    down.on('error', done).on('close', done);
    up.on('error', done).on('close', done);
    down.pipe(up);
    up.pipe(down);
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: server.address().port,
        get open() {
          return pairs.size;
        },
        get accepted() {
          return accepted;
        },
        /** The blip: both sides of every relayed connection get a TCP reset. */
        cut() {
          const n = pairs.size;
          for (const { down, up } of [...pairs]) {
            down.resetAndDestroy();
            up.resetAndDestroy();
          }
          pairs.clear();
          return n;
        },
        close() {
          for (const { down, up } of pairs) {
            down.destroy();
            up.destroy();
          }
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}
