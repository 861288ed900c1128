/**
 * Voxel-to-world geometry of a NIfTI file, chosen exactly as nibabel's img.affine does (sform when
 * sform_code > 0, else qform, else a centred pixdim grid with x flipped), so a mask written with a copied
 * geometry lands on its scan in every viewer and our numbers match nibabel's.
 */
import { NiftiError } from "./nifti_error.ts";

/** Everything a writer must copy from a reference header for an output to overlay it exactly. */
export interface NiftiGeometry {
  /** All 8 entries; pixdim[0] is qfac (+1 or -1). */
  pixdim: number[];
  qformCode: number;
  sformCode: number;
  /** quatern_b, quatern_c, quatern_d. */
  quatern: [number, number, number];
  /** qoffset_x, qoffset_y, qoffset_z. */
  qoffset: [number, number, number];
  /** srow_x, srow_y, srow_z (3 x 4). */
  srow: number[][];
  xyztUnits: number;
}

/** NIFTI_UNITS_MM | NIFTI_UNITS_SEC: what scanners (and ACDC) write. */
const MM_SEC = 2 | 8;

/** nibabel's tolerance for b^2 + c^2 + d^2 slightly above 1 (float32 rounding of a unit quaternion). */
const QUATERNION_THRESHOLD = -3 * 2 ** -23;

/** A copy of just the geometry fields of h (a NiftiHeader is a NiftiGeometry and more). */
export function geometryFromHeader(h: NiftiGeometry): NiftiGeometry {
  return {
    pixdim: [...h.pixdim],
    qformCode: h.qformCode,
    sformCode: h.sformCode,
    quatern: [...h.quatern],
    qoffset: [...h.qoffset],
    srow: h.srow.map((r) => [...r]),
    xyztUnits: h.xyztUnits,
  };
}

/** The 4 x 4 affine nibabel reports as img.affine for this geometry and grid. */
export function bestAffine(g: NiftiGeometry, dims: number[], file = "<geometry>"): number[][] {
  if (g.sformCode > 0) {
    g.srow.forEach((row, r) => {
      if (!row.every(Number.isFinite)) {
        throw new NiftiError(file, `srow_${"xyz"[r]}`, `[${row}] is not finite`);
      }
    });
    return [...g.srow.map((r) => [...r]), [0, 0, 0, 1]];
  }
  if (g.qformCode > 0) return qformAffine(g, file);
  // nibabel's shape_zoom_affine with default_x_flip: voxel centre of the grid at the origin.
  const zooms = [0, 1, 2].map((i) => (i < dims.length ? g.pixdim[i + 1] : 1));
  const shape = [0, 1, 2].map((i) => (i < dims.length ? dims[i] : 1));
  zooms[0] *= -1;
  const out = identity();
  for (let i = 0; i < 3; i++) {
    out[i][i] = zooms[i];
    out[i][3] = -((shape[i] - 1) / 2) * zooms[i];
  }
  return out;
}

/** The qform affine (quaternion, spacing, qfac in pixdim[0], offset), as nibabel's header.get_qform(). */
export function qformAffine(g: NiftiGeometry, file = "<geometry>"): number[][] {
  const [b, c, d] = g.quatern;
  if (![b, c, d, ...g.qoffset].every(Number.isFinite)) {
    throw new NiftiError(file, "quatern", `quaternion [${g.quatern}] / qoffset [${g.qoffset}] is not finite`);
  }
  const w2 = 1 - (b * b + c * c + d * d);
  if (w2 < QUATERNION_THRESHOLD) {
    throw new NiftiError(file, "quatern", `b^2 + c^2 + d^2 = ${(1 - w2).toPrecision(6)} is above 1`);
  }
  const r = quaternionToMatrix(w2 < 0 ? 0 : Math.sqrt(w2), b, c, d);
  const vox = [g.pixdim[1], g.pixdim[2], g.pixdim[3] * (g.pixdim[0] === -1 ? -1 : 1)];
  const out = identity();
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) out[i][j] = r[i][j] * vox[j];
    out[i][3] = g.qoffset[i];
  }
  return out;
}

/**
 * Geometry for generated data: sform and qform (code 1, scanner) both set from the affine, as nibabel's
 * set_sform/set_qform do; shear, which a quaternion cannot hold, stays in the sform only.
 */
export function geometryFromAffine(affine: number[][], dims: number[]): NiftiGeometry {
  if (affine.length < 3 || !affine.slice(0, 3).every((r) => r.length === 4 && r.every(Number.isFinite))) {
    throw new RangeError("geometryFromAffine: affine must be 4 x 4 (at least 3 rows of 4) finite numbers");
  }
  const zooms = [0, 1, 2].map((j) => Math.hypot(affine[0][j], affine[1][j], affine[2][j]));
  if (zooms.some((z) => z === 0)) throw new RangeError("geometryFromAffine: affine is singular");
  const rot = [0, 1, 2].map((i) => [0, 1, 2].map((j) => affine[i][j] / zooms[j]));
  const qfac = det3(rot) > 0 ? 1 : -1;
  if (qfac < 0) { for (const row of rot) row[2] *= -1; }
  const [w, x, y, z] = matrixToQuaternion(nearestRotation(rot));
  const sign = w < 0 ? -1 : 1;
  const pixdim = [qfac, ...zooms, 1, 1, 1, 1];
  return {
    pixdim,
    qformCode: 1,
    sformCode: 1,
    quatern: [sign * x, sign * y, sign * z],
    qoffset: [affine[0][3], affine[1][3], affine[2][3]],
    srow: affine.slice(0, 3).map((r) => [...r]),
    xyztUnits: dims.length > 3 ? MM_SEC : 2,
  };
}

function identity(): number[][] {
  return [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
}

/** nibabel's quat2mat (normalising, so a float32-rounded quaternion still gives a rotation). */
function quaternionToMatrix(w: number, x: number, y: number, z: number): number[][] {
  const n = w * w + x * x + y * y + z * z;
  if (n < Number.EPSILON) return [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  const s = 2 / n;
  const [X, Y, Z] = [x * s, y * s, z * s];
  return [
    [1 - (y * Y + z * Z), x * Y - w * Z, x * Z + w * Y],
    [x * Y + w * Z, 1 - (x * X + z * Z), y * Z - w * X],
    [x * Z - w * Y, y * Z + w * X, 1 - (x * X + y * Y)],
  ];
}

/** Shepperd's method; the input is a proper rotation. Returns [w, x, y, z]. */
function matrixToQuaternion(m: number[][]): number[] {
  const tr = m[0][0] + m[1][1] + m[2][2];
  if (tr > 0) {
    const s = Math.sqrt(tr + 1) * 2;
    return [0.25 * s, (m[2][1] - m[1][2]) / s, (m[0][2] - m[2][0]) / s, (m[1][0] - m[0][1]) / s];
  }
  if (m[0][0] > m[1][1] && m[0][0] > m[2][2]) {
    const s = Math.sqrt(1 + m[0][0] - m[1][1] - m[2][2]) * 2;
    return [(m[2][1] - m[1][2]) / s, 0.25 * s, (m[0][1] + m[1][0]) / s, (m[0][2] + m[2][0]) / s];
  }
  if (m[1][1] > m[2][2]) {
    const s = Math.sqrt(1 + m[1][1] - m[0][0] - m[2][2]) * 2;
    return [(m[0][2] - m[2][0]) / s, (m[0][1] + m[1][0]) / s, 0.25 * s, (m[1][2] + m[2][1]) / s];
  }
  const s = Math.sqrt(1 + m[2][2] - m[0][0] - m[1][1]) * 2;
  return [(m[1][0] - m[0][1]) / s, (m[0][2] + m[2][0]) / s, (m[1][2] + m[2][1]) / s, 0.25 * s];
}

/** Nearest orthogonal matrix (polar factor, what nibabel gets from an SVD) by Newton iteration. */
function nearestRotation(m: number[][]): number[][] {
  let x = m.map((r) => [...r]);
  for (let it = 0; it < 100; it++) {
    const invT = transpose(inverse3(x));
    const next = x.map((r, i) => r.map((v, j) => 0.5 * (v + invT[i][j])));
    const delta = Math.max(...next.flat().map((v, k) => Math.abs(v - x.flat()[k])));
    x = next;
    if (delta < 1e-15) break;
  }
  return x;
}

function det3(m: number[][]): number {
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
    m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
    m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

function inverse3(m: number[][]): number[][] {
  const d = det3(m);
  if (Math.abs(d) < 1e-12) throw new RangeError("geometryFromAffine: affine is singular");
  const c = (r0: number, c0: number, r1: number, c1: number) => m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
  return [
    [c(1, 1, 2, 2) / d, -c(0, 1, 2, 2) / d, c(0, 1, 1, 2) / d],
    [-c(1, 0, 2, 2) / d, c(0, 0, 2, 2) / d, -c(0, 0, 1, 2) / d],
    [c(1, 0, 2, 1) / d, -c(0, 0, 2, 1) / d, c(0, 0, 1, 1) / d],
  ];
}

function transpose(m: number[][]): number[][] {
  return m[0].map((_, j) => m.map((r) => r[j]));
}
