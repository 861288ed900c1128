/**
 * LoRaMedNet (Li & Rajpurkar): SAM or MedSAM's image encoder with LoRA on q and v of every block, frozen base
 * weights, and the Hu CNN head; the 224 input is resized to the encoder's size and the logits back to 224.
 * With rank 0 it is the plain "cnn-head" method (frozen encoder, head only).
 */
import { tf } from "../engine/tf.ts";
import type { HostTensor } from "../io/host_tensor.ts";
import { exportVariables, importVariables, type Layout, sizeOf } from "./trainable_io.ts";
import { type BaseWeights, ENCODER_SIZES, isEncoderKey, loadSamWeights } from "./sam_weights.ts";
import {
  cnnHead,
  type CnnHeadConfig,
  fromTorchLayout,
  type HeadInit,
  initCnnHead,
  torchShape,
  toTorchLayout,
} from "./heads/cnn_head.ts";
import { initLora, mergeLora, withLora } from "./lora.ts";
import { Rng } from "../engine/rng.ts";
import { encoderLimits, type EncoderOptions, frozenImageEncoder, imageEncoder } from "./sam/image_encoder.ts";
import { presetAtSize, type SamConfig } from "./sam/config.ts";
import type { Params } from "./sam/layers.ts";
import { resizeBilinear } from "./sam/resize.ts";
import { checkInput, type Segmenter } from "./segmenter.ts";

export type { BaseWeights };

export interface LoraMedNetSpec {
  method: "loramednet" | "cnn-head";
  /** The encoder's architecture; image_size is the side the encoder runs at (1024 for the paper). */
  sam: SamConfig;
  head: CnnHeadConfig;
  /** LoRA rank; 0 = no adapters (the cnn-head method). */
  rank: number;
  /** Side of the model's input and output grid (224 in the paper). */
  imageSize: number;
  /** Head initialisation ("torch" as the Hu code). */
  headInit: HeadInit;
}

export class LoraMedNet implements Segmenter {
  readonly method: string;
  readonly numClasses: number;
  readonly imageSize: number;
  readonly trainable: Map<string, tf.Variable>;
  private readonly lora: Map<string, tf.Variable>;
  private readonly head: Map<string, tf.Variable>;
  private encoderParams: Params;
  private merged: tf.Tensor[] | null = null;
  /** Set for cnn-head only (rank 0), whose encoder never trains: see Segmenter.encode. */
  readonly encode?: (x: tf.Tensor4D) => tf.Tensor4D;
  readonly decode?: (x: tf.Tensor4D, embedding: tf.Tensor4D) => tf.Tensor4D;

  /**
   * Takes ownership of base (the encoder's frozen weights, image_encoder.* keys); `limits` are the device's
   * (encoderLimits of the backend's binding limit), given by whoever chose the backend.
   */
  constructor(
    readonly spec: LoraMedNetSpec,
    private readonly base: Params,
    seed: number,
    private readonly limits: EncoderOptions = {},
  ) {
    this.method = spec.method;
    this.numClasses = spec.head.numClasses;
    this.imageSize = spec.imageSize;
    const rng = new Rng(seed).fork("model");
    this.lora = spec.rank > 0 ? initLora(spec.sam, spec.rank, rng.fork("lora")) : new Map();
    this.head = initCnnHead(spec.head, rng.fork("head"), spec.headInit);
    this.trainable = new Map([...this.lora, ...this.head]);
    this.encoderParams = withLora(base, this.lora);
    if (spec.rank === 0) {
      this.encode = (x) => this.encodeFrozen(x);
      this.decode = (_x, emb) => tf.tidy(() => this.headForward(emb));
    }
  }

  counts(): { trainable: number; frozen: number } {
    return { trainable: sizeOf(this.trainable.values()), frozen: sizeOf(this.base.values()) };
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    const s = this.imageSize, e = this.spec.sam.image_size;
    checkInput("LoraMedNet", x, s);
    return tf.tidy(() => {
      const xe = s === e ? x : resizeBilinear(x, e, e); // [B, E, E, 3]
      const encoder = this.lora.size ? imageEncoder : frozenImageEncoder;
      return this.headForward(encoder(this.encoderParams, this.spec.sam, xe, this.limits)); // [B, S, S, C]
    });
  }

  /** emb [B, E/p, E/p, out_chans] -> logits [B, S, S, C]. */
  private headForward(emb: tf.Tensor4D): tf.Tensor4D {
    const s = this.imageSize;
    const logits = cnnHead(this.head, this.spec.head, emb); // [B, 4E/p, 4E/p, C]
    return logits.shape[1] === s ? logits : resizeBilinear(logits, s, s); // [B, S, S, C]
  }

  /** The frozen encoder alone (cnn-head: rank 0); see Segmenter.encode. */
  private encodeFrozen(x: tf.Tensor4D): tf.Tensor4D {
    const s = this.imageSize, e = this.spec.sam.image_size;
    checkInput("LoraMedNet", x, s);
    return tf.tidy(() =>
      frozenImageEncoder(
        this.encoderParams,
        this.spec.sam,
        s === e ? x : resizeBilinear(x, e, e),
        this.limits,
      )
    );
  }

  merge(): void {
    if (this.merged || this.lora.size === 0) return;
    const { params, created } = mergeLora(this.base, this.lora, this.spec.sam.depth);
    this.encoderParams = params;
    this.merged = created;
  }

  /** The head's tensors are stored in PyTorch's layout; the adapters need no conversion. */
  private readonly layout: Layout = {
    diskShape: (name) => (this.head.has(name) ? torchShape(name, this.spec.head) : undefined),
    toDisk: (name, t) => (this.head.has(name) ? toTorchLayout(name, t, this.spec.head) : t),
    fromDisk: (name, t) => (this.head.has(name) ? fromTorchLayout(name, t, this.spec.head) : t),
  };

  exportTrainable(): Promise<Map<string, HostTensor>> {
    return exportVariables(this.trainable, this.layout);
  }

  importTrainable(tensors: ReadonlyMap<string, HostTensor>, file: string): void {
    importVariables(this.trainable, tensors, file, this.method, this.layout);
  }

  dispose(): void {
    tf.dispose([...this.trainable.values(), ...this.base.values(), ...(this.merged ?? [])]);
    this.merged = null;
  }
}

/**
 * Per-preset model sizes: the paper's (vit_b), and a small one that trains on a CPU in minutes (tiny: the tiny
 * SAM run at 128 px, 16x16 tokens, so its 64x64 logits resolve a heart on a 128 px grid, which a 64 px
 * encoder's 32x32 logits cannot; and a He-initialised head, since its narrow layers, from scratch on random base
 * features, barely learn in a short run under PyTorch's default init).
 */
export const LORAMEDNET_PRESETS: Record<
  "vit_b" | "tiny",
  { encoderSize: number; headTopChannel: number; headInit: HeadInit }
> = {
  vit_b: { encoderSize: ENCODER_SIZES.vit_b, headTopChannel: 64, headInit: "torch" },
  tiny: { encoderSize: ENCODER_SIZES.tiny, headTopChannel: 8, headInit: "he" },
};

export interface BuildOptions {
  method: "loramednet" | "cnn-head";
  preset: "vit_b" | "tiny";
  /** SAM/MedSAM checkpoint (.pth or .safetensors); null = seeded random base weights. */
  weights: string | null;
  loraRank: number;
  imageSize: number;
  encoderSize: number | null;
  headTopChannel: number | null;
  /** null or absent: the preset's (vit_b: "torch", the Hu code's; tiny: "he", see initCnnHead). */
  headInit?: HeadInit | null;
  numClasses: number;
  seed: number;
  /** The device's largest bindable tensor in bytes (engine/backend.ts; absent or Infinity off WebGPU). */
  maxBindingBytes?: number;
  /** Activation checkpointing of the encoder blocks that train (see EncoderOptions). */
  checkpointBlocks?: boolean;
}

/** The model spec a config implies (no weights touched). */
export function loraMedNetSpec(o: BuildOptions): LoraMedNetSpec {
  const p = LORAMEDNET_PRESETS[o.preset];
  const encoderSize = o.encoderSize ?? p.encoderSize;
  const sam = presetAtSize(o.preset, encoderSize);
  return {
    method: o.method,
    sam,
    head: {
      inChans: sam.out_chans,
      topChannel: o.headTopChannel ?? p.headTopChannel,
      depth: 4,
      numClasses: o.numClasses,
    },
    rank: o.method === "loramednet" ? o.loraRank : 0,
    imageSize: o.imageSize,
    headInit: o.headInit ?? p.headInit,
  };
}

/** Builds the model of a config: spec, frozen base weights, fresh adapters and head (seeded). */
export async function createLoraMedNet(o: BuildOptions): Promise<{ model: LoraMedNet; base: BaseWeights }> {
  const spec = loraMedNetSpec(o);
  const { params, base } = await loadSamWeights(o, spec.sam, isEncoderKey);
  return {
    model: new LoraMedNet(spec, params, o.seed, {
      ...encoderLimits(o.maxBindingBytes ?? Infinity),
      checkpointBlocks: o.checkpointBlocks,
    }),
    base,
  };
}
