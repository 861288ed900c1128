/**
 * Training augmentation of docs/methods.md 3.3 (brightness, gamma, noise, mirror, elastic, rotation, scale) with the
 * Hu code's defaults; image and label share every draw, and each transform draws from its own keyed stream so
 * switching one off leaves the others' draws unchanged.
 */
import { DataError } from "../errors.ts";
import type { Stage } from "./pipe.ts";
import type { Rng } from "../engine/rng.ts";
import { elasticOffsets, spatialTransform } from "./spatial.ts";
import type { SliceItem } from "./volume.ts";

type Range = [number, number];

/** Each transform fires with probability p (per slice); ranges are sampled uniformly. */
export interface AugmentOptions {
  /** Additive N(mu, sigma); perChannel false = one offset for all channels (docs/methods.md 7, decision 11). */
  brightness: { p: number; mu: number; sigma: number; perChannel: boolean };
  /** Rescale to [0, 1], power gamma, restore range; half the draws below 1, half above (batchgenerators). */
  gamma: { p: number; range: Range };
  /** Gaussian noise whose std is drawn from `variance` (batchgenerators uses the draw as the std). */
  noise: { p: number; variance: Range; perChannel: boolean };
  /** Each listed axis flips with probability p ("x" = columns, Hu's axes (1,)). */
  mirror: { p: number; axes: ("x" | "y")[] };
  /** Elastic offsets: alpha and sigma in pixels of the model grid. */
  elastic: { p: number; alpha: Range; sigma: Range };
  /** Rotation in radians. */
  rotation: { p: number; range: Range };
  /** Coordinate scale; half the draws below 1, half above (batchgenerators). */
  scale: { p: number; range: Range };
}

/** Partial options, as found in a config file; unspecified fields keep the defaults. */
export type AugmentConfig = { [K in keyof AugmentOptions]?: Partial<AugmentOptions[K]> };

/** The Hu/Xu/Shi training values (docs/methods.md 3.3), brightness shared across channels (docs/methods.md 7, decision 11). */
export const DEFAULT_AUGMENT: AugmentOptions = {
  brightness: { p: 0.5, mu: 1, sigma: 1, perChannel: false },
  gamma: { p: 0.5, range: [0.5, 2] },
  noise: { p: 0.5, variance: [0, 0.1], perChannel: true },
  mirror: { p: 0.5, axes: ["x"] },
  elastic: { p: 1, alpha: [100, 350], sigma: [40, 60] },
  rotation: { p: 0.5, range: [-0.1, 0.1] },
  scale: { p: 0.5, range: [0.5, 1.9] },
};

/** Fills in defaults and checks every value, naming the bad field (DataError). */
export function resolveAugment(config: AugmentConfig = {}): AugmentOptions {
  const out = structuredClone(DEFAULT_AUGMENT) as AugmentOptions;
  for (const [name, part] of Object.entries(config ?? {})) {
    if (!(name in out)) throw new DataError(`augment.${name}: unknown transform`);
    const target = out[name as keyof AugmentOptions] as Record<string, unknown>;
    for (const [key, value] of Object.entries(part ?? {})) {
      if (!(key in target)) throw new DataError(`augment.${name}.${key}: unknown option`);
      target[key] = value;
    }
  }
  for (const [name, t] of Object.entries(out) as [string, Record<string, unknown>][]) {
    const p = t.p as number;
    if (typeof p !== "number" || !(p >= 0 && p <= 1)) {
      throw new DataError(`augment.${name}.p: ${p} is not in [0, 1]`);
    }
    for (const [key, v] of Object.entries(t)) {
      if (key === "p" || key === "axes" || key === "perChannel") continue;
      const ok = Array.isArray(v)
        ? v.length === 2 && v.every(Number.isFinite) && v[0] <= v[1]
        : Number.isFinite(v);
      if (!ok) {
        throw new DataError(`augment.${name}.${key}: ${JSON.stringify(v)} is not a number or [lo, hi] range`);
      }
    }
  }
  if (!out.mirror.axes.every((a) => a === "x" || a === "y")) {
    throw new DataError(`augment.mirror.axes: ${JSON.stringify(out.mirror.axes)} must list "x" and/or "y"`);
  }
  if (out.gamma.range[0] <= 0) throw new DataError(`augment.gamma.range: gamma must be > 0`);
  if (out.scale.range[0] <= 0) throw new DataError(`augment.scale.range: scale must be > 0`);
  if (out.elastic.sigma[0] <= 0) throw new DataError(`augment.elastic.sigma: sigma must be > 0`);
  if (out.noise.variance[0] < 0) throw new DataError(`augment.noise.variance: must be >= 0`);
  return out;
}

/** batchgenerators' two-sided draw for gamma and scale: values below and above 1 are equally likely. */
function twoSided(rng: Rng, [lo, hi]: Range): number {
  if (rng.next() < 0.5 && lo < 1) return rng.uniform(lo, 1);
  return rng.uniform(Math.max(lo, 1), hi);
}

function addBrightness(img: Float32Array, c: number, o: AugmentOptions["brightness"], rng: Rng): void {
  const shared = rng.normal() * o.sigma + o.mu;
  const offsets = Array.from(
    { length: c },
    (_, k) => (o.perChannel && k > 0 ? rng.normal() * o.sigma + o.mu : shared),
  );
  for (let i = 0; i < img.length; i++) img[i] += offsets[i % c];
}

function applyGamma(img: Float32Array, c: number, o: AugmentOptions["gamma"], rng: Rng): void {
  const gamma = twoSided(rng, o.range);
  let min = Infinity;
  let max = -Infinity;
  for (const v of img) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const range = max - min;
  const f = (v: number) => ((v - min) / (range + 1e-7)) ** gamma * range + min;
  // Channels are usually equal copies of the grey slice: one pow per pixel instead of one per value.
  for (let i = 0; i < img.length; i += c) {
    const first = img[i];
    const g = f(first);
    img[i] = g;
    for (let k = 1; k < c; k++) img[i + k] = img[i + k] === first ? g : f(img[i + k]);
  }
}

function addNoise(img: Float32Array, c: number, o: AugmentOptions["noise"], rng: Rng): void {
  const std = rng.uniform(o.variance[0], o.variance[1]);
  if (o.perChannel) {
    const noise = rng.fillNormal(new Float32Array(img.length), 0, std); // [h, w, c]
    for (let i = 0; i < img.length; i++) img[i] += noise[i];
  } else {
    const noise = rng.fillNormal(new Float32Array(img.length / c), 0, std); // [h, w]
    for (let i = 0; i < img.length; i++) img[i] += noise[Math.floor(i / c)];
  }
}

/**
 * One augmented copy of a slice (the input is never modified, so cached slices can be reused every epoch).
 * Order as the Hu code: brightness, gamma, noise, mirror, then one spatial resampling.
 */
export function augmentSlice(item: SliceItem, rng: Rng, o: AugmentOptions): SliceItem {
  const { height: h, width: w, channels: c } = item;
  let image = item.image;
  const fires = (name: keyof AugmentOptions) => o[name].p > 0 && rng.fork(`${name}?`).next() < o[name].p;
  const intensity = (["brightness", "gamma", "noise"] as const).filter(fires);
  if (intensity.length > 0) image = image.slice();
  if (intensity.includes("brightness")) addBrightness(image, c, o.brightness, rng.fork("brightness"));
  if (intensity.includes("gamma")) applyGamma(image, c, o.gamma, rng.fork("gamma"));
  if (intensity.includes("noise")) addNoise(image, c, o.noise, rng.fork("noise"));

  const mirrorRng = rng.fork("mirror");
  const flips = { x: false, y: false };
  for (const axis of o.mirror.axes) flips[axis] = mirrorRng.next() < o.mirror.p;
  const elastic = fires("elastic")
    ? (() => {
      const r = rng.fork("elastic");
      return elasticOffsets(h, w, r.uniform(...o.elastic.alpha), r.uniform(...o.elastic.sigma), r);
    })()
    : undefined;
  const angle = fires("rotation") ? rng.fork("rotation").uniform(...o.rotation.range) : 0;
  const scale = fires("scale") ? twoSided(rng.fork("scale"), o.scale.range) : 1;
  let label = item.label;
  if (elastic || angle !== 0 || scale !== 1 || flips.x || flips.y) {
    ({ image, label } = spatialTransform(image, label, h, w, c, {
      offsets: elastic,
      angle,
      scale,
      flipX: flips.x,
      flipY: flips.y,
    }));
  }
  return image === item.image && label === item.label ? item : { ...item, image, label };
}

/** Stage: augments each slice with a stream keyed by its id, so results do not depend on order or prefetch. */
export function augment(rng: Rng, opts: AugmentOptions): Stage<SliceItem, SliceItem> {
  return async function* (source) {
    for await (const item of source) yield augmentSlice(item, rng.fork(item.id), opts);
  };
}
