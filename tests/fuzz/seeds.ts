/**
 * The fuzz test's seeds (io/fuzz_test.ts): valid files of each format the readers take, from the fixtures
 * written by other tools plus small ones built here, each with the byte range most worth mutating.
 */
import { gunzipSync } from "node:zlib";
import { readZipIndex } from "../../io/zip_index.ts";
import { encodeSafetensors } from "../../io/safetensors.ts";
import { hostTensor } from "../../io/host_tensor.ts";

/** The formats fuzzed, and the harness's own planted cases. */
export const FORMATS = ["nifti", "safetensors", "pickle", "pth"] as const;
export type Format = typeof FORMATS[number] | "planted";

const FIXTURES = new URL("../../fixtures/", import.meta.url).pathname;
// ---------------------------------------------------------------------------------------------------------
// Seeds: valid files of each format.

export interface Seed {
  name: string;
  /** The bytes a reader gets. */
  bytes: Uint8Array;
  /** For gzip NIfTI: the decompressed file (mutated, then compressed again, so edits reach the parser). */
  plain?: Uint8Array;
  /** Byte range most worth mutating (a header, a pickle inside a zip). */
  focus: [number, number];
}

export const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const u32le = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
export const unicode = (s: string) => [0x58, ...u32le(s.length), ...latin1(s)];

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

export async function seedsOf(format: Format): Promise<Seed[]> {
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
