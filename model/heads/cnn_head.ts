/**
 * The Hu et al. CNN segmentation head (AutoSAM SegDecoderCNN): 1x1 convs, 3x3 conv blocks and 2x2 transposed
 * convs from the encoder's embedding to per-class logits; depth 4 with top channel 64 is the paper's head.
 */
import { tf } from "../../engine/tf.ts";
import { conv1x1, conv3x3, convTranspose2x2 } from "../conv_ops.ts";
import type { Rng } from "../../engine/rng.ts";
import type { HostTensor } from "../../io/host_tensor.ts";

export interface CnnHeadConfig {
  /** Channels of the encoder embedding (SAM neck: 256). */
  inChans: number;
  /** Width of the last block; the first is topChannel * 2^depth (64 -> 1024 for the paper's head). */
  topChannel: number;
  /** Number of blocks; blocks past the second upsample x2, so depth 4 gives 4x the embedding's size. */
  depth: number;
  numClasses: number;
}

/** The paper's head for SAM ViT-B features: 20,686,340 parameters with 4 classes. */
export const CNN_HEAD_VIT_B: CnnHeadConfig = { inChans: 256, topChannel: 64, depth: 4, numClasses: 4 };

/** One layer: kind decides the in-memory layout (see storage notes in toTorchLayout). */
interface LayerSpec {
  name: string;
  kind: "conv1" | "conv3" | "convT";
  cin: number;
  cout: number;
  relu: boolean;
}

/** The layer list in forward order, named as the PyTorch module's state dict (under the prefix "cnn_head."). */
export function cnnHeadLayers(cfg: CnnHeadConfig): LayerSpec[] {
  const { topChannel: top, depth: d } = cfg;
  const layers: LayerSpec[] = [];
  const add = (name: string, kind: LayerSpec["kind"], cin: number, cout: number, relu: boolean) =>
    layers.push({ name: `cnn_head.${name}`, kind, cin, cout, relu });
  const w0 = top * 2 ** d;
  add("input_block.0", "conv1", cfg.inChans, w0, true);
  add("input_block.2", "conv1", w0, w0, true);
  for (let i = 0; i < d; i++) {
    const c = top * 2 ** (d - i);
    if (d > 2 && i < 2) {
      // The first two blocks of a deep head keep the resolution and halve the width.
      add(`blocks.${i}.0`, "conv3", c, c, true);
      add(`blocks.${i}.2`, "conv3", c, c / 2, true);
    } else {
      add(`blocks.${i}.0`, "conv3", c, c, true);
      add(`blocks.${i}.2`, "conv3", c, c, true);
      add(`blocks.${i}.4`, "convT", c, c / 2, false);
    }
  }
  add("final.0", "conv3", top, top, false);
  add("final.1", "conv1", top, cfg.numClasses, false);
  return layers;
}

/** Output size over input size: x2 per transposed conv (4 for depth 4). */
export function cnnHeadScale(cfg: CnnHeadConfig): number {
  return 2 ** cnnHeadLayers(cfg).filter((l) => l.kind === "convT").length;
}

/** In-memory shape of a layer's weight: conv3 [3,3,Ci,Co], conv1 [Ci,Co], convT [Ci,2,2,Co]. */
function weightShape(l: LayerSpec): number[] {
  if (l.kind === "conv3") return [3, 3, l.cin, l.cout];
  if (l.kind === "conv1") return [l.cin, l.cout];
  return [l.cin, 2, 2, l.cout];
}

/** Parameter count (weights and biases), e.g. 20,686,340 for CNN_HEAD_VIT_B. */
export function cnnHeadParamCount(cfg: CnnHeadConfig): number {
  return cnnHeadLayers(cfg).reduce((n, l) => n + weightShape(l).reduce((a, b) => a * b, 1) + l.cout, 0);
}

/** "torch": PyTorch's default (as the Hu code); "he": Kaiming-normal for ReLU, zero biases. */
export type HeadInit = "torch" | "he";

/**
 * Fresh head variables. "torch" is PyTorch's default (kaiming-uniform a=sqrt(5) => U(+-1/sqrt(fan_in)) for
 * weight and bias), fan_in taken as torch does: Ci*k*k for convs, Co*k*k for transposed convs; it shrinks
 * the signal ~2.5x per layer, so a fresh head barely sees its input and early training is slow. "he" keeps
 * the signal's scale through the ReLUs (std sqrt(2/fan_in), gain 1 where no ReLU follows; fan_in Ci*k*k,
 * and Ci for the 2x2 transposed convs, whose windows do not overlap).
 */
export function initCnnHead(
  cfg: CnnHeadConfig,
  rng: Rng,
  init: HeadInit = "torch",
): Map<string, tf.Variable> {
  const vars = new Map<string, tf.Variable>();
  for (const l of cnnHeadLayers(cfg)) {
    const shape = weightShape(l);
    const n = shape.reduce((a, b) => a * b, 1);
    let weight: Float32Array, bias: Float32Array;
    if (init === "he") {
      const fanIn = l.kind === "conv3" ? l.cin * 9 : l.cin;
      weight = rng.fillNormal(new Float32Array(n), 0, Math.sqrt((l.relu ? 2 : 1) / fanIn));
      bias = new Float32Array(l.cout);
    } else {
      const fanIn = l.kind === "conv3" ? l.cin * 9 : l.kind === "conv1" ? l.cin : l.cout * 4;
      const bound = 1 / Math.sqrt(fanIn);
      const uniform = (k: number) => Float32Array.from({ length: k }, () => rng.uniform(-bound, bound));
      weight = uniform(n);
      bias = uniform(l.cout);
    }
    // tidy frees the initial tensors that tf.variable copies from.
    vars.set(`${l.name}.weight`, tf.tidy(() => tf.variable(tf.tensor(weight, shape), true)));
    vars.set(`${l.name}.bias`, tf.tidy(() => tf.variable(tf.tensor1d(bias), true)));
  }
  return vars;
}

/** Head forward: x [B, h, w, inChans] -> logits [B, h*s, w*s, numClasses] with s = cnnHeadScale(cfg). */
export function cnnHead(
  vars: ReadonlyMap<string, tf.Tensor>,
  cfg: CnnHeadConfig,
  x: tf.Tensor4D,
): tf.Tensor4D {
  return tf.tidy(() => {
    let h = x;
    for (const l of cnnHeadLayers(cfg)) {
      const w = vars.get(`${l.name}.weight`)!;
      const b = vars.get(`${l.name}.bias`)! as tf.Tensor1D;
      if (l.kind === "conv1") h = conv1x1(h, w as tf.Tensor2D, b);
      else if (l.kind === "conv3") h = conv3x3(h, w as tf.Tensor4D, b);
      else h = convTranspose2x2(h, w as tf.Tensor4D, b);
      if (l.relu) h = tf.relu(h);
    }
    return h;
  });
}

/** The PyTorch shape of a head weight (undefined for biases, whose layout is the same everywhere). */
export function torchShape(name: string, cfg: CnnHeadConfig): number[] | undefined {
  const l = cnnHeadLayers(cfg).find((s) => name === `${s.name}.weight`);
  if (!l) return undefined;
  return l.kind === "conv1"
    ? [l.cout, l.cin, 1, 1]
    : l.kind === "conv3"
    ? [l.cout, l.cin, 3, 3]
    : [l.cin, l.cout, 2, 2];
}

/** Visits every element of a head weight as (in-memory index, PyTorch index). */
function forEachWeightIndex(l: LayerSpec, visit: (ours: number, torch: number) => void): void {
  const { cin, cout } = l;
  if (l.kind === "conv1") {
    for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) visit(i * cout + o, o * cin + i);
  } else if (l.kind === "conv3") {
    for (let k = 0; k < 9; k++) {
      for (let i = 0; i < cin; i++) {
        for (let o = 0; o < cout; o++) visit((k * cin + i) * cout + o, (o * cin + i) * 9 + k);
      }
    }
  } else {
    for (let i = 0; i < cin; i++) {
      for (let k = 0; k < 4; k++) {
        for (let o = 0; o < cout; o++) visit((i * 4 + k) * cout + o, (i * cout + o) * 4 + k);
      }
    }
  }
}

/**
 * A head weight in PyTorch's layout, so trainable.safetensors loads into the original module: Conv2d
 * [Co, Ci, kh, kw] from [3,3,Ci,Co] or [Ci,Co]; ConvTranspose2d [Ci, Co, 2, 2] from [Ci,2,2,Co].
 */
export function toTorchLayout(name: string, t: HostTensor, cfg: CnnHeadConfig): HostTensor {
  const l = cnnHeadLayers(cfg).find((s) => name === `${s.name}.weight`);
  if (!l) return t;
  const src = t.data as Float32Array;
  const out = new Float32Array(src.length);
  forEachWeightIndex(l, (ours, torch) => out[torch] = src[ours]);
  return { dtype: "float32", shape: torchShape(name, cfg)!, data: out };
}

/** Inverse of toTorchLayout: a PyTorch-layout head weight back to the in-memory layout. */
export function fromTorchLayout(name: string, t: HostTensor, cfg: CnnHeadConfig): HostTensor {
  const l = cnnHeadLayers(cfg).find((s) => name === `${s.name}.weight`);
  if (!l) return t;
  const src = t.data as Float32Array;
  const out = new Float32Array(src.length);
  forEachWeightIndex(l, (ours, torch) => out[ours] = src[torch]);
  return { dtype: "float32", shape: weightShape(l), data: out };
}
