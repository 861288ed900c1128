/**
 * The spatial part of augmentation as batchgenerators' SpatialTransform does it (elastic offsets, rotation and
 * scaling of centred sampling coordinates, edge clamping), applied to image and label with one coordinate map.
 */
import type { Rng } from "../engine/rng.ts";

/** Box widths whose three successive passes approximate a Gaussian of the given sigma. */
export function boxWidths(sigma: number, passes = 3): number[] {
  const ideal = Math.sqrt((12 * sigma * sigma) / passes + 1);
  let wl = Math.floor(ideal);
  if (wl % 2 === 0) wl--;
  const wu = wl + 2;
  const m = Math.round(
    (12 * sigma * sigma - passes * wl * wl - 4 * passes * wl - 3 * passes) / (-4 * wl - 4),
  );
  return Array.from({ length: passes }, (_, i) => (i < m ? wl : wu));
}

/** One box pass along rows or columns with zeros outside (scipy mode "constant", cval 0), via prefix sums. */
function boxPass(src: Float32Array, h: number, w: number, width: number, alongRows: boolean): Float32Array {
  const out = new Float32Array(h * w);
  const r = (width - 1) / 2;
  const n = alongRows ? w : h;
  const lines = alongRows ? h : w;
  const stride = alongRows ? 1 : w;
  const prefix = new Float64Array(n + 1);
  for (let line = 0; line < lines; line++) {
    const base = alongRows ? line * w : line;
    for (let k = 0; k < n; k++) prefix[k + 1] = prefix[k] + src[base + k * stride];
    for (let k = 0; k < n; k++) {
      const lo = Math.max(0, k - r);
      const hi = Math.min(n, k + r + 1);
      out[base + k * stride] = (prefix[hi] - prefix[lo]) / width;
    }
  }
  return out;
}

/** Gaussian-smoothed field: three box passes per axis (O(1) per pixel, sigma ~50 px would need ~400 taps). */
export function smoothField(field: Float32Array, h: number, w: number, sigma: number): Float32Array {
  let out = field;
  for (const width of boxWidths(sigma)) {
    out = boxPass(out, h, w, width, true);
    out = boxPass(out, h, w, width, false);
  }
  return out;
}

/** Uniform(-1, 1) noise smoothed with a Gaussian of sigma (zero boundary) at full resolution: [h, w]. */
export function smoothNoiseExact(h: number, w: number, sigma: number, rng: Rng): Float32Array {
  const noise = new Float32Array(h * w); // [h, w]
  for (let i = 0; i < noise.length; i++) noise[i] = rng.next() * 2 - 1;
  return smoothField(noise, h, w, sigma);
}

/** The two source cells and the weight of the second for output pixel i of n cells upsampled by f. */
function upsampleTaps(i: number, f: number, n: number): [number, number, number] {
  const x = Math.min(Math.max((i + 0.5) / f - 0.5, 0), n - 1);
  const x0 = Math.floor(x);
  return [x0, Math.min(x0 + 1, n - 1), x - x0];
}

/**
 * The same field computed on a grid f times coarser: each coarse cell holds the mean of its f x f uniform
 * draws (drawn directly as N(0, 1/(3 f^2)), the central limit of that mean), smoothed with sigma / f and
 * upsampled bilinearly. For sigma >= 16 the kernel spans many cells, so this matches the exact field's
 * statistics closely at ~1/f^2 of the cost (sigma 40-60 at 224 px would otherwise dominate augmentation).
 */
export function smoothNoise(h: number, w: number, sigma: number, rng: Rng): Float32Array {
  const f = Math.min(8, Math.floor(sigma / 8));
  if (f < 2) return smoothNoiseExact(h, w, sigma, rng);
  const ch = Math.ceil(h / f);
  const cw = Math.ceil(w / f);
  const cells = rng.fillNormal(new Float32Array(ch * cw), 0, Math.sqrt(1 / (3 * f * f))); // [ch, cw]
  const coarse = smoothField(cells, ch, cw, sigma / f);
  // Bilinear upsampling, separable: columns first into [ch, w], then rows into [h, w].
  const wide = new Float32Array(ch * w); // [ch, w]
  for (let j = 0; j < w; j++) {
    const [x0, x1, fx] = upsampleTaps(j, f, cw);
    for (let r = 0; r < ch; r++) {
      const a = coarse[r * cw + x0];
      wide[r * w + j] = a + (coarse[r * cw + x1] - a) * fx;
    }
  }
  const out = new Float32Array(h * w); // [h, w]
  for (let i = 0; i < h; i++) {
    const [y0, y1, fy] = upsampleTaps(i, f, ch);
    for (let j = 0; j < w; j++) {
      const a = wide[y0 * w + j];
      out[i * w + j] = a + (wide[y1 * w + j] - a) * fy;
    }
  }
  return out;
}

/**
 * batchgenerators elastic_deform_coordinates: per axis, uniform(-1, 1) noise smoothed with a Gaussian of
 * `sigma` (zero boundary) times `alpha`, in pixels.
 */
export function elasticOffsets(
  h: number,
  w: number,
  alpha: number,
  sigma: number,
  rng: Rng,
): [Float32Array, Float32Array] {
  const axis = () => {
    const field = smoothNoise(h, w, sigma, rng);
    for (let i = 0; i < field.length; i++) field[i] *= alpha;
    return field;
  };
  const dy = axis();
  return [dy, axis()];
}

export interface SpatialParams {
  /** Elastic offsets in pixels (rows, columns), or none. */
  offsets?: [Float32Array, Float32Array];
  /** Rotation in radians (batchgenerators angle_x for 2D). */
  angle: number;
  /** Coordinate scale: > 1 samples a larger area, so content shrinks. */
  scale: number;
  /** Mirror columns / rows (applied before the other transforms, as MirrorTransform runs first). */
  flipX: boolean;
  flipY: boolean;
}

/**
 * Resamples image (bilinear) and label (nearest, never blended) on the same transformed grid. Coordinates are
 * centred, offset, rotated, scaled and re-centred as in batchgenerators augment_spatial; out-of-image samples
 * take the nearest edge value (border mode "nearest" for data and seg).
 */
export function spatialTransform(
  image: Float32Array, // [h, w, c]
  label: Uint8Array, // [h, w]
  h: number,
  w: number,
  c: number,
  p: SpatialParams,
): { image: Float32Array; label: Uint8Array } {
  const outImage = new Float32Array(h * w * c); // [h, w, c]
  const outLabel = new Uint8Array(h * w); // [h, w]
  const cy = (h - 1) / 2;
  const cx = (w - 1) / 2;
  const cos = Math.cos(p.angle);
  const sin = Math.sin(p.angle);
  const [dy, dx] = p.offsets ?? [undefined, undefined];
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const o = i * w + j;
      let y = i - cy;
      let x = j - cx;
      if (dy && dx) {
        y += dy[o];
        x += dx[o];
      }
      // rotate_coords_2d: coords^T @ [[cos, -sin], [sin, cos]]
      const ry = (y * cos + x * sin) * p.scale + cy;
      const rx = (-y * sin + x * cos) * p.scale + cx;
      let sy = Math.min(Math.max(ry, 0), h - 1);
      let sx = Math.min(Math.max(rx, 0), w - 1);
      if (p.flipY) sy = h - 1 - sy;
      if (p.flipX) sx = w - 1 - sx;
      const y0 = Math.floor(sy);
      const x0 = Math.floor(sx);
      const y1 = Math.min(y0 + 1, h - 1);
      const x1 = Math.min(x0 + 1, w - 1);
      const fy = sy - y0;
      const fx = sx - x0;
      const a = (y0 * w + x0) * c;
      const b = (y0 * w + x1) * c;
      const d = (y1 * w + x0) * c;
      const e = (y1 * w + x1) * c;
      for (let k = 0; k < c; k++) {
        const top = image[a + k] + (image[b + k] - image[a + k]) * fx;
        const bottom = image[d + k] + (image[e + k] - image[d + k]) * fx;
        outImage[o * c + k] = top + (bottom - top) * fy;
      }
      outLabel[o] = label[Math.round(sy) * w + Math.round(sx)];
    }
  }
  return { image: outImage, label: outLabel };
}
