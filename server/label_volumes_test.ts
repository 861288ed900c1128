import assert from "node:assert/strict";
import { labelVolumes, voxelMm3 } from "./label_volumes.ts";

const diag = (x: number, y: number, z: number) => [[x, 0, 0, 0], [0, y, 0, 0], [0, 0, z, 0], [0, 0, 0, 1]];
const geometry = (units: number) => ({ xyztUnits: units }) as never;

Deno.test("voxelMm3: |det| of the affine in mm, whatever the axis signs, units and shear", () => {
  assert.equal(voxelMm3({ affine: diag(-1.5, 1.25, 8), pixdim: [1.5, 1.25, 8], geometry: geometry(2) }), 15);
  assert.equal(voxelMm3({ affine: diag(0.001, 0.001, 0.002), pixdim: [], geometry: geometry(1) }), 2); // metres
  assert.ok(
    Math.abs(voxelMm3({ affine: diag(500, 500, 1000), pixdim: [], geometry: geometry(3) }) - 0.25) < 1e-12,
  );
  const sheared = [[2, 0.7, 0, 0], [0, 3, 0, 0], [0, 0, 4, 0], [0, 0, 0, 1]];
  assert.equal(voxelMm3({ affine: sheared, pixdim: [2, 3, 4], geometry: geometry(10) }), 24);
  // a 2D scan whose third axis has no extent: the pixdim product with a 1 mm thickness
  assert.equal(voxelMm3({ affine: diag(2, 3, 0), pixdim: [2, 3], geometry: geometry(2) }), 6);
});

Deno.test("labelVolumes: counts per label and millilitres per class", () => {
  const labels = new Uint8Array([0, 1, 1, 2, 3, 3, 3, 0]);
  const v = labelVolumes(labels, { affine: diag(10, 10, 10), pixdim: [10, 10, 10], geometry: geometry(2) });
  assert.deepEqual(v.voxels, [2, 2, 1, 3]);
  assert.equal(v.voxel_ml, 1);
  assert.deepEqual(v.volumes_ml, { RV: 2, Myo: 1, LV: 3 });
});
