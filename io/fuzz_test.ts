/**
 * Seeded fuzzing of the readers that take untrusted bytes (issue #13): NIfTI (plain and gzip), the
 * restricted pickle reader, whole PyTorch checkpoints (zip and legacy) and safetensors. Each case mutates a
 * valid file (fixtures written by other tools, plus small ones built here): bit flips, truncation, extension,
 * splices from other files, huge numbers written into header, length and shape fields, JSON-level edits of
 * a safetensors header, pickle opcode snippets, and NIfTI header fields rewritten before re-compression.
 *
 * A reader must return a value or throw a UserError subclass. Anything else (TypeError, RangeError, "Array
 * buffer allocation failed") fails the test, as does a case that runs past CASE_MS or stops answering (the
 * cases run in a worker this file starts on itself, watched from here, so a hang is caught, not waited on),
 * or resident memory rising past a bound derived from the largest seed (sampled from here while the worker
 * runs). Each failure prints the seed and case to replay:
 *
 *   FUZZ_SEED=13 FUZZ_CASE=pickle:1234 deno test -A io/fuzz_test.ts   # one case
 *   FUZZ_LONG=1 deno test -A io/fuzz_test.ts                          # 100000 cases per format
 *   FUZZ_N=5000 FUZZ_SEED=7 deno test -A io/fuzz_test.ts               # any count, any seed
 */
import assert from "node:assert/strict";
import { gunzipSync, gzipSync } from "node:zlib";
import { mixSeed, Prng } from "../fixtures/mulberry32.ts";
import { UserError } from "../errors.ts";
import { readNiftiBytes } from "./nifti_read.ts";
import { decodeSafetensorsWithMetadata, encodeSafetensors } from "./safetensors.ts";
import { unpickle } from "./pickle.ts";
import { type PthStorage, storageFromPid, torchGlobals } from "./torch_globals.ts";
import { flattenTensors, readPth } from "./pth.ts";
import { readZipIndex } from "./zip_index.ts";
import { hostTensor } from "./host_tensor.ts";
import { concatBytes } from "./concat_bytes.ts";

const concat = (...parts: Uint8Array[]) => concatBytes(parts);

const FORMATS = ["nifti", "safetensors", "pickle", "pth"] as const;
type Format = typeof FORMATS[number] | "planted";

/** Cases per format in the normal suite (about 10 s in all on a slow core); FUZZ_N or FUZZ_LONG for more. */
const DEFAULT_N: Record<typeof FORMATS[number], number> = {
  nifti: 1500,
  safetensors: 2000,
  pickle: 3000,
  pth: 1000,
};
/** One case must finish within this (a fast reader takes well under 50 ms on these inputs). */
const CASE_MS = 3000;
/** No word from the worker for this long means a case hangs (longer than CASE_MS: GC pauses, a busy machine). */
const WATCHDOG_MS = 15_000;
/** Resident memory may rise by this many times the largest seed's decoded size, plus RSS_SLACK. */
const RSS_FACTOR = 64;
/** The worker's own runtime, the readers' module graph and garbage not yet collected. */
const RSS_SLACK = 256 << 20;

const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;

// ---------------------------------------------------------------------------------------------------------
// Seeds: valid files of each format.

interface Seed {
  name: string;
  /** The bytes a reader gets. */
  bytes: Uint8Array;
  /** For gzip NIfTI: the decompressed file (mutated, then compressed again, so edits reach the parser). */
  plain?: Uint8Array;
  /** Byte range most worth mutating (a header, a pickle inside a zip). */
  focus: [number, number];
}

const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const u32le = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
const unicode = (s: string) => [0x58, ...u32le(s.length), ...latin1(s)];

/** The pickle of {"w": a 2 x 3 float tensor} as torch's legacy format writes it (storage key "0"). */
function legacyRootPickle(): Uint8Array {
  return Uint8Array.from([
    0x80,
    2,
    0x7d,
    ...unicode("w"),
    ...latin1("ctorch._utils\n_rebuild_tensor_v2\n"),
    0x28,
    0x28,
    ...unicode("storage"),
    ...latin1("ctorch\nFloatStorage\n"),
    ...unicode("0"),
    ...unicode("cpu"),
    0x4b,
    6,
    0x74,
    0x51, // the persistent id tuple, BINPERSID
    0x4b,
    0,
    0x4b,
    2,
    0x4b,
    3,
    0x86,
    0x4b,
    3,
    0x4b,
    1,
    0x86,
    0x89,
    0x7d,
    0x74,
    0x52, // offset, size, stride
    0x73,
    0x2e,
  ]);
}

/** A whole legacy (pre-1.6) torch.save file: magic, protocol, sys info, the object, storage keys, storage. */
function legacyPth(): Uint8Array {
  const magic = [0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];
  const protocol = [0x80, 2, 0x4d, 0xe9, 0x03, 0x2e];
  const sysInfo = [0x80, 2, 0x7d, 0x2e];
  const keys = [0x80, 2, 0x5d, ...unicode("0"), 0x61, 0x2e];
  const storage = new Uint8Array(8 + 24);
  new DataView(storage.buffer).setBigInt64(0, 6n, true);
  new Float32Array(storage.buffer, 8, 6).set([1, 2, 3, 4, 5, 6]);
  return Uint8Array.from([...magic, ...protocol, ...sysInfo, ...legacyRootPickle(), ...keys, ...storage]);
}

/** data.pkl of a torch zip, and where it sits in the file. */
async function pickleOf(path: string): Promise<{ bytes: Uint8Array; at: [number, number] }> {
  const f = await Deno.open(path);
  try {
    const entries = await readZipIndex(f, (await f.stat()).size, path);
    const e = [...entries.values()].find((e) => e.name.endsWith("/data.pkl"))!;
    const file = await Deno.readFile(path);
    return { bytes: file.slice(e.dataStart, e.dataStart + e.size), at: [e.dataStart, e.dataStart + e.size] };
  } finally {
    f.close();
  }
}

async function seedsOf(format: Format): Promise<Seed[]> {
  const pth = ["samples/pth/test.pt", "samples/pth/test_with_key.pt", "samples/pth/fortran_tensor_3d.pth"];
  if (format === "nifti") {
    const out: Seed[] = [];
    for (const e of Deno.readDirSync(`${FIXTURES}samples/nifti`)) {
      const bytes = await Deno.readFile(`${FIXTURES}samples/nifti/${e.name}`);
      const gz = e.name.endsWith(".gz");
      out.push({
        name: e.name,
        bytes,
        plain: gz ? new Uint8Array(gunzipSync(bytes)) : undefined,
        focus: [0, 544],
      });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }
  if (format === "safetensors") {
    const small = encodeSafetensors({
      f32: hostTensor("float32", [2, 3], new Float32Array([1, -2, 3.5, 0, 1e-30, -1e30])),
      i64: hostTensor("int64", [3], new BigInt64Array([-1n, 2n ** 62n, 0n])),
      f16: hostTensor("float16", [2], new Uint16Array([0x3c00, 0xc000])),
      empty: hostTensor("float32", [0, 4], new Float32Array(0)),
      scalar: hostTensor("float32", [], new Float32Array([42])),
    }, { kind: "trainable", epoch: "3" });
    const ref = await Deno.readFile(`${FIXTURES}reference/tiny_sam.io.safetensors`);
    const head = (b: Uint8Array) => 8 + Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
    return [
      { name: "small", bytes: small, focus: [0, head(small)] },
      { name: "tiny_sam.io.safetensors", bytes: ref, focus: [0, head(ref)] },
    ];
  }
  if (format === "pickle") {
    const out: Seed[] = [];
    for (const p of [...pth, "reference/tiny_sam.pth"]) {
      const { bytes } = await pickleOf(`${FIXTURES}${p}`);
      out.push({ name: `${p}:data.pkl`, bytes, focus: [0, bytes.length] });
    }
    const legacy = legacyRootPickle();
    out.push({ name: "legacy root", bytes: legacy, focus: [0, legacy.length] });
    return out;
  }
  if (format === "pth") {
    const out: Seed[] = [];
    for (const p of [...pth, "reference/tiny_sam.pth"]) {
      out.push({
        name: p,
        bytes: await Deno.readFile(`${FIXTURES}${p}`),
        focus: (await pickleOf(`${FIXTURES}${p}`)).at,
      });
    }
    const legacy = legacyPth();
    out.push({ name: "legacy", bytes: legacy, focus: [0, legacy.length - 32] });
    return out;
  }
  return [{ name: "planted", bytes: new Uint8Array(64), focus: [0, 64] }];
}

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

class Mutator {
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

// ---------------------------------------------------------------------------------------------------------
// One case: a mutant, and the reader it goes to.

interface Case {
  describe: string;
  /** Reads the case's bytes (a promise for the async readers). */
  run: () => unknown;
}

/** A case for planted-bug self-tests: proves the harness catches a crash, a hang and a big allocation. */
function plantedCase(index: number, plant: string): Case {
  return {
    describe: `planted ${plant}`,
    run: async () => {
      if (index !== 3) throw new UserError("fine");
      if (plant === "crash") throw new TypeError("planted crash");
      if (plant === "slow") await new Promise((r) => setTimeout(r, CASE_MS + 200));
      if (plant === "hang") { for (;;); }
      if (plant === "alloc") {
        const big = new Uint8Array(768 << 20).fill(1); // touched, so it is resident
        await new Promise((r) => setTimeout(r, 300));
        return big.length;
      }
    },
  };
}

function makeCase(format: Format, seeds: Seed[], r: Prng, tmp: string, index: number, plant: string): Case {
  if (format === "planted") return plantedCase(index, plant);
  const seed = r.pick(seeds);
  const m = new Mutator(r, seeds.map((s) => s.bytes));
  const file = `fuzz-${format}`;
  let bytes: Uint8Array;
  if (format === "nifti") {
    if (seed.plain && m.chance(0.7)) {
      let plain = m.chance(0.5) ? m.niftiField(seed.plain) : m.bytes(seed.plain, seed.focus);
      if (m.chance(0.3)) plain = m.niftiField(plain);
      bytes = new Uint8Array(gzipSync(plain, { level: 1 }));
      if (m.chance(0.2)) bytes = m.bytes(bytes, [0, 32]);
    } else if (!seed.plain && m.chance(0.5)) {
      bytes = m.niftiField(seed.bytes);
      if (m.chance(0.5)) bytes = m.bytes(bytes, seed.focus);
    } else {
      bytes = m.bytes(seed.bytes, seed.plain ? [0, 64] : seed.focus);
    }
    return { describe: `${seed.name}: ${m.log.join(" ")}`, run: () => readNiftiBytes(bytes, file) };
  }
  if (format === "safetensors") {
    bytes = m.chance(0.5) ? m.safetensorsJson(seed.bytes) : seed.bytes;
    if (m.log.length === 0 || m.chance(0.3)) bytes = m.bytes(bytes, seed.focus);
    return {
      describe: `${seed.name}: ${m.log.join(" ")}`,
      run: () => decodeSafetensorsWithMetadata(bytes, file),
    };
  }
  if (format === "pickle") {
    bytes = m.chance(0.4) ? m.pickleSnippet(seed.bytes, seed.focus, m.chance(0.5)) : seed.bytes;
    if (m.log.length === 0 || m.chance(0.4)) bytes = m.bytes(bytes, seed.focus);
    return {
      describe: `${seed.name}: ${m.log.join(" ")}`,
      run: () => {
        const seen = new Map<string, PthStorage>();
        const { value } = unpickle(bytes, {
          globals: torchGlobals(file),
          persistentLoad: (pid) => storageFromPid(pid, file, seen),
          file,
        });
        return flattenTensors(value, file);
      },
    };
  }
  // pth: the whole checkpoint through a file (zip index, pickle, storages, views).
  bytes = m.chance(0.3) ? m.pickleSnippet(seed.bytes, seed.focus, false) : seed.bytes;
  if (m.log.length === 0 || m.chance(0.4)) bytes = m.bytes(bytes, seed.focus);
  return {
    describe: `${seed.name}: ${m.log.join(" ")}`,
    run: async () => {
      await Deno.writeFile(tmp, bytes);
      return await readPth(tmp);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// The worker: runs cases, reports each before it starts (for the watchdog) and every failure.

interface Job {
  formats: Format[];
  seed: number;
  n: number;
  only?: number;
  plant?: string;
}

type Report =
  | { t: "ready"; largest: number }
  | { t: "at"; format: Format; i: number }
  | { t: "bad"; format: Format; i: number; describe: string; error: string }
  | { t: "done"; ok: number; refused: number; slowestMs: number };

async function workerMain(job: Job, post: (r: Report) => void) {
  const tmp = await Deno.makeTempFile({ prefix: "fuzz_", suffix: ".pth" });
  try {
    const seeds = new Map<Format, Seed[]>();
    let largest = 0;
    for (const f of job.formats) {
      seeds.set(f, await seedsOf(f));
      for (const s of seeds.get(f)!) largest = Math.max(largest, s.bytes.length, s.plain?.length ?? 0);
    }
    // Every seed must be valid, or the fuzzing would only ever exercise the first check.
    if (!job.plant && job.only === undefined) await checkSeeds(seeds, tmp);
    post({ t: "ready", largest });
    let ok = 0, refused = 0, slowestMs = 0;
    for (const [fi, format] of job.formats.entries()) {
      const from = job.only ?? 0, to = job.only !== undefined ? job.only + 1 : job.n;
      for (let i = from; i < to; i++) {
        post({ t: "at", format, i });
        const r = new Prng(mixSeed(job.seed, fi + 1, i));
        let c: Case;
        try {
          c = makeCase(format, seeds.get(format)!, r, tmp, i, job.plant ?? "");
        } catch (err) {
          post({ t: "bad", format, i, describe: "building the case", error: String(err) });
          continue;
        }
        const t0 = performance.now();
        try {
          await c.run();
          ok++;
        } catch (err) {
          if (err instanceof UserError && !err.message.includes("\n")) refused++;
          else {
            const e = err as Error;
            const why = err instanceof UserError
              ? `multi-line message: ${e.message}`
              : `${e?.name}: ${e?.message}`;
            post({ t: "bad", format, i, describe: c.describe, error: why.slice(0, 300) });
          }
        }
        const ms = performance.now() - t0;
        slowestMs = Math.max(slowestMs, ms);
        if (ms > CASE_MS) {
          post({ t: "bad", format, i, describe: c.describe, error: `took ${ms.toFixed(0)} ms` });
        }
      }
    }
    post({ t: "done", ok, refused, slowestMs });
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

async function checkSeeds(seeds: Map<Format, Seed[]>, tmp: string) {
  for (const [format, list] of seeds) {
    for (const s of list) {
      if (format === "nifti") await readNiftiBytes(s.bytes, s.name);
      else if (format === "safetensors") decodeSafetensorsWithMetadata(s.bytes, s.name);
      else if (format === "pickle") {
        const seen = new Map<string, PthStorage>();
        const { value } = unpickle(s.bytes, {
          globals: torchGlobals(s.name),
          persistentLoad: (pid) => storageFromPid(pid, s.name, seen),
          file: s.name,
        });
        if (!flattenTensors(value, s.name).size) throw new Error(`seed ${s.name} holds no tensor`);
      } else if (format === "pth") {
        await Deno.writeFile(tmp, s.bytes);
        if (!(await readPth(tmp)).size) throw new Error(`seed ${s.name} holds no tensor`);
      }
    }
  }
}

const scope = globalThis as unknown as {
  name?: string;
  onmessage: ((e: MessageEvent<Job>) => void) | null;
  postMessage: (r: Report) => void;
  close: () => void;
};

// ---------------------------------------------------------------------------------------------------------
// The driver: starts the worker, watches it, samples memory, collects failures.

interface FuzzResult {
  failures: string[];
  ok: number;
  refused: number;
  slowestMs: number;
  rssRise: number;
  rssBound: number;
  cases: number;
}

async function fuzz(job: Job, watchdogMs = WATCHDOG_MS): Promise<FuzzResult> {
  const worker = new Worker(import.meta.url, { type: "module", name: "fuzz-worker" });
  const failures: string[] = [];
  const replay = (format: Format, i: number) => `FUZZ_SEED=${job.seed} FUZZ_CASE=${format}:${i}`;
  let last: { format: Format; i: number } | undefined;
  let baseline = 0, peak = 0, peakAt = "", largest = 0, cases = 0;
  let result: Extract<Report, { t: "done" }> | undefined;
  await new Promise<void>((resolve) => {
    let heard = performance.now();
    const finish = () => {
      clearInterval(timer);
      worker.terminate();
      resolve();
    };
    const timer = setInterval(() => {
      const rss = Deno.memoryUsage().rss;
      if (baseline && rss > peak) {
        peak = rss;
        peakAt = last ? replay(last.format, last.i) : "";
      }
      if (performance.now() - heard > watchdogMs) {
        failures.push(
          `${
            last ? replay(last.format, last.i) : "before the first case"
          }: no answer for ${watchdogMs} ms (a hang)`,
        );
        finish();
      }
    }, 5);
    worker.onerror = (e) => {
      e.preventDefault();
      failures.push(`${last ? replay(last.format, last.i) : "worker"}: the worker died: ${e.message}`);
      finish();
    };
    worker.onmessage = (e: MessageEvent<Report>) => {
      heard = performance.now();
      const r = e.data;
      if (r.t === "ready") {
        largest = r.largest;
        baseline = peak = Deno.memoryUsage().rss;
      } else if (r.t === "at") {
        last = r;
        cases++;
      } else if (r.t === "bad") failures.push(`${replay(r.format, r.i)}: ${r.error} [${r.describe}]`);
      else {
        result = r;
        finish();
      }
    };
    worker.postMessage(job);
  });
  const rssBound = RSS_FACTOR * largest + RSS_SLACK;
  const rssRise = peak - baseline;
  if (rssRise > rssBound) {
    failures.push(
      `${peakAt}: resident memory rose ${rssRise >> 20} MiB, over the ${rssBound >> 20} MiB bound`,
    );
  }
  return {
    failures,
    ok: result?.ok ?? 0,
    refused: result?.refused ?? 0,
    slowestMs: result?.slowestMs ?? 0,
    rssRise,
    rssBound,
    cases,
  };
}

function envInt(name: string): number | undefined {
  const v = Deno.env.get(name);
  return v === undefined || v === "" ? undefined : Number(v);
}

if (scope.name === "fuzz-worker") {
  scope.onmessage = (e) => {
    workerMain(e.data, (r) => scope.postMessage(r)).catch((err) =>
      scope.postMessage({
        t: "bad",
        format: "planted",
        i: -1,
        describe: "worker setup",
        error: String(err?.stack ?? err),
      })
    );
  };
} else {
  const seed = envInt("FUZZ_SEED") ?? 13;
  const only = Deno.env.get("FUZZ_CASE");
  const long = Deno.env.get("FUZZ_LONG") === "1";

  for (const format of FORMATS) {
    const onlyHere = only?.startsWith(`${format}:`) ? Number(only.slice(format.length + 1)) : undefined;
    Deno.test({
      name: `fuzz ${format}: mutated files give a value or a one-line UserError, in time, in bounded memory`,
      ignore: only !== undefined && onlyHere === undefined,
      fn: async () => {
        const n = envInt("FUZZ_N") ?? (long ? 100_000 : DEFAULT_N[format]);
        const r = await fuzz({ formats: [format], seed, n, only: onlyHere });
        console.log(
          `fuzz ${format}: seed ${seed}, ${r.cases} cases: ${r.ok} read, ${r.refused} refused; slowest ` +
            `${r.slowestMs.toFixed(0)} ms; resident memory rose ${r.rssRise >> 20} MiB (bound ${
              r.rssBound >> 20
            })`,
        );
        assert.deepEqual(r.failures.slice(0, 20), [], `${r.failures.length} failing cases`);
        assert.equal(r.cases, onlyHere === undefined ? n : 1);
        // Mutations must reach past the first checks: some mutants still read, many are refused.
        if (onlyHere === undefined) {
          assert.ok(r.ok > 0 && r.refused > n / 10, `${r.ok} read, ${r.refused} refused`);
        }
      },
    });
  }

  Deno.test({
    name: "fuzz harness: a planted crash, slow case, hang and allocation are each reported with their case",
    ignore: only !== undefined,
    fn: async () => {
      const crash = await fuzz({ formats: ["planted"], seed: 1, n: 6, plant: "crash" });
      assert.deepEqual(crash.failures, [
        "FUZZ_SEED=1 FUZZ_CASE=planted:3: TypeError: planted crash [planted crash]",
      ]);
      assert.equal(crash.refused, 5);
      const slow = await fuzz({ formats: ["planted"], seed: 1, n: 5, plant: "slow" });
      assert.match(slow.failures.join(), /^FUZZ_SEED=1 FUZZ_CASE=planted:3: took \d+ ms/);
      const hang = await fuzz({ formats: ["planted"], seed: 1, n: 5, plant: "hang" }, 1000);
      assert.deepEqual(hang.failures, ["FUZZ_SEED=1 FUZZ_CASE=planted:3: no answer for 1000 ms (a hang)"]);
      const alloc = await fuzz({ formats: ["planted"], seed: 1, n: 5, plant: "alloc" });
      assert.match(
        alloc.failures.join(),
        /FUZZ_CASE=planted:3: resident memory rose \d+ MiB, over the \d+ MiB bound/,
      );
    },
  });
}
