/**
 * The SAM (or MedSAM) weights a method builds on: the parts it needs, read from a checkpoint and checked
 * strictly against the preset's shapes, or drawn at random from a seed for smoke runs and the demo; and what a
 * run records about where they came from (referenced by path and sha256, never copied into the run).
 */
import { tf } from "../engine/tf.ts";
import { toFloat32 } from "../io/host_tensor.ts";
import { readCheckedStateDict, sha256File } from "./checkpoint.ts";
import { PRESETS, type SamConfig } from "./sam/config.ts";
import type { Params } from "./sam/layers.ts";
import { initSamParams, samParamShapes } from "./sam/params.ts";

/** What a run records about its frozen base weights. */
export interface BaseWeights {
  path: string | null;
  sha256: string | null;
  source: "checkpoint" | "random";
}

export interface SamWeightsSource {
  preset: "vit_b" | "tiny";
  /** SAM/MedSAM checkpoint (.pth or .safetensors); null = seeded random weights. */
  weights: string | null;
  seed: number;
}

/**
 * The side the encoder runs at unless --encoder-size says otherwise: the paper's 1024 for vit_b; 128 for the
 * tiny preset, whose 16 x 16 tokens resolve a heart on a 128 px grid (a 64 px encoder's 8 x 8 cannot).
 */
export const ENCODER_SIZES = { vit_b: 1024, tiny: 128 } as const;

export const encoderSizeOf = (o: { preset: "vit_b" | "tiny"; encoderSize: number | null }) =>
  o.encoderSize ?? ENCODER_SIZES[o.preset];

export const isEncoderKey = (k: string) => k.startsWith("image_encoder.");

/**
 * The parameters of SAM whose keys `keep` accepts. From a checkpoint, those keys are checked strictly against
 * the preset (other parts may be present or not); at random, drawn at `sam` (the encoder size in use).
 */
export async function loadSamWeights(
  o: SamWeightsSource,
  sam: SamConfig,
  keep: (key: string) => boolean,
): Promise<{ params: Params; base: BaseWeights }> {
  if (!o.weights) {
    const all = initSamParams(sam, o.seed);
    const params: Params = new Map([...all].filter(([k]) => keep(k)));
    for (const [k, t] of all) if (!keep(k)) t.dispose();
    return { params, base: { path: null, sha256: null, source: "random" } };
  }
  const shapes = new Map([...samParamShapes(PRESETS[o.preset])].filter(([k]) => keep(k)));
  // Keys and shapes are checked on the file's description; only the kept tensors are ever read.
  const sd = await readCheckedStateDict(o.weights, shapes, { ignore: (k) => !keep(k) });
  const params: Params = new Map();
  for (const [k, shape] of shapes) params.set(k, tf.tensor(toFloat32(sd.get(k)!), shape, "float32"));
  return { params, base: { path: o.weights, sha256: await sha256File(o.weights), source: "checkpoint" } };
}

/** Element count of a shape map (parameter counts without drawing a single weight). */
export function shapeCount(shapes: Iterable<[string, number[]]>): number {
  let n = 0;
  for (const [, s] of shapes) n += s.reduce((a, b) => a * b, 1);
  return n;
}
