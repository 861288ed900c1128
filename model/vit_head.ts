/**
 * The ViT head (Hu et al.'s "AutoSAM" decoder, docs/methods.md 2.2): SAM's mask decoder run without prompts,
 * once per class with that class's own IoU token and two mask tokens, on a frozen SAM/MedSAM encoder. The
 * transformer, upscaling and hypernetwork MLPs start from SAM's weights and train; the tokens are new; the IoU
 * token and head are new and frozen (as in the Hu code, where every "iou" parameter is frozen).
 */
import { tf } from "../engine/tf.ts";
import type { HostTensor } from "../io/host_tensor.ts";
import { Rng } from "../engine/rng.ts";
import { embeddingSize, presetAtSize, type SamConfig } from "./sam/config.ts";
import { encoderLimits, type EncoderOptions, frozenImageEncoder } from "./sam/image_encoder.ts";
import type { Params } from "./sam/layers.ts";
import { maskDecoder } from "./sam/mask_decoder.ts";
import { initParams, samParamShapes } from "./sam/params.ts";
import { getDensePe } from "./sam/prompt_encoder.ts";
import { resizeBilinear } from "./sam/resize.ts";
import {
  type BaseWeights,
  encoderSizeOf,
  isEncoderKey,
  loadSamWeights,
  type SamWeightsSource,
  shapeCount,
} from "./sam_weights.ts";
import { checkInput, type Segmenter } from "./segmenter.ts";
import { exportVariables, importVariables, sizeOf } from "./trainable_io.ts";

const MD = "mask_decoder";
const PE_KEY = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix";
/** Mask tokens per class: num_multimask_outputs = 1 gives 2, of which the first makes the class's map. */
const TOKENS_PER_CLASS = 2;

export interface VitHeadOptions extends SamWeightsSource {
  imageSize: number;
  /** Side the encoder runs at; null = the preset's native size (1024 for vit_b). */
  encoderSize: number | null;
  /** Classes including background (one token set each). */
  numClasses: number;
  /** The Hu code's quirk: a fresh random positional-encoding matrix instead of SAM's (docs/methods.md 7.7). */
  randomPe?: boolean;
  maxBindingBytes?: number;
}

export interface VitHeadSpec {
  method: "vit-head";
  sam: SamConfig;
  imageSize: number;
  numClasses: number;
  randomPe: boolean;
}

/** Keys loaded from SAM that train: the two-way transformer, the upscaling and hypernetwork MLPs 0 and 1. */
const isLoadedTrainable = (k: string) =>
  k.startsWith(`${MD}.transformer.`) || k.startsWith(`${MD}.output_upscaling.`) ||
  /^mask_decoder\.output_hypernetworks_mlps\.[01]\./.test(k);

/** The new parts: per-class tokens (mask tokens train, the IoU token does not) and the 2-output IoU head. */
function freshShapes(spec: VitHeadSpec): Map<string, number[]> {
  const c = spec.sam.out_chans, hid = spec.sam.iou_head_hidden_dim;
  const dims = [c, hid, hid, TOKENS_PER_CLASS];
  const m = new Map<string, number[]>([
    [`${MD}.iou_token.weight`, [spec.numClasses, c]],
    [`${MD}.mask_tokens.weight`, [spec.numClasses * TOKENS_PER_CLASS, c]],
  ]);
  for (let i = 0; i < 3; i++) {
    m.set(`${MD}.iou_prediction_head.layers.${i}.weight`, [dims[i + 1], dims[i]]);
    m.set(`${MD}.iou_prediction_head.layers.${i}.bias`, [dims[i + 1]]);
  }
  return m;
}

export function vitHeadSpec(o: VitHeadOptions): VitHeadSpec {
  const sam = presetAtSize(o.preset, encoderSizeOf(o));
  return {
    method: "vit-head",
    sam,
    imageSize: o.imageSize,
    numClasses: o.numClasses,
    randomPe: !!o.randomPe,
  };
}

/** Parameter counts from the architecture alone (for --dry-run): 3,646,880 trainable at vit_b, 4 classes. */
export function vitHeadParamCounts(spec: VitHeadSpec): { trainable: number; frozen: number } {
  const sam = [...samParamShapes(spec.sam)];
  const fresh = [...freshShapes(spec)];
  const trainable = shapeCount(sam.filter(([k]) => isLoadedTrainable(k))) +
    shapeCount(fresh.filter(([k]) => k.endsWith("mask_tokens.weight")));
  const frozen = shapeCount(sam.filter(([k]) => isEncoderKey(k))) +
    shapeCount(fresh.filter(([k]) => !k.endsWith("mask_tokens.weight")));
  return { trainable, frozen };
}

export class VitHead implements Segmenter {
  readonly method = "vit-head";
  readonly numClasses: number;
  readonly imageSize: number;
  readonly trainable: Map<string, tf.Variable>;

  /** Takes ownership of frozen (encoder, PE matrix, IoU parts) and trainable. */
  constructor(
    readonly spec: VitHeadSpec,
    private readonly frozen: Params,
    trainable: Map<string, tf.Variable>,
    private readonly limits: EncoderOptions = {},
  ) {
    this.numClasses = spec.numClasses;
    this.imageSize = spec.imageSize;
    this.trainable = trainable;
  }

  counts(): { trainable: number; frozen: number } {
    const pe = this.frozen.get(PE_KEY)?.size ?? 0; // a buffer, not a parameter
    return { trainable: sizeOf(this.trainable.values()), frozen: sizeOf(this.frozen.values()) - pe };
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.decode(x, this.encode(x)));
  }

  /** The frozen part: x [B, S, S, 3] -> SAM's image embedding [B, g, g, C] (see Segmenter.encode). */
  readonly encode = (x: tf.Tensor4D): tf.Tensor4D => {
    const s = this.imageSize, { sam } = this.spec, e = sam.image_size;
    checkInput("VitHead", x, s);
    return tf.tidy(() =>
      frozenImageEncoder(this.frozen, sam, s === e ? x : resizeBilinear(x, e, e), this.limits)
    );
  };

  /** The decoder, once per class, on the embedding emb [B, g, g, C] (see Segmenter.decode). */
  readonly decode = (_x: tf.Tensor4D, emb: tf.Tensor4D): tf.Tensor4D => {
    const s = this.imageSize, { sam } = this.spec;
    return tf.tidy(() => {
      const g = embeddingSize(sam), c = sam.out_chans;
      const p: Params = new Map([...this.frozen, ...this.trainable]);
      const iouTokens = p.get(`${MD}.iou_token.weight`)!; // [K, C]
      const maskTokens = p.get(`${MD}.mask_tokens.weight`)!; // [K * 2, C]
      const input = {
        imageEmbeddings: emb,
        imagePe: getDensePe(p, sam), // [1, g, g, C]
        sparse: tf.zeros([1, 0, c]) as tf.Tensor3D, // no prompts
        dense: tf.zeros([1, g, g, c]) as tf.Tensor4D, // and no no_mask_embed (the Hu code adds none)
      };
      const maps: tf.Tensor4D[] = [];
      for (let k = 0; k < this.numClasses; k++) {
        const own: Params = new Map(p);
        own.set(`${MD}.iou_token.weight`, tf.slice(iouTokens, [k, 0], [1, c]));
        own.set(
          `${MD}.mask_tokens.weight`,
          tf.slice(maskTokens, [k * TOKENS_PER_CLASS, 0], [TOKENS_PER_CLASS, c]),
        );
        maps.push(maskDecoder(own, sam, input, false).masks); // [B, 1, 4g, 4g]
      }
      const logits = tf.transpose(tf.concat(maps, 1), [0, 2, 3, 1]) as tf.Tensor4D; // [B, 4g, 4g, K]
      return logits.shape[1] === s ? logits : resizeBilinear(logits, s, s); // [B, S, S, K]
    });
  };

  merge(): void {}

  exportTrainable(): Promise<Map<string, HostTensor>> {
    return exportVariables(this.trainable);
  }

  importTrainable(tensors: ReadonlyMap<string, HostTensor>, file: string): void {
    importVariables(this.trainable, tensors, file, this.method);
  }

  dispose(): void {
    tf.dispose([...this.trainable.values(), ...this.frozen.values()]);
  }
}

/** Builds the ViT head: SAM's encoder and decoder weights (checkpoint or seeded random), fresh tokens. */
export async function createVitHead(o: VitHeadOptions): Promise<{ model: VitHead; base: BaseWeights }> {
  const spec = vitHeadSpec(o);
  const keepPe = !spec.randomPe;
  const { params, base } = await loadSamWeights(
    o,
    spec.sam,
    (k) => isEncoderKey(k) || isLoadedTrainable(k) || (keepPe && k === PE_KEY),
  );
  const rng = new Rng(o.seed).fork("model");
  const fresh = initParams(freshShapes(spec), rng.fork("tokens"));
  if (!keepPe) {
    // The Hu code's PositionEmbeddingRandom(128) never gets SAM's matrix: N(0, 1), fixed.
    const c = spec.sam.out_chans;
    fresh.set(PE_KEY, tf.tensor(rng.fork("pe").fillNormal(new Float32Array(c)), [2, c / 2]));
  }
  const frozen: Params = new Map();
  const trainable = new Map<string, tf.Variable>();
  for (const [k, t] of [...params, ...fresh]) {
    if (isLoadedTrainable(k) || k.endsWith("mask_tokens.weight")) {
      trainable.set(k, tf.variable(t, true));
      t.dispose();
    } else frozen.set(k, t);
  }
  return { model: new VitHead(spec, frozen, trainable, encoderLimits(o.maxBindingBytes ?? Infinity)), base };
}
