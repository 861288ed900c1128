import assert from "node:assert/strict";
import {
  findNibabel,
  generateWithNibabel,
  type NibabelProbe,
  probeWithNibabel,
} from "../tests/nibabel_probe.ts";
import { geometryFromAffine, type NiftiVolume, qformAffine, readNifti, writeNifti } from "./nifti.ts";

const python = await findNibabel();
const SKIP = "python3 with nibabel is not installed (apt-get install python3-nibabel)";
if (!python) console.log(`nifti_nibabel_test: SKIPPED, ${SKIP}`);

const SAMPLES = new URL("../fixtures/samples/nifti/", import.meta.url).pathname;

function samples(): string[] {
  try {
    return [...Deno.readDirSync(SAMPLES)].filter((e) => /\.nii(\.gz)?$/.test(e.name)).map((e) =>
      SAMPLES + e.name
    );
  } catch {
    console.log(`nifti_nibabel_test: sample directory ${SAMPLES} is missing; comparing generated files only`);
    return [];
  }
}

function assertMatrixClose(a: number[][], b: number[][], tol: number, what: string) {
  a.flat().forEach((v, i) =>
    assert.ok(Math.abs(v - b.flat()[i]) <= tol, `${what}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`)
  );
}

const rel = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

/** Everything a viewer or nibabel would see: grid, geometry both ways, scaling, stats and every voxel. */
function assertAgrees(v: NiftiVolume, p: NibabelProbe, name: string) {
  const at = (what: string) => `${name}: ${what}`;
  assert.equal(v.format, p.format, at("format"));
  assert.deepEqual(v.dims, p.dims, at("dims"));
  v.pixdim.forEach((x, i) => assert.ok(rel(x, p.pixdim[i], 1e-7), at(`pixdim ${v.pixdim} vs ${p.pixdim}`)));
  assert.equal(v.datatype, p.datatype, at("datatype"));
  assertMatrixClose(v.affine, p.affine, 1e-5, at("affine"));
  assert.equal(v.geometry.qformCode, p.qform_code, at("qform_code"));
  assert.equal(v.geometry.sformCode, p.sform_code, at("sform_code"));
  assertMatrixClose(qformAffine(v.geometry), p.qform, 1e-5, at("qform"));
  assertMatrixClose([...v.geometry.srow, [0, 0, 0, 1]], p.sform, 0, at("sform"));
  assert.equal(v.geometry.xyztUnits, p.xyzt_units, at("xyzt_units"));
  assert.ok(rel(v.sclSlope, p.slope, 1e-12) && rel(v.sclInter, p.inter, 1e-12), at("scl_slope/scl_inter"));
  assert.ok(rel(v.stats.min, p.min, 1e-12) && rel(v.stats.max, p.max, 1e-12), at("min/max"));
  assert.ok(rel(v.stats.mean, p.mean, 1e-10), at(`mean ${v.stats.mean} vs ${p.mean}`));
  assert.equal(v.data.length, p.data.length, at("voxel count"));
  for (let i = 0; i < v.data.length; i++) {
    if (!rel(v.data[i], p.data[i], 1e-6)) assert.fail(at(`voxel ${i}: ${v.data[i]} vs ${p.data[i]}`));
  }
}

Deno.test({
  name: "readNifti agrees with nibabel on the third-party samples and on generated edge cases",
  ignore: !python,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const generated = await generateWithNibabel(python!, dir);
      assert.equal(generated.length, 13, "nibabel wrote every case");
      const files = [...samples(), ...generated];
      const probes = await probeWithNibabel(python!, files);
      for (const f of files) assertAgrees(await readNifti(f), probes[f], f.split("/").pop()!);
      // The cases the generator promises really are what they claim to be.
      const by = (n: string) => probes[`${dir}/${n}`];
      assert.equal(by("qform_only_flip.nii").sform_code, 0);
      assert.equal(by("qform_only_flip.nii").pixdim_raw[0], -1);
      assert.ok(by("scaled_uint8.nii.gz").slope !== 1);
      assert.equal(by("nifti2_4d_float64.nii.gz").format, "nifti2");
      assert.notDeepEqual(
        by("sform_differs_from_qform.nii.gz").qform,
        by("sform_differs_from_qform.nii.gz").sform,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "writeNifti output, with a copied geometry, reads back in nibabel with the same grid and values",
  ignore: !python,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await generateWithNibabel(python!, dir);
      const chosen = ["qform_only_flip.nii", "sform_differs_from_qform.nii.gz", "big_endian_int16.nii"];
      const written: [string, string, Uint8Array | Int16Array | Float32Array][] = [];
      for (const name of chosen) {
        const ref = await readNifti(`${dir}/${name}`);
        const n = ref.data.length;
        const arrays = [
          Uint8Array.from({ length: n }, (_, i) => (i * 7) % 4),
          Int16Array.from(ref.data),
          Float32Array.from({ length: n }, (_, i) => Math.fround(Math.cos(i) * 321.5)),
        ];
        for (const [k, data] of arrays.entries()) {
          const out = `${dir}/out_${k}_${name.replace(/\.nii(\.gz)?$/, k === 1 ? ".nii" : ".nii.gz")}`;
          await writeNifti(out, data, ref.dims, ref.geometry);
          written.push([out, `${dir}/${name}`, data]);
        }
      }
      // Generated data: a geometry made from an affine alone (sform and qform both code 1).
      const affine = [[0, 0, -6, 40], [1.25 * Math.cos(0.4), -1.5 * Math.sin(0.4), 0, -12], [
        1.25 * Math.sin(0.4),
        1.5 * Math.cos(0.4),
        0,
        7.5,
      ], [0, 0, 0, 1]];
      await writeNifti(
        `${dir}/from_affine.nii.gz`,
        new Uint8Array(24),
        [4, 3, 2],
        geometryFromAffine(affine, [4, 3, 2]),
      );
      const probes = await probeWithNibabel(python!, [
        ...written.flatMap(([o, r]) => [o, r]),
        `${dir}/from_affine.nii.gz`,
      ]);
      for (const [out, ref, data] of written) {
        const p = probes[out], r = probes[ref];
        const name = out.split("/").pop()!;
        assertAgrees(await readNifti(out), p, name);
        assertMatrixClose(p.affine, r.affine, 1e-6, `${name}: affine vs reference`);
        assertMatrixClose(p.qform, r.qform, 1e-6, `${name}: qform vs reference`);
        assertMatrixClose(p.sform, r.sform, 0, `${name}: sform vs reference`);
        assert.deepEqual([p.qform_code, p.sform_code, p.xyzt_units], [
          r.qform_code,
          r.sform_code,
          r.xyzt_units,
        ]);
        assert.deepEqual(p.pixdim_raw.slice(0, 4), r.pixdim_raw.slice(0, 4), `${name}: pixdim incl. qfac`);
        assert.equal(
          p.datatype,
          { Uint8Array: "uint8", Int16Array: "int16", Float32Array: "float32" }[
            data.constructor.name as "Uint8Array"
          ],
        );
        assert.deepEqual([...p.data], [...data], `${name}: values`);
      }
      const g = probes[`${dir}/from_affine.nii.gz`];
      assertMatrixClose(g.affine, affine, 1e-5, "from_affine: affine");
      assertMatrixClose(g.qform, affine, 1e-5, "from_affine: qform");
      assert.deepEqual([g.qform_code, g.sform_code], [1, 1]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
