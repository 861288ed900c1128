import assert from "node:assert/strict";
import {
  decodeSafetensors,
  decodeSafetensorsWithMetadata,
  encodeSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  readSafetensorsWithMetadata,
  SafetensorsError,
  writeSafetensors,
} from "./safetensors.ts";
import { type HostTensor, hostTensor } from "./host_tensor.ts";

const REF = new URL("../fixtures/reference/tiny_sam.io.safetensors", import.meta.url).pathname;
const PTH_ZIP = new URL("../fixtures/samples/pth/test.pt", import.meta.url).pathname;

function allDtypes(): Record<string, HostTensor> {
  return {
    f32: hostTensor("float32", [2, 3], new Float32Array([1, -2, 3.5, 0, 1e-30, -1e30])),
    f16: hostTensor("float16", [2], new Uint16Array([0x3c00, 0xc000])),
    bf16: hostTensor("bfloat16", [1, 2], new Uint16Array([0x3f80, 0x4049])),
    f64: hostTensor("float64", [1], new Float64Array([Math.PI])),
    i64: hostTensor("int64", [3], new BigInt64Array([-1n, 2n ** 62n, 0n])),
    i32: hostTensor("int32", [2], new Int32Array([-7, 2 ** 31 - 1])),
    i16: hostTensor("int16", [1], new Int16Array([-300])),
    i8: hostTensor("int8", [2], new Int8Array([-128, 127])),
    u8: hostTensor("uint8", [2], new Uint8Array([0, 255])),
    bool: hostTensor("bool", [3], new Uint8Array([1, 0, 1])),
    empty: hostTensor("float32", [0, 4], new Float32Array(0)),
    scalar: hostTensor("float32", [], new Float32Array([42])),
  };
}

/** A file with a hand-written header, to feed the validator things our writer would never produce. */
function handMade(header: unknown, dataLen: number, rawHeader?: string): Uint8Array {
  const json = new TextEncoder().encode(rawHeader ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataLen);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

Deno.test("safetensors: every dtype and metadata round-trip in memory and on disk", async () => {
  const tensors = allDtypes();
  const meta = { format: "pt", note: "héllo" };
  const bytes = encodeSafetensors(tensors, meta);
  const hdrLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(hdrLen % 8, 0, "header padded to 8 bytes");
  const back = decodeSafetensorsWithMetadata(bytes);
  assert.deepEqual(back.metadata, meta);
  assert.deepEqual([...back.tensors.keys()], Object.keys(tensors));
  for (const [k, t] of Object.entries(tensors)) assert.deepEqual(back.tensors.get(k), t, k);

  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/w.safetensors`;
    await writeSafetensors(path, new Map(Object.entries(tensors)), meta);
    assert.deepEqual(await Deno.readFile(path), bytes);
    const disk = await readSafetensorsWithMetadata(path);
    assert.deepEqual(disk.metadata, meta);
    for (const [k, t] of Object.entries(tensors)) assert.deepEqual(disk.tensors.get(k), t, k);
    const only = await readSafetensorsWithMetadata(path, { filter: (n) => n === "i64" });
    assert.deepEqual([...only.tensors.keys()], ["i64"]);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["w.safetensors"], "no temp file left");
    // A failing write (bad tensor) leaves the previous file untouched and no temp file behind.
    const bad = { x: { dtype: "float32", shape: [3], data: new Float32Array(2) } as HostTensor };
    await assert.rejects(() => writeSafetensors(path, bad), /shape \[3\] needs 3 elements/);
    assert.deepEqual(await Deno.readFile(path), bytes);
    assert.equal([...Deno.readDirSync(dir)].length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: reads the reference file written by the Python library", async () => {
  const header = await readSafetensorsHeader(REF);
  assert.deepEqual(header.entries.get("raw_image")?.shape, [1, 3, 72, 77]);
  const t = await readSafetensors(REF);
  const img = t.get("image_embeddings")!;
  assert.equal(img.dtype, "float32");
  assert.deepEqual(img.shape, [1, 32, 10, 10]);
  assert.ok((img.data as Float32Array).every(Number.isFinite));
  const raw = t.get("raw_image")!.data as Float32Array;
  assert.ok(raw.every((v) => v >= 0 && v <= 255) && raw.some((v) => v > 1), "raw image is 0..255");
  assert.deepEqual(t.get("no_prompt.sparse")?.shape, [1, 0, 32]);
});

Deno.test("safetensors: broken and hostile headers, and checkpoints of other formats, give a clear SafetensorsError", async () => {
  const f32 = (offs: unknown, shape: unknown = [2]) => ({ dtype: "F32", shape, data_offsets: offs });
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty file", new Uint8Array(0), /0 bytes, need at least 8/],
    [
      "random bytes",
      crypto.getRandomValues(new Uint8Array(4096)).map((b, i) => (i === 0 ? 0x41 : b)),
      /not a safetensors file \(header length \d+ runs past the end/,
    ],
    [
      "a torch zip",
      await Deno.readFile(PTH_ZIP),
      /not a safetensors file \(looks like a PyTorch zip checkpoint\)$/,
    ],
    [
      "a legacy torch pickle",
      Uint8Array.from([0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]),
      /not a safetensors file \(looks like a legacy PyTorch pickle checkpoint\)$/,
    ],
    ["an array entry", handMade({ a: [] }, 0), /tensor "a": entry is \[\], not an object with dtype/],
    [
      "an entry without dtype",
      handMade({ a: { shape: [1], data_offsets: [0, 4] } }, 4),
      /"a": entry has no "dtype"$/,
    ],
    ["length past EOF", handMade({}, 0, "{}").map((b, i) => (i === 0 ? 200 : b)), /runs past the end/],
    ["not JSON", handMade(null, 0, "{nope"), /not valid JSON/],
    ["not an object", handMade([1, 2], 0), /not a JSON object/],
    ["bad utf-8", handMade(null, 0, "{}").map((b, i) => (i === 9 ? 0xff : b)), /not valid UTF-8/],
    [
      "unknown dtype",
      handMade({ a: { dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] } }, 1),
      /dtype "F8_E4M3"/,
    ],
    ["negative dim", handMade({ a: f32([0, 8], [-2]) }, 8), /bad shape \[-2\]/],
    ["absurd shape", handMade({ a: f32([0, 8], [2 ** 40, 2 ** 40]) }, 8), /bad shape/],
    ["size mismatch", handMade({ a: f32([0, 4]) }, 8), /needs 8 bytes, data_offsets give 4/],
    ["past data", handMade({ a: f32([8, 16]) }, 8), /run past the data \(8 bytes\)/],
    ["reversed", handMade({ a: f32([8, 0]) }, 8), /bad data_offsets/],
    ["overlap", handMade({ a: f32([0, 8]), b: f32([4, 12]) }, 16), /"a" and "b" have overlapping/],
    ["bad metadata", handMade({ __metadata__: { a: 1 } }, 0), /__metadata__ value for "a"/],
  ];
  const dir = await Deno.makeTempDir();
  try {
    for (const [name, bytes, re] of cases) {
      assert.throws(() => decodeSafetensors(bytes, "x.safetensors"), (e: Error) => {
        assert.ok(e instanceof SafetensorsError, `${name}: ${e}`);
        assert.match(e.message, re, name);
        assert.match(e.message, /^x\.safetensors/, name);
        return true;
      });
      const path = `${dir}/case.safetensors`;
      await Deno.writeFile(path, bytes);
      await assert.rejects(
        () => readSafetensors(path),
        (e: Error) => e instanceof SafetensorsError && re.test(e.message),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
