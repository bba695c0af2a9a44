// IEEE 754 half-precision decoding. The bit-level decoder is the reference
// and the fallback; `Float16Array` (recent engines only) is used when present.

/** IEEE 754 half → float, exactly (NaN and ±Infinity included). */
export function float16ToFloat32(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x03ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

let table = null;

/**
 * All 65536 halves as floats, for decoding audio with one lookup a sample.
 * Non-finite halves map to 0 so a corrupt sample can never blow up the
 * output. Built on first use (256 KiB), so importing this module costs nothing.
 */
export function f16AudioTable() {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const v = float16ToFloat32(h);
      table[h] = Number.isFinite(v) ? v : 0;
    }
  }
  return table;
}

/** Whether this engine has a native `Float16Array`. */
export const HAS_FLOAT16ARRAY = typeof globalThis.Float16Array === 'function';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Decodes little-endian f16 samples from `buf` (an ArrayBuffer) starting at
 * byte `offset` into `out` (a Float32Array, allocated when not given).
 * Returns `out`. `native: false` forces the bit-level path (for tests).
 */
export function decodeF16(buf, offset = 0, out = null, { native = HAS_FLOAT16ARRAY } = {}) {
  const n = Math.floor((buf.byteLength - offset) / 2);
  const dst = out || new Float32Array(n);
  const count = Math.min(n, dst.length);
  const aligned = LITTLE_ENDIAN && offset % 2 === 0;
  if (native && aligned) {
    const src = new globalThis.Float16Array(buf, offset, count);
    for (let i = 0; i < count; i++) {
      const v = src[i];
      dst[i] = v === v && v !== Infinity && v !== -Infinity ? v : 0;
    }
  } else if (aligned) {
    const t = f16AudioTable();
    const src = new Uint16Array(buf, offset, count);
    for (let i = 0; i < count; i++) dst[i] = t[src[i]];
  } else {
    const t = f16AudioTable();
    const v = new DataView(buf, offset);
    for (let i = 0; i < count; i++) dst[i] = t[v.getUint16(i * 2, true)];
  }
  return dst;
}
