import assert from "node:assert/strict";
import { readZipIndex } from "./zip_index.ts";
import { readPth } from "./pth.ts";
import { PickleError } from "./pickle.ts";

const TEST_PT = new URL("../fixtures/samples/pth/test.pt", import.meta.url).pathname;

/**
 * A stored zip written by hand; with zip64 every size and offset in the central directory is saturated and
 * carried in a ZIP64 extra field, as writers do past 4 GiB (which we cannot afford to create in a test).
 */
function makeZip(entries: [string, Uint8Array][], zip64: boolean): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let at = 0;
  const push = (b: Uint8Array) => (parts.push(b), at += b.length);
  for (const [name, data] of entries) {
    const n = enc.encode(name);
    const local = new DataView(new ArrayBuffer(30 + n.length + 5)); // 5 bytes of padding extra, like torch's
    local.setUint32(0, 0x04034b50, true);
    local.setUint32(18, data.length, true);
    local.setUint32(22, data.length, true);
    local.setUint16(26, n.length, true);
    local.setUint16(28, 5, true);
    new Uint8Array(local.buffer).set(n, 30);
    new Uint8Array(local.buffer).set([0x46, 0x42, 1, 0, 0], 30 + n.length);
    const offset = at;
    push(new Uint8Array(local.buffer));
    push(data);
    const extra = zip64 ? 4 + 24 : 0;
    const c = new DataView(new ArrayBuffer(46 + n.length + extra));
    c.setUint32(0, 0x02014b50, true);
    c.setUint32(20, zip64 ? 0xffffffff : data.length, true);
    c.setUint32(24, zip64 ? 0xffffffff : data.length, true);
    c.setUint16(28, n.length, true);
    c.setUint16(30, extra, true);
    c.setUint32(42, zip64 ? 0xffffffff : offset, true);
    new Uint8Array(c.buffer).set(n, 46);
    if (zip64) {
      const x = 46 + n.length;
      c.setUint16(x, 1, true);
      c.setUint16(x + 2, 24, true);
      c.setBigUint64(x + 4, BigInt(data.length), true);
      c.setBigUint64(x + 12, BigInt(data.length), true);
      c.setBigUint64(x + 20, BigInt(offset), true);
    }
    central.push(new Uint8Array(c.buffer));
  }
  const cdStart = at;
  for (const c of central) push(c);
  const cdSize = at - cdStart;
  if (zip64) {
    const e = new DataView(new ArrayBuffer(56 + 20));
    e.setUint32(0, 0x06064b50, true);
    e.setBigUint64(4, 44n, true);
    e.setBigUint64(24, BigInt(entries.length), true);
    e.setBigUint64(32, BigInt(entries.length), true);
    e.setBigUint64(40, BigInt(cdSize), true);
    e.setBigUint64(48, BigInt(cdStart), true);
    e.setUint32(56, 0x07064b50, true);
    e.setBigUint64(64, BigInt(at), true);
    e.setUint32(72, 1, true);
    push(new Uint8Array(e.buffer));
  }
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, zip64 ? 0xffff : entries.length, true);
  end.setUint16(10, zip64 ? 0xffff : entries.length, true);
  end.setUint32(12, zip64 ? 0xffffffff : cdSize, true);
  end.setUint32(16, zip64 ? 0xffffffff : cdStart, true);
  push(new Uint8Array(end.buffer));
  const out = new Uint8Array(at);
  let p = 0;
  for (const b of parts) out.set(b, p), p += b.length;
  return out;
}

/** The entries of candle's test.pt, read with our own index. */
async function sampleEntries(): Promise<[string, Uint8Array][]> {
  const bytes = await Deno.readFile(TEST_PT);
  const f = await Deno.open(TEST_PT);
  try {
    const index = await readZipIndex(f, bytes.length, TEST_PT);
    return [...index.values()].map((e) => [e.name, bytes.slice(e.dataStart, e.dataStart + e.size)]);
  } finally {
    f.close();
  }
}

Deno.test("zip index: ZIP64 extra fields and any archive folder name are understood", async () => {
  const entries = await sampleEntries();
  assert.deepEqual(entries.map((e) => e[0]).sort(), [
    "test/.data/serialization_id",
    "test/byteorder",
    "test/data.pkl",
    "test/data/0",
    "test/version",
  ]);
  const renamed = entries.map(([n, d]): [string, Uint8Array] => [n.replace(/^test\//, "weights_v2/"), d]);
  const want = await readPth(TEST_PT);
  for (const zip64 of [false, true]) {
    const path = await Deno.makeTempFile({ suffix: ".pth" });
    try {
      await Deno.writeFile(path, makeZip(renamed, zip64));
      assert.deepEqual(await readPth(path), want, `zip64=${zip64}`);
    } finally {
      await Deno.remove(path);
    }
  }
});

Deno.test("zip index: a ZIP64 size beyond the file, or a zip without data.pkl, is refused", async () => {
  const entries = await sampleEntries();
  const zip = makeZip(entries, true);
  const dv = new DataView(zip.buffer);
  // Corrupt the 64-bit size of the first entry (its ZIP64 field sits right after the name).
  const first = [...Array(zip.length - 4).keys()].find((i) => dv.getUint32(i, true) === 0x02014b50)!;
  dv.setBigUint64(first + 46 + dv.getUint16(first + 28, true) + 4, 1n << 40n, true);
  const cases: [Uint8Array, RegExp][] = [
    [zip, /broken zip archive: size 1099511627776 is impossible/],
    [makeZip(entries.filter(([n]) => !n.endsWith("data.pkl")), false), /without <name>\/data\.pkl/],
  ];
  for (const [bytes, re] of cases) {
    const path = await Deno.makeTempFile({ suffix: ".pth" });
    try {
      await Deno.writeFile(path, bytes);
      await assert.rejects(() => readPth(path), (e: Error) => e instanceof PickleError && re.test(e.message));
    } finally {
      await Deno.remove(path);
    }
  }
});
