/**
 * The frozen SAM/MedSAM weights a method runs on: the parts it uses, read from a checkpoint (checked strictly
 * against the preset) or drawn at random (seeded), and the record a run keeps of where they came from.
 */
import { tf } from "../engine/tf.ts";
import { toFloat32 } from "../io/host_tensor.ts";
import { checkStrict, readStateDict, sha256File } from "./checkpoint.ts";
import { PRESETS, type SamConfig } from "./sam/config.ts";
import type { Params } from "./sam/layers.ts";
import { initSamParams, samParamShapes } from "./sam/params.ts";

/** What a run records about its frozen base weights (referenced, never copied). */
export interface BaseWeights {
  path: string | null;
  sha256: string | null;
  source: "checkpoint" | "random";
}

export interface SamWeightsOptions {
  preset: "vit_b" | "tiny";
  /** SAM/MedSAM checkpoint (.pth or .safetensors); null = seeded random weights. */
  weights: string | null;
  seed: number;
}

/**
 * The SAM parameters whose keys pass `keep`: from o.weights (the kept keys checked strictly against the
 * preset's shapes; other keys may be present or not), or seeded random ones for `sam` (at its encoder size).
 */
export async function loadSamParams(
  o: SamWeightsOptions,
  sam: SamConfig,
  keep: (key: string) => boolean,
): Promise<{ params: Params; base: BaseWeights }> {
  if (!o.weights) {
    const all = initSamParams(sam, o.seed);
    const params: Params = new Map([...all].filter(([k]) => keep(k)));
    for (const [k, t] of all) if (!keep(k)) t.dispose();
    return { params, base: { path: null, sha256: null, source: "random" } };
  }
  const sd = await readStateDict(o.weights);
  const shapes = new Map([...samParamShapes(PRESETS[o.preset])].filter(([k]) => keep(k)));
  checkStrict(shapes, sd, o.weights, { ignore: (k) => !keep(k) });
  const params: Params = new Map();
  for (const [k, shape] of shapes) params.set(k, tf.tensor(toFloat32(sd.get(k)!), shape, "float32"));
  return { params, base: { path: o.weights, sha256: await sha256File(o.weights), source: "checkpoint" } };
}
