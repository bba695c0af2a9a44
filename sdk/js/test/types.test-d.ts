// Type test for the hand-written index.d.ts: compiled with `tsc --noEmit`
// (npm test). Lines marked @ts-expect-error must stay errors.

import {
  SeatkeeperClient,
  SeatkeeperPlayer,
  createMachine,
  parseSliceHeader,
  normalizeKnobs,
  backoffDelayMs,
  CLOSE,
  type State,
  type MachineAction,
  type NormalizedKnob,
} from 'seatkeeper-client';

const player = new SeatkeeperPlayer({ startMs: 300 });
const client = new SeatkeeperClient({ url: 'ws://127.0.0.1:1318/ws', player, maxAttempts: 5 });

client.on('ready', (r) => {
  const id: string = r.session_id;
  const resumed: boolean = r.recovered;
  const rate: number | undefined = r.engine.sample_rate;
  void id, resumed, rate;
});
client.on('slice', ({ header, data }) => {
  const seq: number = header.seq;
  const bytes: number = data.byteLength;
  void seq, bytes;
});
client.on('busy', ({ retryAfterS }) => void (retryAfterS satisfies number));
client.on('ended', ({ reason }) => {
  if (reason === 'replaced') void reason;
});
const off = client.on('state', ({ state }) => void (state satisfies State));
off();
// @ts-expect-error: not an event of the client
client.on('nope', () => {});
// @ts-expect-error: the detail of 'stats' has no session_id
client.on('stats', (s) => void s.session_id.length);
client.setParams({ volume: 0.5, voice: "b", loop: true });
client.retryNow();
client.connect();
client.disconnect();

const m = createMachine({ clientId: 'x' });
const actions: MachineAction[] = m.handle({ type: 'start', now: 0 });
for (const a of actions) if (a.type === 'setTimer') void (a.ms satisfies number);
// @ts-expect-error: events need a clock
m.handle({ type: 'start' });

const h = parseSliceHeader(new ArrayBuffer(20));
if (h) void (h.seqBig satisfies bigint);
const knobs: NormalizedKnob[] = normalizeKnobs([]);
for (const k of knobs) if (k.kind === 'choice') void k.options[0].label;
void (backoffDelayMs(3) satisfies number);
void (CLOSE.REPLACED satisfies 4002);
player.on('status', (s) => void (s.bufferedMs satisfies number));
