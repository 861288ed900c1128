/**
 * SAMed (Zhang & Liu, docs/methods.md 2.4): LoRA on q and v of every encoder block (base weights frozen), and
 * SAM's prompt encoder and mask decoder trained whole, the decoder rebuilt with one mask token per class
 * (background included) whose tokens, hypernetwork MLPs and IoU head start fresh; run without prompts, every
 * mask token's map is one class's logits. The encoder runs at the same size as the other methods' (decision 4).
 */
import { tf } from "../engine/tf.ts";
import type { HostTensor } from "../io/host_tensor.ts";
import { Rng } from "../engine/rng.ts";
import { initLora, loraParamCount, mergeLora, withLora } from "./lora.ts";
import { presetAtSize, type SamConfig } from "./sam/config.ts";
import { encoderLimits, type EncoderOptions, imageEncoder } from "./sam/image_encoder.ts";
import type { Params } from "./sam/layers.ts";
import { maskDecoder } from "./sam/mask_decoder.ts";
import { initParams, samParamShapes } from "./sam/params.ts";
import { getDensePe, promptEncoder } from "./sam/prompt_encoder.ts";
import { resizeBilinear } from "./sam/resize.ts";
import {
  type BaseWeights,
  encoderSizeOf,
  isEncoderKey,
  loadSamWeights,
  type SamWeightsSource,
  shapeCount,
} from "./sam_weights.ts";
import type { Segmenter } from "./segmenter.ts";
import { exportVariables, importVariables, sizeOf } from "./trainable_io.ts";

const PE_KEY = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix";

export interface SamedOptions extends SamWeightsSource {
  imageSize: number;
  encoderSize: number | null;
  loraRank: number;
  /** Classes including background: the decoder's mask-token count. */
  numClasses: number;
  maxBindingBytes?: number;
  /** Activation checkpointing of the encoder blocks that train (see EncoderOptions). */
  checkpointBlocks?: boolean;
}

export interface SamedSpec {
  method: "samed";
  /** The architecture with num_multimask_outputs = numClasses - 1, so it has numClasses mask tokens. */
  sam: SamConfig;
  rank: number;
  imageSize: number;
  numClasses: number;
}

/** SAMed's load_from drops these keys (their shapes follow the class count), so they start fresh. */
const isFresh = (k: string) =>
  k.startsWith("mask_decoder.mask_tokens.") || k.startsWith("mask_decoder.output_hypernetworks_mlps.") ||
  k.startsWith("mask_decoder.iou_prediction_head.");
/** What trains besides LoRA: the prompt encoder's parameters (not its PE buffer) and the whole decoder. */
const isDecoderSide = (k: string) =>
  (k.startsWith("prompt_encoder.") && k !== PE_KEY) || k.startsWith("mask_decoder.");

export function samedSpec(o: SamedOptions): SamedSpec {
  const sam = { ...presetAtSize(o.preset, encoderSizeOf(o)), num_multimask_outputs: o.numClasses - 1 };
  return { method: "samed", sam, rank: o.loraRank, imageSize: o.imageSize, numClasses: o.numClasses };
}

/**
 * Counts from the architecture alone: LoRA (147,456 at rank 4) + prompt encoder parameters (6,220) + mask
 * decoder with numClasses tokens (4,058,340 for ACDC's 4) = 4,212,016 trainable at vit_b.
 */
export function samedParamCounts(spec: SamedSpec): { trainable: number; frozen: number } {
  const shapes = [...samParamShapes(spec.sam)];
  return {
    trainable: loraParamCount(spec.sam, spec.rank) + shapeCount(shapes.filter(([k]) => isDecoderSide(k))),
    frozen: shapeCount(shapes.filter(([k]) => isEncoderKey(k))),
  };
}

export class Samed implements Segmenter {
  readonly method = "samed";
  readonly numClasses: number;
  readonly imageSize: number;
  readonly trainable: Map<string, tf.Variable>;
  private readonly lora: Map<string, tf.Variable>;
  private encoderParams: Params;
  private merged: tf.Tensor[] | null = null;

  /** Takes ownership of base (frozen encoder + PE buffer), decoder (trainable) and the fresh adapters. */
  constructor(
    readonly spec: SamedSpec,
    private readonly base: Params,
    private readonly decoder: Map<string, tf.Variable>,
    rng: Rng,
    private readonly limits: EncoderOptions = {},
  ) {
    this.numClasses = spec.numClasses;
    this.imageSize = spec.imageSize;
    this.lora = initLora(spec.sam, spec.rank, rng.fork("lora"));
    this.trainable = new Map([...this.lora, ...decoder]);
    this.encoderParams = withLora(base, this.lora);
  }

  counts(): { trainable: number; frozen: number } {
    const pe = this.base.get(PE_KEY)?.size ?? 0; // a buffer, not a parameter
    return { trainable: sizeOf(this.trainable.values()), frozen: sizeOf(this.base.values()) - pe };
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    const s = this.imageSize, { sam } = this.spec, e = sam.image_size;
    if (x.shape[1] !== s || x.shape[2] !== s || x.shape[3] !== 3) {
      throw new Error(`Samed.forward: input [${x.shape}] is not [B, ${s}, ${s}, 3]`);
    }
    return tf.tidy(() => {
      const xe = s === e ? x : resizeBilinear(x, e, e); // [B, E, E, 3]
      const emb = imageEncoder(this.encoderParams, sam, xe, this.limits); // [B, g, g, C]
      const p: Params = new Map([...this.base, ...this.decoder]);
      const { sparse, dense } = promptEncoder(p, sam); // [1, 0, C], [1, g, g, C]: no prompts
      const imagePe = getDensePe(p, sam); // [1, g, g, C]
      const { masks } = maskDecoder(p, sam, { imageEmbeddings: emb, imagePe, sparse, dense }, "all"); // [B, K, 4g, 4g]
      const logits = tf.transpose(masks, [0, 2, 3, 1]) as tf.Tensor4D; // [B, 4g, 4g, K]
      return logits.shape[1] === s ? logits : resizeBilinear(logits, s, s); // [B, S, S, K]
    });
  }

  merge(): void {
    if (this.merged) return;
    const { params, created } = mergeLora(this.base, this.lora, this.spec.sam.depth);
    this.encoderParams = params;
    this.merged = created;
  }

  exportTrainable(): Promise<Map<string, HostTensor>> {
    return exportVariables(this.trainable);
  }

  importTrainable(tensors: ReadonlyMap<string, HostTensor>, file: string): void {
    importVariables(this.trainable, tensors, file, this.method);
  }

  dispose(): void {
    tf.dispose([...this.trainable.values(), ...this.base.values(), ...(this.merged ?? [])]);
    this.merged = null;
  }
}

/** Builds SAMed: SAM's weights (checkpoint or seeded random) with fresh adapters and class tokens. */
export async function createSamed(o: SamedOptions): Promise<{ model: Samed; base: BaseWeights }> {
  const spec = samedSpec(o);
  const { params, base } = await loadSamWeights(
    o,
    spec.sam,
    (k) => isEncoderKey(k) || k === PE_KEY || (isDecoderSide(k) && !isFresh(k)),
  );
  const rng = new Rng(o.seed).fork("model");
  const freshShapes = new Map([...samParamShapes(spec.sam)].filter(([k]) => isFresh(k)));
  const frozen: Params = new Map();
  const decoder = new Map<string, tf.Variable>();
  for (const [k, t] of [...params, ...initParams(freshShapes, rng.fork("decoder"))]) {
    if (isDecoderSide(k)) {
      decoder.set(k, tf.variable(t, true));
      t.dispose();
    } else frozen.set(k, t);
  }
  return {
    model: new Samed(spec, frozen, decoder, rng, {
      ...encoderLimits(o.maxBindingBytes ?? Infinity),
      checkpointBlocks: o.checkpointBlocks,
    }),
    base,
  };
}
