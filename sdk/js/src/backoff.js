// Reconnect delays: exponential backoff with full jitter (AWS architecture
// blog, "Exponential Backoff And Jitter"): uniform in [0, min(cap, base·2^n)),
// so a fleet of clients that lost the same server do not come back in step.

/** Default first-try ceiling and cap, in ms. */
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 20_000;

/** The delay before reconnect try `attempt` (0-based). */
export function backoffDelayMs(attempt, { baseMs = BACKOFF_BASE_MS, capMs = BACKOFF_CAP_MS, random = Math.random } = {}) {
  const n = Math.max(0, Math.min(attempt, 30)); // 2^30 · base is past any cap
  return random() * Math.min(capMs, baseMs * 2 ** n);
}
