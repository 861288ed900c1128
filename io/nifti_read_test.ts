import assert from "node:assert/strict";
import {
  decodeNifti,
  encodeNifti,
  geometryFromAffine,
  NiftiError,
  readNifti,
  readNiftiBytes,
  readNiftiInfo,
} from "./nifti.ts";

const IDENTITY = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];

/** A valid little-endian NIfTI-1 int16 file of 4 x 3 x 2 voxels holding 0..23. */
async function sample(): Promise<Uint8Array> {
  const data = Int16Array.from({ length: 24 }, (_, i) => i);
  return await encodeNifti(data, [4, 3, 2], geometryFromAffine(IDENTITY, [4, 3, 2]));
}

function patched(bytes: Uint8Array, edit: (v: DataView) => void): Uint8Array {
  const copy = bytes.slice();
  edit(new DataView(copy.buffer));
  return copy;
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function rejectsField(fn: () => unknown, field: string) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof NiftiError, `expected NiftiError, got ${e}`);
    assert.equal(e.name, "NiftiError");
    assert.equal(e.field, field, e.message);
    assert.ok(e.message.startsWith(`bad.nii: ${field}: `), e.message);
    return true;
  });
}

Deno.test("decodeNifti: scaling applies, and slope 0 means none", async () => {
  const base = await sample();
  const v = decodeNifti(
    patched(base, (d) => (d.setFloat32(112, 2, true), d.setFloat32(116, -1, true))),
    "x.nii",
  );
  assert.deepEqual([...v.data.slice(0, 4)], [-1, 1, 3, 5]);
  assert.deepEqual([v.sclSlope, v.sclInter, v.stats.min, v.stats.max, v.stats.mean], [2, -1, -1, 45, 22]);
  const none = decodeNifti(
    patched(base, (d) => (d.setFloat32(112, 0, true), d.setFloat32(116, 7, true))),
    "x.nii",
  );
  assert.deepEqual([none.sclSlope, none.sclInter, none.data[5]], [1, 0, 5]);
});

Deno.test("decodeNifti: each malformed header is a NiftiError naming the file and the field", async () => {
  const base = await sample();
  const cases: [Uint8Array, string][] = [
    [new Uint8Array(0), "file"],
    [base.slice(0, 3), "sizeof_hdr"],
    [base.slice(0, 200), "header"],
    [patched(base, (d) => d.setInt32(0, 1234, true)), "sizeof_hdr"],
    [patched(base, (d) => d.setUint8(345, 0x21)), "magic"],
    [patched(base, (d) => d.setUint8(345, 0x69)), "magic"], // "ni1": a .hdr/.img pair
    [patched(base, (d) => d.setInt16(40, 0, true)), "dim[0]"],
    [patched(base, (d) => d.setInt16(40, 9, true)), "dim[0]"],
    [patched(base, (d) => d.setInt16(44, -3, true)), "dim[2]"],
    [patched(base, (d) => [42, 44, 46].forEach((o) => d.setInt16(o, 32767, true))), "dim"],
    [patched(base, (d) => d.setInt16(70, 32, true)), "datatype"], // complex64
    [patched(base, (d) => d.setInt16(70, 99, true)), "datatype"],
    [patched(base, (d) => d.setFloat32(108, 100, true)), "vox_offset"],
    [patched(base, (d) => d.setFloat32(108, 352.5, true)), "vox_offset"],
    [patched(base, (d) => d.setFloat32(80, NaN, true)), "pixdim[1]"],
    [patched(base, (d) => (d.setFloat32(112, 2, true), d.setFloat32(116, Infinity, true))), "scl_inter"],
    [
      patched(
        base,
        (d) => (d.setInt16(254, 0, true), d.setFloat32(256, 0.9, true), d.setFloat32(260, 0.9, true)),
      ),
      "quatern",
    ],
    [patched(base, (d) => d.setFloat32(280, NaN, true)), "srow_x"],
    [base.slice(0, base.length - 1), "data"],
    [patched(base, (d) => d.setFloat32(108, 368, true)), "data"],
    [await gzip(base), "file"],
  ];
  for (const [bytes, field] of cases) rejectsField(() => decodeNifti(bytes, "bad.nii"), field);
});

Deno.test("decodeNifti: big-endian headers and voxels decode like little-endian ones", async () => {
  const le = await sample();
  const be = le.slice();
  const v = new DataView(be.buffer);
  const swap = (at: number, width: number) => be.subarray(at, at + width).reverse();
  swap(0, 4);
  for (let i = 0; i < 8; i++) swap(40 + 2 * i, 2);
  [68, 70, 72, 74, 120, 252, 254].forEach((at) => swap(at, 2));
  for (let at = 76; at < 120; at += 4) swap(at, 4);
  for (let at = 124; at < 148; at += 4) swap(at, 4);
  for (let at = 256; at < 328; at += 4) swap(at, 4);
  for (let at = 352; at < be.length; at += 2) swap(at, 2);
  assert.equal(v.getInt32(0, false), 348);
  const a = decodeNifti(le, "le.nii"), b = decodeNifti(be, "be.nii");
  assert.deepEqual([...b.data], [...a.data]);
  assert.deepEqual(b.affine, a.affine);
  assert.deepEqual(b.geometry, a.geometry);
});

Deno.test("readNiftiBytes: gzip is streamed, capped, and a truncated or corrupt stream is refused", async () => {
  const base = await sample();
  const gz = await gzip(base);
  assert.deepEqual([...(await readNiftiBytes(gz, "x.nii.gz")).data], [...decodeNifti(base, "x.nii").data]);
  const fails = async (bytes: Uint8Array, field: string, pattern: RegExp, maxBytes?: number) => {
    await assert.rejects(readNiftiBytes(bytes, "bad.nii.gz", { maxBytes }), (e: unknown) => {
      assert.ok(e instanceof NiftiError && e.field === field && pattern.test(e.message), String(e));
      return true;
    });
  };
  await fails(gz.slice(0, gz.length - 12), "gzip", /truncated/);
  await fails(gz.slice(0, gz.length - 4), "gzip", /truncated/); // only the trailer's size field cut
  await fails(gz.slice(0, 30), "gzip", /truncated/);
  await fails(patched(gz, (d) => d.setUint32(12, 0xdeadbeef)), "gzip", /corrupt/);
  await fails(gz, "gzip", /over the 300-byte limit/, 300);
  // A header claiming 20000 x 20000 x 2 int16 voxels inside a tiny gzip: refused before inflating the rest.
  const claim = patched(base, (d) => (d.setInt16(42, 20000, true), d.setInt16(44, 20000, true)));
  await fails(await gzip(claim), "gzip", /over the 1073741824-byte limit/);
  await fails(await gzip(patched(base, (d) => d.setInt16(70, 128, true))), "datatype", /rgb24/);
});

Deno.test("readNiftiBytes: multi-member gzip (bgzip style) decodes every member", async () => {
  const base = await sample();
  const parts = [await gzip(base.slice(0, 200)), await gzip(base.slice(200))];
  const multi = new Uint8Array(parts[0].length + parts[1].length);
  multi.set(parts[0]);
  multi.set(parts[1], parts[0].length);
  assert.deepEqual([...(await readNiftiBytes(multi, "m.nii.gz")).data], [...decodeNifti(base, "m.nii").data]);
});

Deno.test("readNifti: missing files, directories and short files are NiftiErrors naming the path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const short = `${dir}/short.nii`;
    await Deno.writeFile(short, (await sample()).slice(0, 360));
    const cases: [string, RegExp][] = [
      [`${dir}/missing.nii`, /missing\.nii: file: not found$/],
      [dir, /: file: is a folder, not a file$/],
      [short, /short\.nii: data: 8 bytes after vox_offset 352, but dims \[4, 3, 2\] of int16 need 48/],
    ];
    for (const [path, pattern] of cases) {
      await assert.rejects(
        readNifti(path),
        (e: unknown) => e instanceof NiftiError && pattern.test(e.message),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
};

/** Issue 13 item 12: nibabel opens a .nii.gz with bytes after its gzip stream (checked with nibabel 5). */
Deno.test("readNiftiBytes: bytes after the last gzip member are ignored; a bad CRC is still refused", async () => {
  const base = await sample();
  const want = [...decodeNifti(base, "x.nii").data];
  const gz = await gzip(base);
  const text = new TextEncoder().encode("trailing garbage, not gzip".repeat(20));
  const twoMembers = cat(await gzip(base.slice(0, 200)), await gzip(base.slice(200)));
  for (
    const [name, bytes] of [
      ["text after", cat(gz, text)],
      ["zeros after", cat(gz, new Uint8Array(1000))],
      ["two members then text", cat(twoMembers, text)],
      ["a lone 1f 8b after", cat(gz, Uint8Array.of(0x1f, 0x8b, 0x41))],
    ] as const
  ) {
    assert.deepEqual([...(await readNiftiBytes(bytes, "t.nii.gz")).data], want, name);
  }
  const badCrc = patched(gz, (d) => d.setUint32(gz.length - 8, d.getUint32(gz.length - 8, true) ^ 1, true));
  await assert.rejects(
    readNiftiBytes(cat(badCrc, text), "c.nii.gz"),
    /c\.nii\.gz: gzip: CRC or size check failed/,
  );
  const badSize = patched(gz, (d) => d.setUint32(gz.length - 4, 7, true));
  await assert.rejects(readNiftiBytes(badSize, "s.nii.gz"), /s\.nii\.gz: gzip: CRC or size check failed/);
});

Deno.test("readNifti: infinite and NaN voxels are counted; min, max and mean stay finite", async () => {
  const data = Float32Array.from([1, 2, Infinity, -Infinity, NaN, NaN, 3, 4]);
  const bytes = await encodeNifti(data, [2, 2, 2], geometryFromAffine(IDENTITY, [2, 2, 2]));
  const v = decodeNifti(bytes, "inf.nii");
  assert.deepEqual(v.stats, { min: 1, max: 4, mean: 2.5, nonFinite: { nan: 2, inf: 1, negInf: 1 } });
  const none = decodeNifti(
    await encodeNifti(Float32Array.from([NaN, Infinity]), [2, 1, 1], geometryFromAffine(IDENTITY, [2, 1, 1])),
    "nan.nii",
  );
  assert.ok(Number.isNaN(none.stats.min) && Number.isNaN(none.stats.mean));
  assert.deepEqual(none.stats.nonFinite, { nan: 1, inf: 1, negInf: 0 });
});

Deno.test("readNiftiInfo: the same header and stats as readNifti, without the float32 volume", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/x.nii.gz`;
    await Deno.writeFile(path, await gzip(await sample()));
    const full = await readNifti(path);
    const info = await readNiftiInfo(path);
    assert.ok(!("data" in info));
    const { data: _, ...rest } = full;
    assert.deepEqual(info, rest);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readNifti: a FIFO, a device or a symlink loop is refused at once, never opened", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fifo = `${dir}/f.nii.gz`;
    assert.equal((await new Deno.Command("mkfifo", { args: [fifo] }).output()).code, 0);
    await Deno.symlink(`${dir}/loop.nii`, `${dir}/loop.nii`);
    const cases: [string, RegExp][] = [
      [fifo, /f\.nii\.gz: file: is a named pipe \(FIFO\)/],
      ["/dev/zero", /^\/dev\/zero: file: is a character device/],
      [`${dir}/loop.nii`, /loop\.nii: file: symlink loop/],
    ];
    for (const [path, pattern] of cases) {
      for (const read of [readNifti, readNiftiInfo]) {
        await assert.rejects(read(path), (e: unknown) => e instanceof NiftiError && pattern.test(e.message));
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
