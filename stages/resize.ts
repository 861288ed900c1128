/** 2D resizing with half-pixel centres (bilinear for images, nearest for labels), shared with the inverse map. */

/**
 * Bilinear resize of a channels-last image, edge-clamped, no anti-aliasing (skimage order 1 / tf
 * resizeBilinear with half-pixel centres).
 */
export function resizeBilinear(
  src: Float32Array, // [sh, sw, c]
  sh: number,
  sw: number,
  dh: number,
  dw: number,
  c = 1,
): Float32Array { // [dh, dw, c]
  const out = new Float32Array(dh * dw * c);
  const sy = sh / dh;
  const sx = sw / dw;
  const x0s = new Int32Array(dw);
  const x1s = new Int32Array(dw);
  const fxs = new Float32Array(dw);
  for (let j = 0; j < dw; j++) {
    const x = Math.min(Math.max((j + 0.5) * sx - 0.5, 0), sw - 1);
    x0s[j] = Math.floor(x);
    x1s[j] = Math.min(x0s[j] + 1, sw - 1);
    fxs[j] = x - x0s[j];
  }
  for (let i = 0; i < dh; i++) {
    const y = Math.min(Math.max((i + 0.5) * sy - 0.5, 0), sh - 1);
    const y0 = Math.floor(y);
    const y1 = Math.min(y0 + 1, sh - 1);
    const fy = y - y0;
    const r0 = y0 * sw;
    const r1 = y1 * sw;
    for (let j = 0; j < dw; j++) {
      const fx = fxs[j];
      const a = (r0 + x0s[j]) * c;
      const b = (r0 + x1s[j]) * c;
      const d = (r1 + x0s[j]) * c;
      const e = (r1 + x1s[j]) * c;
      const o = (i * dw + j) * c;
      for (let k = 0; k < c; k++) {
        const top = src[a + k] + (src[b + k] - src[a + k]) * fx;
        const bottom = src[d + k] + (src[e + k] - src[d + k]) * fx;
        out[o + k] = top + (bottom - top) * fy;
      }
    }
  }
  return out;
}

/** Source index of each destination index for nearest resizing along one axis (half-pixel centres). */
function nearestIndex(sn: number, dn: number): Int32Array {
  const idx = new Int32Array(dn);
  for (let j = 0; j < dn; j++) idx[j] = Math.min(Math.floor((j + 0.5) * sn / dn), sn - 1);
  return idx;
}

/** Nearest-neighbour resize of a label map: values are copied, never blended. */
export function resizeNearest<T extends Uint8Array | Int32Array>(
  src: T, // [sh, sw]
  sh: number,
  sw: number,
  dh: number,
  dw: number,
): T { // [dh, dw]
  const out = new (src.constructor as { new (n: number): T })(dh * dw);
  const ys = nearestIndex(sh, dh);
  const xs = nearestIndex(sw, dw);
  for (let i = 0; i < dh; i++) {
    const row = ys[i] * sw;
    for (let j = 0; j < dw; j++) out[i * dw + j] = src[row + xs[j]];
  }
  return out;
}
