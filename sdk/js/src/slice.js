// The binary slice frame: a 20-byte little-endian header, then the payload.
//
//   byte 0      version (1)
//   byte 1      flags: bit 0 droppable, bit 1 keyframe
//   bytes 2-3   kind, u16 (engine-defined; 1 = PCM f16 interleaved)
//   bytes 4-11  seq, u64 (1, 2, 3 … per session, continues across a resume)
//   bytes 12-19 media timestamp in microseconds, u64

import { decodeF16 } from './f16.js';

/** Slice header length in bytes. */
export const HEADER_BYTES = 20;
/** Slice header version this client understands. */
export const SLICE_VERSION = 1;
/** Slice kind of PCM f16 little-endian, interleaved (the demo engine's). */
export const KIND_PCM_F16 = 1;
/** Header flag: the server may drop this slice under flow control. */
export const FLAG_DROPPABLE = 1;
/** Header flag: decoding can start at this slice. */
export const FLAG_KEYFRAME = 2;

/**
 * Parses a slice header from an ArrayBuffer. Returns null when the frame is
 * shorter than a header. `seq` is a Number (exact up to 2^53), `seqBig` the
 * exact BigInt; likewise `timestampUs` / `timestampBig`.
 */
export function parseSliceHeader(buf) {
  if (!(buf instanceof ArrayBuffer) || buf.byteLength < HEADER_BYTES) return null;
  const v = new DataView(buf);
  const flags = v.getUint8(1);
  const seqBig = v.getBigUint64(4, true);
  const tsBig = v.getBigUint64(12, true);
  return {
    version: v.getUint8(0),
    flags,
    droppable: (flags & FLAG_DROPPABLE) !== 0,
    keyframe: (flags & FLAG_KEYFRAME) !== 0,
    kind: v.getUint16(2, true),
    seq: Number(seqBig),
    seqBig,
    timestampUs: Number(tsBig),
    timestampBig: tsBig,
    payloadBytes: buf.byteLength - HEADER_BYTES,
  };
}

/** Builds a slice frame (for tests and tools): header fields plus a payload. */
export function encodeSlice({ version = SLICE_VERSION, flags = 0, kind = KIND_PCM_F16, seq = 1, timestampUs = 0, payload = new Uint8Array(0) }) {
  const bytes = payload instanceof ArrayBuffer ? new Uint8Array(payload) : new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
  const buf = new ArrayBuffer(HEADER_BYTES + bytes.byteLength);
  const v = new DataView(buf);
  v.setUint8(0, version);
  v.setUint8(1, flags);
  v.setUint16(2, kind, true);
  v.setBigUint64(4, BigInt(seq), true);
  v.setBigUint64(12, BigInt(timestampUs), true);
  new Uint8Array(buf, HEADER_BYTES).set(bytes);
  return buf;
}

/** Whether a slice can be played as `pcm_f16le` given `ready.engine`. */
export function isPcmF16(header, engine = {}) {
  const kind = engine.kind ?? KIND_PCM_F16;
  return header.version === SLICE_VERSION && header.kind === kind && kind === KIND_PCM_F16 && (!engine.format || engine.format === 'pcm_f16le');
}

/** Decodes a PCM f16 slice's payload (after the header) into a Float32Array, interleaved. */
export function decodePcmF16(buf, offset = HEADER_BYTES, opts) {
  return decodeF16(buf, offset, null, opts);
}
