/** A plain typed-array tensor in host memory, the one currency every checkpoint reader and writer shares. */

export type HostDtype =
  | "float32"
  | "float16"
  | "bfloat16"
  | "float64"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

export type HostData =
  | Float32Array
  | Float64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | BigInt64Array
  | Uint16Array;

/** float16 and bfloat16 keep their raw bits in a Uint16Array (JS has no half type); bool is 0/1 in a Uint8Array. */
export interface HostTensor {
  dtype: HostDtype;
  shape: number[];
  data: HostData;
}

/** Bytes per element, as stored on disk (all formats we read are little-endian). */
export const ITEM_SIZE: Record<HostDtype, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

type ArrayCtor = {
  new (n: number): HostData;
  new (buf: ArrayBuffer, byteOffset: number, length: number): HostData;
  readonly name: string;
};

const CTOR: Record<HostDtype, ArrayCtor> = {
  float32: Float32Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
} as unknown as Record<HostDtype, ArrayCtor>;

/** True on every platform Deno ships for; the readers reinterpret file bytes in place, so they must refuse otherwise. */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Element count of a shape; callers validate shapes first, so this does not guard overflow. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Element count with the checks an untrusted shape needs (non-negative safe integers, product not
 * past 2^53); returns undefined when the shape is invalid so each format can word its own error.
 */
export function checkedNumel(shape: unknown): number | undefined {
  if (!Array.isArray(shape)) return undefined;
  let n = 1;
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) return undefined;
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

/** A zeroed typed array of the right class for dtype. */
export function allocData(dtype: HostDtype, n: number): HostData {
  return new CTOR[dtype](n);
}

/** The bytes of a tensor's data, without copying (for writers). */
export function dataBytes(data: HostData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Checks that data has the array class and length dtype and shape require; returns a reason or undefined. */
export function tensorProblem(t: HostTensor): string | undefined {
  if (!(t.dtype in CTOR)) return `unknown dtype ${String(t.dtype)}`;
  const n = checkedNumel(t.shape);
  if (n === undefined) return `bad shape ${JSON.stringify(t.shape)}`;
  const ctor = CTOR[t.dtype];
  if (!(t.data instanceof ctor)) {
    return `dtype ${t.dtype} needs a ${ctor.name}, got ${t.data?.constructor?.name}`;
  }
  if (t.data.length !== n) return `shape [${t.shape}] needs ${n} elements, data has ${t.data.length}`;
  return undefined;
}

/** Builds a tensor, throwing a TypeError when data does not fit dtype and shape (a programming error). */
export function hostTensor(dtype: HostDtype, shape: number[], data: HostData): HostTensor {
  const t = { dtype, shape, data };
  const problem = tensorProblem(t);
  if (problem) throw new TypeError(problem);
  return t;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half bits to a number (handles subnormals, inf, NaN). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** A number to IEEE half bits, rounding to nearest even like torch's .half(). */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

/** A number to bfloat16 bits, rounding to nearest even like torch's .bfloat16(). */
export function floatToBfloat16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff)) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * The values as float32, for building model weights. A float32 tensor returns its own array (no copy:
 * checkpoints are big); every other dtype is converted into a new array (int64 beyond 2^24 loses precision).
 */
export function toFloat32(t: HostTensor): Float32Array {
  const d = t.data;
  if (t.dtype === "float32") return d as Float32Array;
  const out = new Float32Array(d.length);
  if (t.dtype === "float16") {
    const lut = halfTable();
    const h = d as Uint16Array;
    for (let i = 0; i < h.length; i++) out[i] = lut[h[i]];
  } else if (t.dtype === "bfloat16") {
    const bits = new Uint32Array(out.buffer);
    const h = d as Uint16Array;
    for (let i = 0; i < h.length; i++) bits[i] = h[i] << 16;
  } else if (t.dtype === "int64") {
    const b = d as BigInt64Array;
    for (let i = 0; i < b.length; i++) out[i] = Number(b[i]);
  } else {
    out.set(d as Exclude<HostData, BigInt64Array>);
  }
  return out;
}

let halfLut: Float32Array | undefined;
function halfTable(): Float32Array {
  if (!halfLut) {
    halfLut = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) halfLut[i] = halfToFloat(i);
  }
  return halfLut;
}

/** float32 values to a tensor of dtype (rounding like torch for float16/bfloat16, truncating for ints). */
export function fromFloat32(values: Float32Array, shape: number[], dtype: HostDtype = "float32"): HostTensor {
  if (dtype === "float32") return hostTensor(dtype, shape, values);
  const out = allocData(dtype, values.length);
  if (dtype === "float16" || dtype === "bfloat16") {
    const conv = dtype === "float16" ? floatToHalf : floatToBfloat16;
    for (let i = 0; i < values.length; i++) out[i] = conv(values[i]);
  } else if (dtype === "int64") {
    for (let i = 0; i < values.length; i++) out[i] = BigInt(Math.trunc(values[i]));
  } else if (dtype === "bool") {
    for (let i = 0; i < values.length; i++) out[i] = values[i] ? 1 : 0;
  } else {
    (out as Exclude<HostData, BigInt64Array>).set(values);
  }
  return hostTensor(dtype, shape, out);
}
