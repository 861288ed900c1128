/**
 * The g-network method (Shaharabany et al.'s AutoSAM with our multi-class extension, docs/methods.md 2.3
 * and decision 6): a HarDNet-85 + decoder CNN reads the image and writes SAM's dense prompt embedding, one per
 * class; SAM's image encoder, positional encoding and mask decoder stay frozen and run promptless.
 */
import { tf } from "../engine/tf.ts";
import { Rng } from "../engine/rng.ts";
import type { HostTensor } from "../io/host_tensor.ts";
import { sha256File } from "./checkpoint.ts";
import {
  type ConvBnVars,
  disposeConvBn,
  exportConvBn,
  importConvBn,
  initConvBn,
  type NetDefs,
} from "./heads/conv_bn.ts";
import { gnetDecoder } from "./heads/gnet_decoder.ts";
import { hardnet, loadHardnetStateDict } from "./heads/hardnet.ts";
import { sigmoidBceDiceLoss } from "./losses.ts";
import { embeddingSize } from "./sam/config.ts";
import { encoderLimits, type EncoderOptions, frozenImageEncoder } from "./sam/image_encoder.ts";
import type { Params } from "./sam/layers.ts";
import { maskDecoder } from "./sam/mask_decoder.ts";
import { getDensePe } from "./sam/prompt_encoder.ts";
import { resizeBilinear } from "./sam/resize.ts";
import { type BaseWeights, loadSamWeights } from "./sam_weights.ts";
import { checkInput, type Segmenter } from "./segmenter.ts";
import {
  BACKBONE,
  type GNetBuildOptions,
  gnetDefs,
  type GNetSpec,
  gnetSpec,
  isFrozenPart,
} from "./gnet_spec.ts";

export {
  GNET_PRESETS,
  type GNetBuildOptions,
  gnetParamCounts,
  type GNetSpec,
  gnetSpec,
  RANDOM_SAM_LOGIT_GAIN,
} from "./gnet_spec.ts";

/** Sum of element counts. */
const sizeOf = (ts: Iterable<tf.Tensor>) => [...ts].reduce((n, t) => n + t.size, 0);

export class GNet implements Segmenter {
  readonly method = "gnet";
  readonly numClasses: number;
  readonly imageSize: number;
  readonly trainable: Map<string, tf.Variable>;
  readonly loss = sigmoidBceDiceLoss;
  private readonly net: ConvBnVars;
  private readonly defs: NetDefs;
  private readonly densePe: tf.Tensor4D;

  /**
   * Takes ownership of sam (the frozen parts, official names); `limits` are the device's (encoderLimits of the
   * backend's binding limit), given by whoever chose the backend. The g-network starts at PyTorch's default
   * initialisation, seeded.
   */
  constructor(
    readonly spec: GNetSpec,
    private readonly sam: Params,
    seed: number,
    private readonly limits: EncoderOptions = {},
  ) {
    this.numClasses = spec.numClasses;
    this.imageSize = spec.imageSize;
    this.defs = gnetDefs(spec);
    this.net = initConvBn(this.defs, new Rng(seed).fork("model").fork("gnet"));
    this.trainable = this.net.trainable;
    this.densePe = getDensePe(sam, spec.sam);
  }

  counts(): { trainable: number; frozen: number } {
    return { trainable: sizeOf(this.trainable.values()), frozen: sizeOf(this.sam.values()) };
  }

  /**
   * The g-network alone, as the original ModelEmb: xg [B, G, G, 3] (G = gnetSize) -> tanh dense embeddings
   * [B, g, g, K*C] on SAM's grid (resized with align_corners=True), K = numClasses - 1, C = SAM's width.
   */
  gnetEmbeddings(xg: tf.Tensor4D, training = false): tf.Tensor4D {
    return tf.tidy(() => {
      const features = hardnet(this.net, this.spec.backbone, xg, training, BACKBONE);
      const d = gnetDecoder(this.net, this.spec.decoder, features, training); // [B, G/4, G/4, K*C]
      const g = embeddingSize(this.spec.sam);
      return d.shape[1] === g && d.shape[2] === g ? d : resizeBilinear(d, g, g, true);
    });
  }

  /**
   * x [B, S, S, 3] -> logits [B, S, S, numClasses]: background 0, class c the frozen decoder's mask logit
   * under class c's dense embedding. Since sigmoid(l) > 0.5 exactly when l > 0, argmax (first index on ties)
   * picks the class with the highest probability when that exceeds 0.5, else background: decision 6's rule.
   */
  forward(x: tf.Tensor4D, training = false): tf.Tensor4D {
    return tf.tidy(() => this.decode(x, this.encode(x), training));
  }

  /** The frozen part: x [B, S, S, 3] -> SAM's image embedding [B, g, g, C] (see Segmenter.encode). */
  readonly encode = (x: tf.Tensor4D): tf.Tensor4D => {
    checkInput("GNet", x, this.spec.imageSize);
    const s = this.spec.imageSize, e = this.spec.sam.image_size;
    return tf.tidy(() =>
      frozenImageEncoder(this.sam, this.spec.sam, s === e ? x : resizeBilinear(x, e, e), this.limits)
    );
  };

  /** The rest of forward, from the image and its embedding emb [B, g, g, C] (see Segmenter.decode). */
  readonly decode = (x: tf.Tensor4D, emb: tf.Tensor4D, training = false): tf.Tensor4D => {
    const { imageSize: s, gnetSize, sam } = this.spec;
    const e = sam.image_size, k = this.numClasses - 1;
    checkInput("GNet", x, s);
    return tf.tidy(() => {
      const b = x.shape[0];
      const xe = s === e ? x : resizeBilinear(x, e, e); // [B, E, E, 3]
      const [, g, , c] = emb.shape;
      const dense = this.gnetEmbeddings(resizeBilinear(xe, gnetSize, gnetSize, true), training); // [B, g, g, K*C]
      // One decoder run per (image, class), batched: rank-4 reshapes only (wasm's fast transposes).
      const perClass = tf.reshape(
        tf.transpose(tf.reshape(dense, [b, g * g, k, c]), [0, 2, 1, 3]),
        [b * k, g, g, c],
      ) as tf.Tensor4D; // [B*K, g, g, C]
      const embK = tf.reshape(tf.tile(tf.reshape(emb, [b, 1, g * g * c]), [1, k, 1]), [b * k, g, g, c]);
      const { masks } = maskDecoder(
        this.sam,
        sam,
        {
          imageEmbeddings: embK as tf.Tensor4D,
          imagePe: this.densePe,
          sparse: tf.zeros([1, 0, c]) as tf.Tensor3D, // no prompt, broadcast over the batch
          dense: perClass,
        },
        false,
      ); // [B*K, 1, 4g, 4g]
      const [, , mh, mw] = masks.shape;
      const maps = tf.reshape(tf.transpose(tf.reshape(masks, [b, k, mh * mw]), [0, 2, 1]), [b, mh, mw, k]);
      const scaled = this.spec.logitGain === 1 ? maps : tf.mul(maps, this.spec.logitGain);
      const logits = resizeBilinear(scaled as tf.Tensor4D, s, s); // [B, S, S, K]
      return tf.concat([tf.zeros([b, s, s, 1]), logits], 3) as tf.Tensor4D; // [B, S, S, K+1]
    });
  };

  /** Nothing to merge: inference runs the same weights. */
  merge(): void {}

  /** Weights and BatchNorm running statistics in PyTorch's names and layouts (ModelEmb's state dict). */
  exportTrainable(): Promise<Map<string, HostTensor>> {
    return exportConvBn(this.net, this.defs);
  }

  importTrainable(tensors: ReadonlyMap<string, HostTensor>, file: string): void {
    importConvBn(this.net, this.defs, tensors, file);
  }

  /** Loads a PyTorch HarDNet ImageNet state dict into the backbone (file key base.N... = backbone.base.N...). */
  loadBackbone(path: string): Promise<void> {
    return loadHardnetStateDict(this.net, this.spec.backbone, path, BACKBONE);
  }

  dispose(): void {
    disposeConvBn(this.net);
    tf.dispose([...this.sam.values(), this.densePe]);
  }
}

/**
 * Builds the model of a config: the frozen SAM parts (checkpoint or seeded random), a seeded g-network, and
 * the backbone's ImageNet weights when given. Returns what a run records about both weight sources.
 */
export async function createGNet(
  o: GNetBuildOptions,
): Promise<{ model: GNet; base: BaseWeights; backbone: BaseWeights }> {
  const spec = gnetSpec(o);
  const { params, base } = await loadSamWeights(o, spec.sam, isFrozenPart);
  const model = new GNet(spec, params, o.seed, encoderLimits(o.maxBindingBytes ?? Infinity));
  if (!o.backboneWeights) return { model, base, backbone: { path: null, sha256: null, source: "random" } };
  try {
    await model.loadBackbone(o.backboneWeights);
    const sha256 = await sha256File(o.backboneWeights);
    return { model, base, backbone: { path: o.backboneWeights, sha256, source: "checkpoint" } };
  } catch (err) {
    model.dispose();
    throw err;
  }
}
