/**
 * Volume -> model-ready slices: per-volume intensity normalisation (docs/methods.md 7, decision 2), grey to 3 channels, and
 * resize to the model grid (7.3), keeping the original grid so predictions can be mapped back.
 */
import type { Stage } from "./pipe.ts";
import { resizeBilinear, resizeNearest } from "./resize.ts";
import type { SliceItem, Volume } from "./volume.ts";

/**
 * zscore: the paper's default (per volume); sam: per-volume 0..255 then SAM's pixel mean/std (ablation);
 * minmax: per-volume [0, 1] as the Hu loader; medsam: MedSAM's own input convention, per slice: clip to the
 * 0.5 and 99.5 percentiles, then min-max to [0, 1] (no mean/std).
 */
export const NORMALIZATIONS = ["zscore", "sam", "minmax", "medsam"] as const;
export type Normalization = typeof NORMALIZATIONS[number];

/** SAM's RGB pixel statistics on the 0..255 scale (segment_anything Sam.pixel_mean / pixel_std). */
export const SAM_PIXEL_MEAN = [123.675, 116.28, 103.53];
export const SAM_PIXEL_STD = [58.395, 57.12, 57.375];

export interface NormalizeOptions {
  /** Side of the square model grid (default 224, as the Hu code). */
  imageSize: number;
  normalization: Normalization;
  /** Grey is replicated to this many channels (3 for SAM's RGB encoder). */
  channels?: number;
}

export interface IntensityStats {
  mean: number;
  std: number;
  min: number;
  max: number;
}

/** Mean, population std, min and max over a whole volume (float64 sums: volumes have ~1e6 voxels). */
export function intensityStats(image: Float32Array): IntensityStats {
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < image.length; i++) {
    const v = image[i];
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / image.length;
  let sq = 0;
  for (let i = 0; i < image.length; i++) sq += (image[i] - mean) ** 2;
  return { mean, std: Math.sqrt(sq / image.length), min, max };
}

/**
 * Per-channel `out = grey * scale + offset` that realises a normalisation; being affine, it commutes with
 * bilinear resizing, so slices are resized once in grey and expanded to channels afterwards.
 * A constant volume maps to 0 (zscore, minmax) rather than dividing by zero.
 */
export function channelAffine(
  mode: Normalization,
  stats: IntensityStats,
  channels = 3,
): { scale: number[]; offset: number[] } {
  const scale: number[] = [];
  const offset: number[] = [];
  const range = stats.max - stats.min;
  for (let c = 0; c < channels; c++) {
    if (mode === "medsam") throw new RangeError("medsam normalises each slice: use volumeSlices");
    if (mode === "zscore") {
      const s = stats.std > 1e-8 ? 1 / stats.std : 1;
      scale.push(s);
      offset.push(-stats.mean * s);
    } else {
      // minmax to [0, 1]; sam goes on to 0..255 and SAM's per-channel mean/std.
      const s = range > 1e-8 ? 1 / range : 0;
      if (mode === "minmax") {
        scale.push(s);
        offset.push(-stats.min * s);
      } else {
        const m = SAM_PIXEL_MEAN[c % 3];
        const d = SAM_PIXEL_STD[c % 3];
        scale.push((255 * s) / d);
        offset.push((-stats.min * 255 * s - m) / d);
      }
    }
  }
  return { scale, offset };
}

/** numpy's percentile (linear interpolation) of values at q in [0, 1]; sorts a copy. */
export function percentile(values: Float32Array, q: number): number {
  const sorted = Float32Array.from(values).sort();
  const at = q * (sorted.length - 1), lo = Math.floor(at), hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

/** MedSAM's per-slice convention: the slice clipped to its 0.5/99.5 percentiles, and the affine to [0, 1]. */
function medsamSlice(plane: Float32Array, channels: number) {
  const lo = percentile(plane, 0.005), hi = percentile(plane, 0.995);
  const clipped = plane.map((v) => Math.min(hi, Math.max(lo, v)));
  const s = hi - lo > 1e-8 ? 1 / (hi - lo) : 0; // a constant slice maps to 0
  return { clipped, affine: { scale: Array(channels).fill(s), offset: Array(channels).fill(-lo * s) } };
}

/**
 * One slice of a volume at model resolution; `affine` comes from channelAffine on the whole volume, and
 * `intensities` replaces the slice's own voxels where a normalisation changes them first (medsam's clipping).
 */
export function volumeSlice(
  volume: Volume,
  z: number,
  opts: NormalizeOptions,
  affine: { scale: number[]; offset: number[] },
  intensities?: Float32Array,
): SliceItem {
  const [X, Y] = volume.shape;
  const S = opts.imageSize;
  const channels = opts.channels ?? 3;
  const plane = X * Y;
  const own = intensities ?? volume.image.subarray(z * plane, (z + 1) * plane); // [Y, X]
  const grey = resizeBilinear(own, Y, X, S, S); // [S, S]
  const image = new Float32Array(S * S * channels); // [S, S, channels]
  for (let i = 0; i < S * S; i++) {
    for (let c = 0; c < channels; c++) image[i * channels + c] = grey[i] * affine.scale[c] + affine.offset[c];
  }
  const label = resizeNearest(volume.label.subarray(z * plane, (z + 1) * plane), Y, X, S, S); // [S, S]
  return {
    id: `${volume.id}_z${String(z).padStart(2, "0")}`,
    volumeId: volume.id,
    patient: volume.patient,
    ...(volume.phase ? { phase: volume.phase } : {}),
    z,
    height: S,
    width: S,
    channels,
    image,
    label,
    originalHeight: Y,
    originalWidth: X,
  };
}

/** Every slice of a volume, in z order, normalised with that volume's statistics. */
export function volumeSlices(volume: Volume, opts: NormalizeOptions): SliceItem[] {
  if (!Number.isInteger(opts.imageSize) || opts.imageSize < 1) {
    throw new RangeError(`imageSize must be a positive integer, got ${opts.imageSize}`);
  }
  const channels = opts.channels ?? 3;
  if (opts.normalization === "medsam") {
    const plane = volume.shape[0] * volume.shape[1];
    return Array.from({ length: volume.shape[2] }, (_, z) => {
      const { clipped, affine } = medsamSlice(volume.image.subarray(z * plane, (z + 1) * plane), channels);
      return volumeSlice(volume, z, opts, affine, clipped);
    });
  }
  const affine = channelAffine(opts.normalization, intensityStats(volume.image), channels);
  return Array.from({ length: volume.shape[2] }, (_, z) => volumeSlice(volume, z, opts, affine));
}

/** True when every channel gets the same values (grey replicated), so one channel can stand for all. */
export function channelsAreCopies(mode: Normalization): boolean {
  return mode !== "sam";
}

/** A 1-channel slice replicated to `channels` (caches keep 1 channel: a 224 x 224 x 3 slice is 600 KB). */
export function expandChannels(item: SliceItem, channels = 3): SliceItem {
  if (item.channels === channels) return item;
  if (item.channels !== 1) {
    throw new RangeError(`expandChannels: slice ${item.id} has ${item.channels} channels`);
  }
  const n = item.height * item.width;
  const image = new Float32Array(n * channels); // [H, W, channels]
  for (let i = 0; i < n; i++) image.fill(item.image[i], i * channels, (i + 1) * channels);
  return { ...item, channels, image };
}

/** Stage: volumes in, their slices out (volume by volume, z order). */
export function normalize(opts: NormalizeOptions): Stage<Volume, SliceItem> {
  return async function* (source) {
    for await (const volume of source) yield* volumeSlices(volume, opts);
  };
}

/** The inverse mapping: a label map on the model grid back to the slice's original grid (nearest). */
export function toOriginalGrid(
  labelMap: Uint8Array, // [height, width]
  item: Pick<SliceItem, "height" | "width" | "originalHeight" | "originalWidth">,
): Uint8Array { // [originalHeight, originalWidth]
  if (labelMap.length !== item.height * item.width) {
    throw new RangeError(`label map has ${labelMap.length} values, expected ${item.height} x ${item.width}`);
  }
  return resizeNearest(labelMap, item.height, item.width, item.originalHeight, item.originalWidth);
}

/** Stacks per-slice predictions (model grid, z order) into a volume on the original grid: [Z, Y, X]. */
export function toOriginalVolume(
  labelMaps: Uint8Array[], // Z x [height, width]
  items: Pick<SliceItem, "height" | "width" | "originalHeight" | "originalWidth">[],
): Uint8Array { // [Z, Y, X]
  if (labelMaps.length !== items.length) {
    throw new RangeError(`${labelMaps.length} label maps for ${items.length} slices`);
  }
  if (items.length === 0) return new Uint8Array(0);
  const plane = items[0].originalHeight * items[0].originalWidth;
  const out = new Uint8Array(plane * items.length);
  labelMaps.forEach((map, z) => out.set(toOriginalGrid(map, items[z]), z * plane));
  return out;
}
