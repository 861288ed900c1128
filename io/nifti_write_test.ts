import assert from "node:assert/strict";
import { OutputError } from "./safe_output.ts";
import { geometryFromAffine, NiftiError, type NiftiGeometry, readNifti, writeNifti } from "./nifti.ts";

/** Float32 rounding: what a NIfTI-1 header can hold of a float64 geometry. */
function f32(g: NiftiGeometry): NiftiGeometry {
  const r = Math.fround;
  return {
    pixdim: g.pixdim.map(r),
    qformCode: g.qformCode,
    sformCode: g.sformCode,
    quatern: g.quatern.map(r) as [number, number, number],
    qoffset: g.qoffset.map(r) as [number, number, number],
    srow: g.srow.map((row) => row.map(r)),
    xyztUnits: g.xyztUnits,
  };
}

/** An oblique, left-right flipped reference whose qform (code 1) and sform (code 2) differ. */
function reference(): NiftiGeometry {
  const c = Math.cos(0.3), s = Math.sin(0.3);
  const g = geometryFromAffine([[-1.5 * c, 1.4 * s, 0, 80.25], [1.5 * s, 1.4 * c, 0, -60.5], [0, 0, 8, 12], [
    0,
    0,
    0,
    1,
  ]], [5, 4, 3]);
  g.sformCode = 2;
  g.srow[0][1] += 0.2; // shear: only the sform can hold it
  g.xyztUnits = 10;
  return g;
}

Deno.test("writeNifti: uint8, int16 and float32, .nii and .nii.gz, read back with geometry and values intact", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const g = reference();
    const dims = [5, 4, 3];
    const n = 60;
    const arrays = [
      Uint8Array.from({ length: n }, (_, i) => i % 4),
      Int16Array.from({ length: n }, (_, i) => (i * 977) % 30000 - 15000),
      Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i) * 1e3)),
    ];
    for (const data of arrays) {
      for (const name of ["out.nii", "out.nii.gz"]) {
        const path = `${dir}/${data.constructor.name}-${name}`;
        await writeNifti(path, data, dims, g);
        const bytes = await Deno.readFile(path);
        assert.equal(bytes[0] === 0x1f && bytes[1] === 0x8b, name.endsWith(".gz"), `${path}: gzip or not`);
        const v = await readNifti(path);
        assert.equal(v.format, "nifti1");
        assert.deepEqual(v.dims, dims);
        assert.equal(
          v.datatype,
          { Uint8Array: "uint8", Int16Array: "int16", Float32Array: "float32" }[
            data.constructor.name as "Uint8Array"
          ],
        );
        assert.deepEqual([...v.data], [...data]);
        assert.deepEqual(v.geometry, f32(g));
        assert.deepEqual(v.affine, [...f32(g).srow, [0, 0, 0, 1]]);
        assert.equal(v.geometry.pixdim[0], -1, "qfac survives");
      }
    }
    const left = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".tmp"));
    assert.deepEqual(left, [], "no temporary files left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeNifti: a 3D mask of a 4D scan keeps the spatial geometry, not the time spacing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const g = geometryFromAffine([[1.5, 0, 0, 0], [0, 1.5, 0, 0], [0, 0, 10, 0], [0, 0, 0, 1]], [
      4,
      4,
      2,
      30,
    ]);
    g.pixdim[4] = 33.3;
    await writeNifti(`${dir}/m.nii.gz`, new Uint8Array(32), [4, 4, 2], g);
    const v = await readNifti(`${dir}/m.nii.gz`);
    assert.deepEqual(v.geometry.pixdim, [1, 1.5, 1.5, 10, 1, 1, 1, 1]);
    assert.deepEqual(v.pixdim, [1.5, 1.5, 10]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeNifti: bad inputs are refused and leave nothing behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const g = reference();
    await assert.rejects(writeNifti(`${dir}/a.nii`, new Uint8Array(10), [5, 4, 3], g), NiftiError);
    await assert.rejects(writeNifti(`${dir}/a.nii`, new Uint8Array(0), [], g), NiftiError);
    await assert.rejects(
      writeNifti(`${dir}/a.nii`, new Uint8Array(60), [5, 4, 3], { ...g, srow: [[NaN]] }),
      NiftiError,
    );
    await assert.rejects(
      writeNifti(`${dir}/no/such/dir/a.nii`, new Uint8Array(60), [5, 4, 3], g),
      (e: Error) =>
        e instanceof OutputError &&
        /a\.nii: cannot write: folder .*no\/such\/dir does not exist/.test(e.message),
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
