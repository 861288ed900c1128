/**
 * The methods of the comparison by name: how to build each one's Segmenter from one set of options, and its
 * parameter counts from the architecture alone (what --dry-run prints without drawing ~90 M random numbers).
 */
import { cnnHeadParamCount, type HeadInit } from "./heads/cnn_head.ts";
import { createLoraMedNet, loraMedNetSpec } from "./loramednet.ts";
import { loraParamCount } from "./lora.ts";
import { createSamed, samedParamCounts, samedSpec } from "./samed.ts";
import { samParamShapes } from "./sam/params.ts";
import { type BaseWeights, isEncoderKey, shapeCount } from "./sam_weights.ts";
import type { Segmenter } from "./segmenter.ts";
import { createGNet } from "./gnet.ts";
import { gnetParamCounts } from "./gnet_spec.ts";
import { createVitHead, vitHeadParamCounts, vitHeadSpec } from "./vit_head.ts";

export const METHOD_NAMES = ["loramednet", "cnn-head", "vit-head", "gnet", "samed"] as const;
export type MethodName = typeof METHOD_NAMES[number];

/** Everything any method's builder reads; each takes the fields it needs. */
export interface MethodOptions {
  method: MethodName;
  preset: "vit_b" | "tiny";
  /** SAM/MedSAM checkpoint; null = seeded random base weights. */
  weights: string | null;
  seed: number;
  imageSize: number;
  encoderSize: number | null;
  loraRank: number;
  headTopChannel: number | null;
  headInit?: HeadInit | null;
  /** Classes including background. */
  numClasses: number;
  /** g-network: a PyTorch HarDNet-85 ImageNet state dict for its backbone; null or absent = random. */
  backboneWeights?: string | null;
  /** ViT head: the Hu code's random positional encoding instead of SAM's. */
  randomPe?: boolean;
  /** The device's largest bindable tensor in bytes (absent or Infinity off WebGPU). */
  maxBindingBytes?: number;
  /** Activation checkpointing of encoder blocks that train (see EncoderOptions). */
  checkpointBlocks?: boolean;
}

/**
 * Builds a method's model: spec, base weights (read and checked, or seeded random), fresh trainable parts;
 * `backbone` says where the g-network's HarDNet weights came from.
 */
export async function createSegmenter(
  o: MethodOptions,
): Promise<{ model: Segmenter; base: BaseWeights; backbone?: BaseWeights }> {
  switch (o.method) {
    case "loramednet":
    case "cnn-head":
      return await createLoraMedNet({ ...o, method: o.method });
    case "vit-head":
      return await createVitHead(o);
    case "samed":
      return await createSamed(o);
    case "gnet":
      return await createGNet({ ...o, backboneWeights: o.backboneWeights ?? null });
  }
}

/** Trainable and frozen parameter counts of a method from its architecture alone. */
export function methodParamCounts(o: MethodOptions): { trainable: number; frozen: number } {
  switch (o.method) {
    case "loramednet":
    case "cnn-head": {
      const spec = loraMedNetSpec({ ...o, method: o.method });
      return {
        trainable: cnnHeadParamCount(spec.head) + (spec.rank ? loraParamCount(spec.sam, spec.rank) : 0),
        frozen: shapeCount([...samParamShapes(spec.sam)].filter(([k]) => isEncoderKey(k))),
      };
    }
    case "vit-head":
      return vitHeadParamCounts(vitHeadSpec(o));
    case "samed":
      return samedParamCounts(samedSpec(o));
    case "gnet": {
      const c = gnetParamCounts({ ...o, backboneWeights: o.backboneWeights ?? null });
      return { trainable: c.trainable, frozen: c.frozen };
    }
  }
}
