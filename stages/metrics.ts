/**
 * Segmentation metrics on label arrays: Dice (empty vs empty = 1, as the Hu evaluation) and HD95 in
 * millimetres (medpy's definition: surface voxels, anisotropic spacing, max of the two directed 95th percentiles).
 */

/** Label volume in x-fastest order (NIfTI order): data[x + nx*(y + ny*z)]. */
export interface LabelVolume {
  data: Uint8Array;
  /** [nx, ny, nz] (nz = 1 for a slice). */
  dims: readonly number[];
}

/** Binary Dice of class c: 2|P and G| / (|P| + |G|), 1 when both are empty. */
export function dice(pred: Uint8Array, gt: Uint8Array, c: number): number {
  if (pred.length !== gt.length) throw new RangeError(`dice: ${pred.length} vs ${gt.length} voxels`);
  let p = 0, g = 0, both = 0;
  for (let i = 0; i < pred.length; i++) {
    const a = pred[i] === c, b = gt[i] === c;
    if (a) p++;
    if (b) g++;
    if (a && b) both++;
  }
  return p + g === 0 ? 1 : (2 * both) / (p + g);
}

/** Voxels of class c with a 6-neighbour (or the volume's edge) outside the class: scipy's mask ^ erosion. */
function surface(lab: Uint8Array, dims: readonly number[], c: number): Uint8Array {
  const [nx, ny, nz] = [dims[0], dims[1] ?? 1, dims[2] ?? 1];
  const out = new Uint8Array(lab.length);
  // scipy's erosion treats outside the volume as background, so voxels on any face (all of a one-slice
  // volume) are surface, exactly as medpy sees them.
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const i = x + nx * (y + ny * z);
        if (lab[i] !== c) continue;
        const inner = x > 0 && x < nx - 1 && y > 0 && y < ny - 1 && z > 0 && z < nz - 1 &&
          lab[i - 1] === c && lab[i + 1] === c && lab[i - nx] === c && lab[i + nx] === c &&
          lab[i - nx * ny] === c && lab[i + nx * ny] === c;
        if (!inner) out[i] = 1;
      }
    }
  }
  return out;
}

/** 1D squared distance transform with sample spacing s (Felzenszwalb & Huttenlocher lower envelope). */
function edt1d(
  f: Float64Array,
  n: number,
  s: number,
  d: Float64Array,
  v: Int32Array,
  zz: Float64Array,
): void {
  let k = 0;
  v[0] = 0;
  zz[0] = -Infinity;
  zz[1] = Infinity;
  const s2 = s * s;
  for (let q = 1; q < n; q++) {
    if (f[q] === Infinity) continue;
    if (f[v[k]] === Infinity) {
      v[k] = q;
      continue;
    }
    let sp = 0;
    for (;;) {
      const r = v[k];
      sp = ((f[q] + s2 * q * q) - (f[r] + s2 * r * r)) / (2 * s2 * (q - r));
      if (sp <= zz[k] && k > 0) k--;
      else break;
    }
    k++;
    v[k] = q;
    zz[k] = sp;
    zz[k + 1] = Infinity;
  }
  if (f[v[0]] === Infinity) {
    d.fill(Infinity, 0, n);
    return;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (zz[k + 1] < q) k++;
    const r = v[k];
    d[q] = s2 * (q - r) * (q - r) + f[r];
  }
}

/** Euclidean distance (mm) from every voxel to the nearest voxel where seed is 1. */
export function distanceToSet(
  seed: Uint8Array,
  dims: readonly number[],
  spacing: readonly number[],
): Float64Array {
  const [nx, ny, nz] = [dims[0], dims[1] ?? 1, dims[2] ?? 1];
  const sp = [spacing[0] ?? 1, spacing[1] ?? 1, spacing[2] ?? 1];
  const g = new Float64Array(seed.length);
  for (let i = 0; i < seed.length; i++) g[i] = seed[i] ? 0 : Infinity;
  const n = Math.max(nx, ny, nz);
  const f = new Float64Array(n), d = new Float64Array(n), zz = new Float64Array(n + 1), v = new Int32Array(n);
  const pass = (len: number, stride: number, s: number, starts: number[]) => {
    for (const start of starts) {
      for (let i = 0; i < len; i++) f[i] = g[start + i * stride];
      edt1d(f, len, s, d, v, zz);
      for (let i = 0; i < len; i++) g[start + i * stride] = d[i];
    }
  };
  const starts = (count: number, at: (k: number) => number) => Array.from({ length: count }, (_, k) => at(k));
  pass(nx, 1, sp[0], starts(ny * nz, (k) => k * nx));
  pass(ny, nx, sp[1], starts(nx * nz, (k) => (k % nx) + nx * ny * Math.floor(k / nx)));
  pass(nz, nx * ny, sp[2], starts(nx * ny, (k) => k));
  for (let i = 0; i < g.length; i++) g[i] = Math.sqrt(g[i]);
  return g;
}

/** numpy.percentile with linear interpolation. */
function percentile(values: Float64Array, p: number): number {
  const a = Float64Array.from(values).sort();
  const r = (p / 100) * (a.length - 1);
  const lo = Math.floor(r), hi = Math.ceil(r);
  return a[lo] + (a[hi] - a[lo]) * (r - lo);
}

/**
 * 95th-percentile Hausdorff distance (mm) of class c, as medpy.metric.hd95: 0 when both are empty, null when
 * exactly one is (the distance is undefined; medpy raises there).
 */
export function hd95(
  pred: LabelVolume,
  gt: LabelVolume,
  c: number,
  spacing: readonly number[],
): number | null {
  if (pred.data.length !== gt.data.length) {
    throw new RangeError(`hd95: ${pred.data.length} vs ${gt.data.length} voxels`);
  }
  const sp = surface(pred.data, pred.dims, c);
  const sg = surface(gt.data, gt.dims, c);
  const hasP = sp.some((v) => v === 1), hasG = sg.some((v) => v === 1);
  if (!hasP && !hasG) return 0;
  if (!hasP || !hasG) return null;
  const directed = (from: Uint8Array, to: Uint8Array) => {
    const dt = distanceToSet(to, gt.dims, spacing);
    const out: number[] = [];
    for (let i = 0; i < from.length; i++) if (from[i]) out.push(dt[i]);
    return Float64Array.from(out);
  };
  return Math.max(percentile(directed(sp, sg), 95), percentile(directed(sg, sp), 95));
}
