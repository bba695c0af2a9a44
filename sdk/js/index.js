// seatkeeper-client: the browser (and Node) client for a seatkeeper server.
// ES modules, no runtime dependencies. See README.md and docs/PROTOCOL.md.

export { SeatkeeperClient, defaultUrl } from './src/client.js';
export { createMachine, DEFAULTS as MACHINE_DEFAULTS, STATES } from './src/machine.js';
export { backoffDelayMs, BACKOFF_BASE_MS, BACKOFF_CAP_MS } from './src/backoff.js';
export { CLOSE, isTerminalClose } from './src/codes.js';
export {
  HEADER_BYTES,
  SLICE_VERSION,
  KIND_PCM_F16,
  FLAG_DROPPABLE,
  FLAG_KEYFRAME,
  parseSliceHeader,
  encodeSlice,
  isPcmF16,
  decodePcmF16,
} from './src/slice.js';
export { float16ToFloat32, f16AudioTable, decodeF16, HAS_FLOAT16ARRAY } from './src/f16.js';
export { JitterBuffer } from './src/jitter.js';
export { SeatkeeperPlayer } from './src/player.js';
export { normalizeKnobs } from './src/knobs.js';
export { Emitter } from './src/emitter.js';
