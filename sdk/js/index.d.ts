// Type declarations for seatkeeper-client (hand-written; checked by test/types.test-d.ts).

export type State = 'idle' | 'connecting' | 'streaming' | 'reconnecting' | 'busy' | 'ended';
export type EndReason = 'normal' | 'replaced' | 'policy' | 'refused' | 'gave_up' | 'bye';

export interface CloseInfo {
  code: number;
  reason: string;
  wasClean: boolean;
}

export interface ServerError {
  code: string;
  message: string;
}

export interface Window {
  slices: number;
  bytes: number;
}

export interface NumberKnob {
  name: string;
  kind?: 'number';
  min: number;
  max: number;
  step?: number;
  default?: number;
  /** Alias of `default` (older engines). */
  value?: number;
  unit?: string;
  label?: string;
}
export interface ChoiceKnob {
  name: string;
  kind: 'choice';
  options: Array<string | { value: string; label: string }>;
  default: string;
  label?: string;
}
export interface ToggleKnob {
  name: string;
  kind: 'toggle';
  default: boolean;
  label?: string;
}
export type Knob = NumberKnob | ChoiceKnob | ToggleKnob;

export type NormalizedKnob =
  | { name: string; kind: 'number'; label: string; min: number; max: number; step: number | null; default: number; unit: string }
  | { name: string; kind: 'choice'; label: string; options: Array<{ value: string; label: string }>; default: string }
  | { name: string; kind: 'toggle'; label: string; default: boolean };

export interface EngineInfo {
  name?: string;
  version?: string;
  kind?: number;
  format?: string;
  sample_rate?: number;
  channels?: number;
  slice_ms?: number;
  knobs?: Knob[];
  [extra: string]: unknown;
}

export interface ReadyMessage {
  type: 'ready';
  session_id: string;
  resume_token: string;
  resumed: boolean;
  window: Window;
  engine: EngineInfo;
}

export interface ReadyEvent extends ReadyMessage {
  /** True when this `ready` reattached the session this client had (same as `resumed`). */
  recovered: boolean;
}

export interface StatsMessage {
  type: 'stats';
  slices_sent: number;
  slices_dropped: number;
  bytes_sent: number;
  last_ack_seq: number;
  in_flight: number;
  rtt_us: number | null;
  server_time_ms: number;
  [extra: string]: unknown;
}

export interface SliceHeader {
  version: number;
  flags: number;
  droppable: boolean;
  keyframe: boolean;
  kind: number;
  seq: number;
  seqBig: bigint;
  timestampUs: number;
  timestampBig: bigint;
  payloadBytes: number;
}

export interface SliceEvent {
  header: SliceHeader;
  /** The whole frame, header included. */
  data: ArrayBuffer;
  engine: EngineInfo | null;
}

export interface ClientEvents {
  state: { state: State; prev: State };
  connecting: { attempt: number; resuming: boolean };
  open: { resuming: boolean };
  ready: ReadyEvent;
  slice: SliceEvent;
  stats: StatsMessage;
  error: ServerError;
  busy: { retryAfterS: number; retryInMs: number };
  disconnected: CloseInfo;
  reconnecting: { attempt: number; maxAttempts: number; delayMs: number; close: CloseInfo | null };
  ended: { reason: EndReason; close: CloseInfo | null; error: ServerError | null; attempts?: number };
  message: { type: string; [field: string]: unknown };
}

export interface MachineOptions {
  clientId?: string;
  engine?: Record<string, unknown>;
  seatToken?: string;
  baseMs?: number;
  capMs?: number;
  maxAttempts?: number;
  connectTimeoutMs?: number;
  stallMs?: number;
  healthyMs?: number;
  defaultBusyS?: number;
  busyJitter?: number;
  busyCloseMs?: number;
  random?: () => number;
}

export interface ClientOptions extends MachineOptions {
  /** `ws(s)://host/ws`; defaults to `/ws` on the page's origin. */
  url?: string;
  /** A WebSocket constructor (defaults to the global one). */
  WebSocket?: new (url: string) => WebSocket;
  /** A player that gets every playable slice and whose buffer depth goes into acks. */
  player?: SeatkeeperPlayer;
  /** Called for a fresh pool seat token before a `hello` that needs one. */
  getSeatToken?: () => string | Promise<string>;
  /** Retry at once on the browser's `online` event and when the tab becomes visible (default true). */
  listenOnline?: boolean;
}

export interface Snapshot {
  state: State;
  endReason: EndReason | null;
  sessionId: string | null;
  resumed: boolean;
  resumes: number;
  sessions: number;
  lastSeq: number;
  duplicates: number;
  acksSent: number;
  attempt: number;
  maxAttempts: number;
  reconnects: number;
  nextRetryAt: number;
  busyRetryAfterS: number;
  busyUntil: number;
  lastClose: CloseInfo | null;
  lastError: ServerError | null;
  hasResumeToken: boolean;
  hasSeatToken: boolean;
}

export class Emitter<Events> {
  on<K extends keyof Events>(name: K, fn: (detail: Events[K]) => void): () => void;
  once<K extends keyof Events>(name: K, fn: (detail: Events[K]) => void): () => void;
  off<K extends keyof Events>(name: K, fn: (detail: Events[K]) => void): void;
  emit<K extends keyof Events>(name: K, detail: Events[K]): void;
}

export class SeatkeeperClient extends Emitter<ClientEvents> {
  constructor(options?: ClientOptions);
  readonly state: State;
  readonly engine: EngineInfo | null;
  readonly stats: StatsMessage | null;
  snapshot(): Snapshot & { engine: EngineInfo | null; stats: StatsMessage | null; bufferMs: number | undefined };
  connect(): void;
  disconnect(): void;
  /** Skips a pending wait (busy countdown or backoff) and connects now. */
  retryNow(): void;
  setParams(values: Record<string, number | string | boolean>): void;
  reportBuffer(ms: number): void;
}

export function defaultUrl(): string;

export type MachineEvent =
  | { type: 'start'; now: number }
  | { type: 'open'; now: number }
  | { type: 'message'; now: number; msg: { type: string; [field: string]: unknown } }
  | { type: 'slice'; now: number; seq: number; bufferMs?: number }
  | { type: 'close'; now: number; code: number; reason?: string; wasClean?: boolean }
  | { type: 'timer'; now: number; name: 'connect' | 'retry' | 'busy' | 'busyClose' | 'healthy' | 'stall' }
  | { type: 'online'; now: number }
  | { type: 'retry'; now: number }
  | { type: 'params'; now: number; values: Record<string, unknown> }
  | { type: 'seat_token'; now: number; token: string }
  | { type: 'stop'; now: number; bye?: boolean };

export type MachineAction =
  | { type: 'connect' }
  | { type: 'send'; msg: { type: string; [field: string]: unknown } }
  | { type: 'close'; code: number; reason: string }
  | { type: 'drop' }
  | { type: 'deliver'; seq: number }
  | { type: 'setTimer'; name: string; ms: number }
  | { type: 'clearTimer'; name: string }
  | { type: 'emit'; name: keyof ClientEvents; detail: unknown };

export interface Machine {
  handle(event: MachineEvent): MachineAction[];
  snapshot(): Snapshot;
  readonly state: State;
  readonly options: Required<Omit<MachineOptions, 'clientId' | 'engine' | 'seatToken'>> & MachineOptions;
}

export function createMachine(options?: MachineOptions): Machine;
export const MACHINE_DEFAULTS: Readonly<MachineOptions>;
export const STATES: readonly State[];

export function backoffDelayMs(attempt: number, options?: { baseMs?: number; capMs?: number; random?: () => number }): number;
export const BACKOFF_BASE_MS: number;
export const BACKOFF_CAP_MS: number;

export const CLOSE: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  PROTOCOL_ERROR: 1002;
  UNSUPPORTED_DATA: 1003;
  ABNORMAL: 1006;
  INVALID_PAYLOAD: 1007;
  POLICY: 1008;
  TOO_BIG: 1009;
  INTERNAL: 1011;
  BUSY: 1013;
  REPLACED: 4002;
}>;
export function isTerminalClose(code: number): boolean;

export const HEADER_BYTES: 20;
export const SLICE_VERSION: 1;
export const KIND_PCM_F16: 1;
export const FLAG_DROPPABLE: 1;
export const FLAG_KEYFRAME: 2;
export function parseSliceHeader(frame: ArrayBuffer): SliceHeader | null;
export function encodeSlice(fields: {
  version?: number;
  flags?: number;
  kind?: number;
  seq?: number | bigint;
  timestampUs?: number | bigint;
  payload?: ArrayBuffer | ArrayBufferView;
}): ArrayBuffer;
export function isPcmF16(header: SliceHeader, engine?: EngineInfo): boolean;
export function decodePcmF16(frame: ArrayBuffer, offset?: number, options?: { native?: boolean }): Float32Array;

export function float16ToFloat32(half: number): number;
export function f16AudioTable(): Float32Array;
export function decodeF16(buffer: ArrayBuffer, offset?: number, out?: Float32Array | null, options?: { native?: boolean }): Float32Array;
export const HAS_FLOAT16ARRAY: boolean;

export class JitterBuffer {
  constructor(options?: { outRate?: number; srcRate?: number; startMs?: number; maxMs?: number; ringSeconds?: number });
  configure(options?: { outRate?: number; srcRate?: number; startMs?: number; maxMs?: number }): void;
  flush(): void;
  readonly bufferedMs: number;
  readonly playing: boolean;
  readonly underruns: number;
  readonly playedFrames: number;
  readonly receivedFrames: number;
  readonly trimmedFrames: number;
  pushFloat32(data: Float32Array, channels: number): void;
  pushF16(buffer: ArrayBuffer, channels: number, offset?: number): void;
  read(outL: Float32Array, outR: Float32Array | null): boolean;
}

export interface PlayerStatus {
  playing: boolean;
  bufferedMs: number;
  underruns: number;
  trimmedMs: number;
  receivedFrames: number;
  playedFrames: number;
  peakL: number;
  peakR: number;
  rmsL: number;
  rmsR: number;
  wave?: Float32Array;
}

export interface PlayerEvents {
  status: PlayerStatus;
  audiostate: { state: AudioContextState };
}

export interface PlayerOptions {
  context?: AudioContext;
  sampleRate?: number;
  /** Prebuffer before playing, and again after an underrun (ms of audio; default 250). */
  startMs?: number;
  /** Above this much queued audio the oldest is dropped back to startMs (default 1000). */
  maxMs?: number;
  workletUrl?: string;
  destination?: AudioNode;
}

export class SeatkeeperPlayer extends Emitter<PlayerEvents> {
  constructor(options?: PlayerOptions);
  start(): Promise<void>;
  readonly audioState: AudioContextState | 'none';
  readonly bufferedMs: number;
  readonly playing: boolean;
  readonly status: PlayerStatus;
  readonly ctx: AudioContext | null;
  configure(engine?: EngineInfo): void;
  setBuffer(options: { startMs?: number; maxMs?: number }): void;
  push(frame: ArrayBuffer): void;
  flush(): void;
  close(): Promise<void>;
}

export function normalizeKnobs(knobs: unknown): NormalizedKnob[];
