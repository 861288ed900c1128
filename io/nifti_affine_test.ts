import assert from "node:assert/strict";
import { bestAffine, geometryFromAffine, qformAffine } from "./nifti_affine.ts";
import { NiftiError } from "./nifti_error.ts";

function assertClose(actual: number[][], expected: number[][], tol = 1e-9) {
  actual.forEach((row, i) =>
    row.forEach((v, j) =>
      assert.ok(Math.abs(v - expected[i][j]) <= tol, `[${i}][${j}] ${v} vs ${expected[i][j]}`)
    )
  );
}

function rotation(axis: number, deg: number): number[][] {
  const t = (deg * Math.PI) / 180, c = Math.cos(t), s = Math.sin(t);
  const m = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  const [i, j] = [[1, 2], [0, 2], [0, 1]][axis];
  m[i][i] = c, m[j][j] = c, m[i][j] = -s, m[j][i] = s;
  return m;
}

function affineOf(r: number[][], zooms: number[], offset: number[]): number[][] {
  return [...r.map((row, i) => [...row.map((v, j) => v * zooms[j]), offset[i]]), [0, 0, 0, 1]];
}

function matmul(a: number[][], b: number[][]): number[][] {
  return a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
}

Deno.test("geometryFromAffine: the quaternion reproduces rotations, flips and 180-degree turns", () => {
  const cases: [number[][], number[]][] = [
    [matmul(rotation(0, 20), rotation(2, -35)), [1.6, 1.4, 8]],
    [rotation(1, 180), [1.5, 1.5, 10]], // w = 0: the quaternion's scalar part vanishes
    [[[-1, 0, 0], [0, 1, 0], [0, 0, 1]], [1.2, 1.3, 6]], // LR flip: det < 0, needs qfac -1
    [[[0, 0, 1], [1, 0, 0], [0, 1, 0]], [2, 3, 4]], // axis permutation
  ];
  for (const [r, zooms] of cases) {
    const affine = affineOf(r, zooms, [-80, 95.5, -30]);
    const g = geometryFromAffine(affine, [10, 12, 6]);
    assert.equal(g.qformCode, 1);
    assert.equal(g.sformCode, 1);
    assert.equal(
      g.pixdim[0],
      Math.sign(
        r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1]) -
          r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0]) +
          r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]),
      ),
    );
    assertClose(qformAffine(g), affine, 1e-9);
    assertClose(bestAffine(g, [10, 12, 6]), affine, 0);
  }
});

Deno.test("bestAffine: sform first, then qform, then nibabel's centred pixdim grid with x flipped", () => {
  const g = geometryFromAffine(affineOf(rotation(2, 30), [2, 2, 5], [1, 2, 3]), [3, 5, 7]);
  g.srow = [[9, 0, 0, 1], [0, 9, 0, 2], [0, 0, 9, 3]];
  assertClose(bestAffine(g, [3, 5, 7]), [...g.srow, [0, 0, 0, 1]], 0);
  g.sformCode = 0;
  assertClose(bestAffine(g, [3, 5, 7]), affineOf(rotation(2, 30), [2, 2, 5], [1, 2, 3]), 1e-9);
  g.qformCode = 0;
  g.pixdim = [1, 3, 2, 1, 1, 1, 1, 1];
  // nibabel's documented example (AnalyzeHeader.get_base_affine) for shape (3, 5, 7), zooms (3, 2, 1)
  assertClose(bestAffine(g, [3, 5, 7]), [[-3, 0, 0, 3], [0, 2, 0, -4], [0, 0, 1, -3], [0, 0, 0, 1]], 0);
  assertClose(bestAffine(g, [3, 5]), [[-3, 0, 0, 3], [0, 2, 0, -4], [0, 0, 1, 0], [0, 0, 0, 1]], 0);
});

Deno.test("qformAffine: a quaternion longer than 1 is a NiftiError naming the field", () => {
  const g = geometryFromAffine(affineOf(rotation(0, 0), [1, 1, 1], [0, 0, 0]), [2, 2, 2]);
  g.quatern = [0.9, 0.9, 0];
  assert.throws(
    () => qformAffine(g, "x.nii"),
    (e: unknown) =>
      e instanceof NiftiError && e.field === "quatern" &&
      e.message.startsWith("x.nii: quatern: "),
  );
  g.sformCode = 0;
  assert.throws(() => bestAffine(g, [2, 2, 2], "x.nii"), NiftiError);
  assert.throws(() => geometryFromAffine([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]], [2, 2, 2]), RangeError);
});
