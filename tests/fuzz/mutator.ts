/**
 * The fuzz test's mutations (io/fuzz_test.ts): bit flips, truncation, extension, splices from other files,
 * edge values written into header, length and shape fields, safetensors JSON edits, pickle opcode snippets.
 */
import type { Prng } from "../../fixtures/mulberry32.ts";
import { concatBytes } from "../../io/concat_bytes.ts";
import { latin1, unicode } from "./seeds.ts";

const concat = (...parts: Uint8Array[]) => concatBytes(parts);
// ---------------------------------------------------------------------------------------------------------
// Mutations.

const INT32 = [
  0,
  1,
  -1,
  2,
  7,
  8,
  0x7f,
  0x80,
  0xff,
  0x7fff,
  0x8000,
  0xffff,
  0x10000,
  348,
  540,
  0x7fffffff,
  -0x80000000,
];
const INT64 = [
  0n,
  1n,
  -1n,
  2n ** 31n,
  2n ** 32n,
  2n ** 40n,
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 62n,
  2n ** 63n - 1n,
  -(2n ** 63n),
];
const FLOATS = [0, -0, 1, -1, 0.5, 1e-45, 1e38, 3.4e38, Infinity, -Infinity, NaN, 2 ** 31, 1e300];

/** Pickle fragments that stress the reader: marks, deep containers, huge lengths, memo lookups, calls. */
const PICKLE_SNIPPETS: number[][] = [
  [0x28],
  new Array(200).fill(0x28),
  new Array(500).fill(0x5d),
  [0x5d, ...new Array(300).fill([0x5d, 0x61]).flat()], // a list nested 300 deep
  new Array(300).fill(0x32), // DUP
  [0x58, 0xff, 0xff, 0xff, 0x7f],
  [0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
  [0x8e, 0, 0, 0, 0, 1, 0, 0, 0],
  [0x95, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
  [0x8b, 0xff, 0xff, 0xff, 0xff],
  [0x8a, 0xff, ...new Array(255).fill(0xff)],
  [0x6a, 0xff, 0xff, 0xff, 0xff],
  [0x68, 0],
  [0x72, 0xff, 0xff, 0xff, 0xff],
  [0x94],
  [0x74],
  [0x52],
  [0x81],
  [0x62],
  [0x73],
  [0x75],
  [0x65],
  [0x61],
  [0x93],
  [0x51],
  [0x30],
  [0x31],
  [0x2e],
  [0x4e],
  [0x85],
  [0x86],
  [0x87],
  [0x29],
  [0x7d],
  [0x4a, 0xff, 0xff, 0xff, 0x7f],
  [0x4a, 0, 0, 0, 0x80],
  [0x47, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0],
  [...latin1("ctorch._utils\n_rebuild_tensor_v2\n")],
  [...latin1("ctorch\nFloatStorage\n")],
  [...latin1("ctorch\nLongStorage\n")],
  [...latin1("ccollections\nOrderedDict\n")],
  [...latin1("cposix\nsystem\n")],
  [...latin1("ctorch._utils\n_rebuild_parameter\n")],
  [...unicode("storage")],
  [0x8c, 5, ...latin1("torch"), 0x8c, 4, ...latin1("Size"), 0x93],
  [0x80, 2],
  [0x80, 9],
  [0x69],
  [0x6f],
];

/** NIfTI-1 header fields: offset and kind (written in the file's byte order). */
const NIFTI1_FIELDS: [number, "i16" | "i32" | "f32" | "u8"][] = [
  [0, "i32"],
  [40, "i16"],
  [42, "i16"],
  [44, "i16"],
  [46, "i16"],
  [48, "i16"],
  [50, "i16"],
  [52, "i16"],
  [54, "i16"],
  [70, "i16"],
  [72, "i16"],
  [76, "f32"],
  [80, "f32"],
  [84, "f32"],
  [88, "f32"],
  [92, "f32"],
  [108, "f32"],
  [112, "f32"],
  [116, "f32"],
  [252, "i16"],
  [254, "i16"],
  [256, "f32"],
  [268, "f32"],
  [280, "f32"],
  [296, "f32"],
  [312, "f32"],
  [344, "u8"],
  [345, "u8"],
  [346, "u8"],
  [348, "u8"],
];
/** NIfTI-2: sizeof_hdr, datatype, bitpix, dim[0..7] (int64), pixdim, vox_offset, scl_*, codes, magic. */
const NIFTI2_FIELDS: [number, "i16" | "i32" | "i64" | "f64" | "u8"][] = [
  [0, "i32"],
  [4, "u8"],
  [8, "u8"],
  [12, "i16"],
  [14, "i16"],
  [16, "i64"],
  [24, "i64"],
  [32, "i64"],
  [40, "i64"],
  [48, "i64"],
  [56, "i64"],
  [64, "i64"],
  [72, "i64"],
  [104, "f64"],
  [112, "f64"],
  [168, "i64"],
  [176, "f64"],
  [184, "f64"],
  [344, "i32"],
  [348, "i32"],
  [400, "f64"],
  [540, "u8"],
];

export class Mutator {
  log: string[] = [];
  constructor(readonly r: Prng, readonly others: Uint8Array[]) {}

  chance(p: number) {
    return this.r.uniform() < p;
  }

  /** A position, usually inside focus. */
  at(b: Uint8Array, focus: [number, number]): number {
    if (b.length === 0) return 0;
    const [lo, hi] = focus;
    if (this.chance(0.75) && Math.min(hi, b.length) > lo) return this.r.int(lo, Math.min(hi, b.length) - 1);
    return this.r.int(0, b.length - 1);
  }

  /** One to four byte-level edits. */
  bytes(input: Uint8Array, focus: [number, number]): Uint8Array {
    let b: Uint8Array = input.slice();
    const n = this.r.int(1, 4);
    for (let k = 0; k < n; k++) {
      const op = this.r.int(0, 9);
      const p = this.at(b, focus);
      switch (op) {
        case 0: { // bit flips
          const flips = this.r.int(1, 8);
          for (let j = 0; j < flips && b.length; j++) b[this.at(b, focus)] ^= 1 << this.r.int(0, 7);
          this.log.push(`flip x${flips}`);
          break;
        }
        case 1:
          if (b.length) b[p] = this.r.pick([0, 0xff, 0x7f, 0x80, 1, this.r.int(0, 255)]);
          this.log.push(`byte@${p}`);
          break;
        case 2: { // a huge or edge integer written into a length/shape/offset field
          const width = this.r.pick([2, 4, 8]);
          const le = this.chance(0.8);
          const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
          if (p + width <= b.length) {
            if (width === 2) dv.setInt16(p, this.r.pick(INT32), le);
            else if (width === 4) dv.setInt32(p, this.r.pick(INT32), le);
            else dv.setBigInt64(p, BigInt.asIntN(64, this.r.pick(INT64)), le);
          }
          this.log.push(`int${width * 8}@${p}`);
          break;
        }
        case 3:
          b = b.slice(0, this.r.int(0, b.length));
          this.log.push(`truncate@${b.length}`);
          break;
        case 4: {
          const extra = new Uint8Array(this.r.int(1, 4096));
          if (this.chance(0.5)) { for (let j = 0; j < extra.length; j++) extra[j] = this.r.int(0, 255); }
          b = concat(b, extra);
          this.log.push(`extend+${extra.length}`);
          break;
        }
        case 5: { // splice: a chunk of another valid file (or this one) over this position
          const src = this.r.pick([...this.others, b]);
          if (!src.length) break;
          const from = this.r.int(0, src.length - 1);
          const len = Math.min(this.r.int(1, 256), src.length - from, b.length - p);
          if (len > 0) b.set(src.subarray(from, from + len), p);
          this.log.push(`splice${len}@${p}`);
          break;
        }
        case 6: { // insert a chunk
          const src = this.r.pick([...this.others, b]);
          const from = src.length ? this.r.int(0, src.length - 1) : 0;
          const chunk = src.slice(from, from + this.r.int(1, 64));
          b = concat(b.subarray(0, p), chunk, b.subarray(p));
          this.log.push(`insert${chunk.length}@${p}`);
          break;
        }
        case 7: { // delete a chunk
          const len = this.r.int(1, 64);
          b = concat(b.subarray(0, p), b.subarray(p + len));
          this.log.push(`delete${len}@${p}`);
          break;
        }
        case 8: { // repeat a chunk (deep nesting, long runs)
          const len = this.r.int(1, 8), times = this.r.int(2, 200);
          const chunk = b.slice(p, p + len);
          b = concat(b.subarray(0, p), ...new Array(times).fill(chunk), b.subarray(p));
          this.log.push(`repeat${len}x${times}@${p}`);
          break;
        }
        case 9: { // a float edge value (NIfTI pixdim, scl_slope, vox_offset)
          const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
          if (p + 4 <= b.length) dv.setFloat32(p, this.r.pick(FLOATS), this.chance(0.8));
          this.log.push(`f32@${p}`);
          break;
        }
      }
    }
    return b;
  }

  /** A NIfTI header field rewritten with an edge value, in the header's own byte order. */
  niftiField(input: Uint8Array): Uint8Array {
    const b = input.slice();
    if (b.length < 348) return b;
    const dv = new DataView(b.buffer);
    const le = dv.getInt32(0, true) === 348 || dv.getInt32(0, true) === 540;
    const nifti2 = (le ? dv.getInt32(0, true) : dv.getInt32(0, false)) === 540;
    const fields: readonly (readonly [number, string])[] = nifti2 ? NIFTI2_FIELDS : NIFTI1_FIELDS;
    const [off, kind] = this.r.pick(fields);
    if (off + 8 > b.length) return b;
    if (kind === "u8") b[off] = this.r.int(0, 255);
    else if (kind === "i16") dv.setInt16(off, this.r.pick([...INT32, this.r.int(-5, 20)]), le);
    else if (kind === "i32") dv.setInt32(off, this.r.pick(INT32), le);
    else if (kind === "i64") {
      dv.setBigInt64(off, BigInt.asIntN(64, this.r.pick([...INT64, BigInt(this.r.int(-5, 20))])), le);
    } else if (kind === "f32") dv.setFloat32(off, this.r.pick(FLOATS), le);
    else dv.setFloat64(off, this.r.pick(FLOATS), le);
    this.log.push(`field@${off}`);
    return b;
  }

  /** An edit of the safetensors JSON header: a field set to an odd value, an entry replaced, many added. */
  safetensorsJson(input: Uint8Array): Uint8Array {
    const n = Number(new DataView(input.buffer, input.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(input.subarray(8, 8 + n))) as Record<string, unknown>;
    const data = input.subarray(8 + n);
    const names = Object.keys(header);
    const name = this.chance(0.9) && names.length ? this.r.pick(names) : this.r.pick(["__metadata__", "new"]);
    const weird = (): unknown => {
      const deep: unknown[] = [];
      let d: unknown[] = deep;
      for (let i = 0; i < 3000; i++) d.push(d = []);
      return this.r.pick<unknown>([
        null,
        true,
        "F32",
        "",
        [],
        {},
        -1,
        1.5,
        2 ** 53,
        2 ** 64,
        1e308,
        "x".repeat(5000),
        deep,
        new Array(10000).fill(0),
        [2 ** 31, 2 ** 31],
        [[1]],
        [1, "2"],
        [0, 2 ** 53],
        [2 ** 40, 2 ** 40, 2 ** 40],
        ["F32"],
        { dtype: "F32" },
        [-1, 4],
        [4, 0],
        [0, 2 ** 31],
      ]);
    };
    const op = this.r.int(0, 4);
    const entry = header[name] && typeof header[name] === "object" && !Array.isArray(header[name])
      ? { ...(header[name] as Record<string, unknown>) }
      : {};
    if (op === 0) header[name] = weird();
    else if (op === 1) {
      const field = this.r.pick(["dtype", "shape", "data_offsets"]);
      entry[field] = weird();
      header[name] = entry;
    } else if (op === 2) {
      delete entry[this.r.pick(["dtype", "shape", "data_offsets"])];
      header[name] = entry;
    } else if (op === 3) {
      for (let i = 0; i < this.r.int(1, 3000); i++) header[`k${i}`] = entry;
    } else {
      entry.dtype = this.r.pick([
        "F32",
        "F16",
        "BF16",
        "F64",
        "I64",
        "I32",
        "I16",
        "I8",
        "U8",
        "BOOL",
        "U64",
        "F8_E4M3",
      ]);
      header[name] = entry;
    }
    this.log.push(`json${op}:${name.slice(0, 20)}`);
    const json = new TextEncoder().encode(JSON.stringify(header));
    const prefix = new Uint8Array(8);
    const delta = this.chance(0.15) ? this.r.int(-8, 8) : 0;
    new DataView(prefix.buffer).setBigUint64(0, BigInt(Math.max(0, json.length + delta)), true);
    return concat(prefix, json, data);
  }

  /** Pickle opcode fragments written over or inserted into the pickle. */
  pickleSnippet(input: Uint8Array, focus: [number, number], insert: boolean): Uint8Array {
    const snippet = Uint8Array.from(this.r.pick(PICKLE_SNIPPETS));
    const p = this.at(input, focus);
    this.log.push(`snippet${snippet.length}${insert ? "+" : "="}@${p}`);
    if (insert) return concat(input.subarray(0, p), snippet, input.subarray(p));
    const b = input.slice();
    b.set(snippet.subarray(0, Math.max(0, b.length - p)), p);
    return b;
  }
}
