/** Label overlays and slice grids rendered to RGB bytes, so a person can see what the model is fed. */
import type { SliceItem } from "./volume.ts";

/** Overlay colours for classes 1..3 (RV red, Myo green, LV blue); further classes cycle. */
export const CLASS_COLOURS: [number, number, number][] = [[230, 60, 60], [60, 200, 80], [70, 130, 255], [
  240,
  200,
  40,
]];

/**
 * One slice as RGB: channel 0 windowed to its own 1st..99th percentile (augmented intensities have no fixed
 * range), with each foreground class blended in its colour at `alpha`.
 */
export function overlaySlice(
  image: Float32Array, // [h, w, c]
  label: Uint8Array, // [h, w]
  h: number,
  w: number,
  c: number,
  alpha = 0.45,
): Uint8Array { // [h, w, 3]
  const grey = new Float32Array(h * w);
  for (let i = 0; i < h * w; i++) grey[i] = image[i * c];
  const sorted = grey.slice().sort();
  const lo = sorted[Math.floor(0.01 * (sorted.length - 1))];
  const hi = sorted[Math.ceil(0.99 * (sorted.length - 1))];
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const out = new Uint8Array(h * w * 3);
  for (let i = 0; i < h * w; i++) {
    const g = Math.min(255, Math.max(0, (grey[i] - lo) * scale));
    const k = label[i];
    const col = k > 0 ? CLASS_COLOURS[(k - 1) % CLASS_COLOURS.length] : undefined;
    for (let ch = 0; ch < 3; ch++) out[i * 3 + ch] = Math.round(col ? (1 - alpha) * g + alpha * col[ch] : g);
  }
  return out;
}

/** Slices tiled row by row, `cols` per row, with a 2-pixel dark gap; all slices must share one size. */
export function previewGrid(
  items: SliceItem[],
  cols = 4,
): { pixels: Uint8Array; width: number; height: number } {
  if (items.length === 0) throw new RangeError("previewGrid: no slices");
  const { height: h, width: w } = items[0];
  const gap = 2;
  const n = Math.min(cols, items.length);
  const rows = Math.ceil(items.length / n);
  const width = n * w + (n - 1) * gap;
  const height = rows * h + (rows - 1) * gap;
  const pixels = new Uint8Array(width * height * 3).fill(24); // [height, width, 3]
  items.forEach((it, t) => {
    if (it.height !== h || it.width !== w) {
      throw new RangeError(`previewGrid: slice ${it.id} differs in size`);
    }
    const tile = overlaySlice(it.image, it.label, h, w, it.channels);
    const x0 = (t % n) * (w + gap);
    const y0 = Math.floor(t / n) * (h + gap);
    for (let y = 0; y < h; y++) {
      pixels.set(tile.subarray(y * w * 3, (y + 1) * w * 3), ((y0 + y) * width + x0) * 3);
    }
  });
  return { pixels, width, height };
}
