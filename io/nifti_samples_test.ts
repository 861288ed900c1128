import assert from "node:assert/strict";
import { readNifti } from "./nifti.ts";

/** The third-party files (nibabel's test data), copied into fixtures/samples/ (see SOURCES.md there). */
const SAMPLES = new URL("../fixtures/samples/nifti/", import.meta.url).pathname;
const present = (() => {
  try {
    return Deno.statSync(SAMPLES).isDirectory;
  } catch {
    return false;
  }
})();
if (!present) console.log(`nifti_samples_test: SKIPPED, sample directory ${SAMPLES} is missing`);

interface Expected {
  format: string;
  dims: number[];
  pixdim: number[];
  datatype: string;
  affine: number[][];
  slope: number;
  inter: number;
  min: number;
  max: number;
  mean: number;
}

/** What nibabel 5.0 reports (img.shape, header.get_zooms(), img.affine, dataobj.slope/inter, get_fdata()). */
const EXPECTED: Record<string, Expected> = {
  "anatomical.nii": {
    format: "nifti1",
    dims: [33, 41, 25],
    pixdim: [2.0, 2.0, 2.0],
    datatype: "int16",
    affine: [[-2.0, 0.0, 0.0, 32.0], [0.0, 2.0, 0.0, -40.0], [0.0, 0.0, 2.0, -16.0], [0.0, 0.0, 0.0, 1.0]],
    slope: 1.0,
    inter: 0.0,
    min: -610.0,
    max: 30393.0,
    mean: 8401.066725794532,
  },
  "example4d.nii.gz": {
    format: "nifti1",
    dims: [128, 96, 24, 2],
    pixdim: [2.0, 2.0, 2.1999991, 2000.0],
    datatype: "int16",
    affine: [[-2.0, 0.0, 0.0, 117.855103], [0.0, 1.973711, -0.355528, -35.722942], [
      0.0,
      0.323208,
      2.171082,
      -7.248798,
    ], [0.0, 0.0, 0.0, 1.0]],
    slope: 1.0,
    inter: 0.0,
    min: 0.0,
    max: 1162.0,
    mean: 172.90811496310764,
  },
  "example_nifti2.nii.gz": {
    format: "nifti2",
    dims: [32, 20, 12, 2],
    pixdim: [2.0, 2.0, 2.1999991, 2000.0],
    datatype: "int16",
    affine: [[-2.0, 0.0, 0.0, 117.855103], [0.0, 1.973711, -0.355528, -35.722942], [
      0.0,
      0.323208,
      2.171082,
      -7.248798,
    ], [0.0, 0.0, 0.0, 1.0]],
    slope: 1.0,
    inter: 0.0,
    min: 46.0,
    max: 757.0,
    mean: 450.963671875,
  },
  "functional.nii": {
    format: "nifti1",
    dims: [17, 21, 3, 20],
    pixdim: [4.0, 4.0, 8.0, 2.0],
    datatype: "int16",
    affine: [[-4.0, 0.0, 0.0, 32.0], [0.0, 4.0, 0.0, -40.0], [0.0, 0.0, 8.0, 0.0], [0.0, 0.0, 0.0, 1.0]],
    slope: 0.07540696859359741,
    inter: 3100.76171875,
    min: 629.826171875,
    max: 5571.621858656406,
    mean: 3637.408513675239,
  },
  "reoriented_anat_moved.nii": {
    format: "nifti1",
    dims: [21, 26, 22],
    pixdim: [4.0, 4.0, 4.0],
    datatype: "float32",
    affine: [[4.0, 0.0, 0.0, -35.297897], [0.0, 4.0, 0.0, -47.977585], [0.0, 0.0, 4.0, -27.599409], [
      0.0,
      0.0,
      0.0,
      1.0,
    ]],
    slope: 1.0,
    inter: 0.0,
    min: 0.0,
    max: 21199.935546875,
    mean: 2725.588532230912,
  },
  "someones_anatomy.nii.gz": {
    format: "nifti1",
    dims: [57, 67, 56],
    pixdim: [2.75, 2.75, 2.75],
    datatype: "uint8",
    affine: [[2.75, 0.0, 0.0, -78.0], [0.0, 2.75, 0.0, -91.0], [0.0, 0.0, 2.75, -91.0], [0.0, 0.0, 0.0, 1.0]],
    slope: 0.35245904326438904,
    inter: 6.678363800048828,
    min: 6.678363800048828,
    max: 96.55541983246803,
    mean: 45.983864108246365,
  },
  "standard.nii.gz": {
    format: "nifti1",
    dims: [4, 5, 7],
    pixdim: [1.0, 3.0, 2.0],
    datatype: "uint8",
    affine: [[1.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 1.0]],
    slope: 1.0,
    inter: 0.0,
    min: 0.0,
    max: 255.0,
    mean: 54.642857142857146,
  },
};

const close = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

Deno.test({
  name: "readNifti: every third-party sample matches nibabel's format, grid, affine, scaling and statistics",
  ignore: !present,
  fn: async () => {
    const files = [...Deno.readDirSync(SAMPLES)].map((e) => e.name).filter((n) => /\.nii(\.gz)?$/.test(n));
    assert.deepEqual(
      files.sort(),
      Object.keys(EXPECTED).sort(),
      "a sample without an expectation (or vice versa)",
    );
    for (const [name, e] of Object.entries(EXPECTED)) {
      const v = await readNifti(SAMPLES + name);
      const at = (what: string) => `${name}: ${what}`;
      assert.equal(v.format, e.format, at("format"));
      assert.deepEqual(v.dims, e.dims, at("dims"));
      assert.equal(v.data.length, e.dims.reduce((a, b) => a * b), at("data length"));
      v.pixdim.forEach((p, i) => assert.ok(close(p, e.pixdim[i], 1e-6), at(`pixdim ${v.pixdim}`)));
      assert.equal(v.datatype, e.datatype, at("datatype"));
      v.affine.flat().forEach((a, i) =>
        assert.ok(close(a, e.affine.flat()[i], 1e-4), at(`affine ${v.affine}`))
      );
      assert.ok(close(v.sclSlope, e.slope, 1e-12) && close(v.sclInter, e.inter, 1e-12), at("scaling"));
      assert.ok(close(v.stats.min, e.min, 1e-12) && close(v.stats.max, e.max, 1e-12), at("min/max"));
      assert.ok(close(v.stats.mean, e.mean, 1e-10), at(`mean ${v.stats.mean}`));
    }
  },
});
