/**
 * Convolution + BatchNorm networks over named variables (the g-network's vocabulary): PyTorch-named
 * parameters and running statistics, PyTorch's default initialisation, BatchNorm in training and inference
 * mode, and conversion to and from the layouts of a PyTorch state dict.
 */
import { tf } from "../../engine/tf.ts";
import type { Rng } from "../../engine/rng.ts";
import { type HostTensor, toFloat32 } from "../../io/host_tensor.ts";
import { CheckpointError, checkStrict } from "../checkpoint.ts";
import { conv1x1, conv3x3, conv3x3Stride2 } from "../conv_ops.ts";

/** A Conv2d with padding k // 2, named as in the PyTorch module ("base.0.conv" owns base.0.conv.weight). */
export interface ConvDef {
  name: string;
  k: 1 | 3;
  stride: 1 | 2;
  cin: number;
  cout: number;
  bias: boolean;
}

/** A BatchNorm2d over c channels (eps 1e-5, momentum 0.1, PyTorch's defaults). */
export interface NormDef {
  name: string;
  c: number;
}

export interface NetDefs {
  convs: ConvDef[];
  norms: NormDef[];
}

/** Learned parameters, and BatchNorm running statistics (state that training-mode forwards update). */
export interface ConvBnVars {
  trainable: Map<string, tf.Variable>;
  stats: Map<string, tf.Variable>;
}

const BN_EPS = 1e-5;
const BN_MOMENTUM = 0.1;

/** In-memory weight shape: [3, 3, Ci, Co] (tfjs's conv filter) or [Ci, Co] for 1x1 (a matmul). */
function ourShape(d: ConvDef): number[] {
  return d.k === 3 ? [3, 3, d.cin, d.cout] : [d.cin, d.cout];
}

/** Every state-dict key of the network with its PyTorch shape (running statistics included). */
export function torchShapes(defs: NetDefs): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const d of defs.convs) {
    m.set(`${d.name}.weight`, [d.cout, d.cin, d.k, d.k]);
    if (d.bias) m.set(`${d.name}.bias`, [d.cout]);
  }
  for (const n of defs.norms) {
    for (const s of ["weight", "bias", "running_mean", "running_var"]) m.set(`${n.name}.${s}`, [n.c]);
  }
  return m;
}

/** Learned parameters (conv weights and biases, BatchNorm weight and bias), without materialising any. */
export function paramCount(defs: NetDefs): number {
  const convs = defs.convs.reduce((n, d) => n + d.cin * d.cout * d.k * d.k + (d.bias ? d.cout : 0), 0);
  return convs + defs.norms.reduce((n, d) => n + 2 * d.c, 0);
}

/** Whether a state-dict key holds BatchNorm running statistics rather than a learned parameter. */
const isStat = (key: string) => /\.running_(mean|var)$/.test(key);

/**
 * Fresh variables with PyTorch's defaults: conv weights and biases U(+-1/sqrt(fan_in)) (kaiming_uniform with
 * a = sqrt(5)), fan_in = Ci*k*k; BatchNorm weight 1, bias 0, running mean 0, running variance 1.
 */
export function initConvBn(defs: NetDefs, rng: Rng): ConvBnVars {
  const trainable = new Map<string, tf.Variable>(), stats = new Map<string, tf.Variable>();
  // tidy frees the initial tensors that tf.variable copies from.
  const add = (m: Map<string, tf.Variable>, key: string, data: Float32Array, shape: number[]) =>
    m.set(key, tf.tidy(() => tf.variable(tf.tensor(data, shape, "float32"), m === trainable)));
  for (const d of defs.convs) {
    const bound = 1 / Math.sqrt(d.cin * d.k * d.k);
    const uniform = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(-bound, bound));
    add(trainable, `${d.name}.weight`, uniform(d.cin * d.cout * d.k * d.k), ourShape(d));
    if (d.bias) add(trainable, `${d.name}.bias`, uniform(d.cout), [d.cout]);
  }
  for (const n of defs.norms) {
    add(trainable, `${n.name}.weight`, new Float32Array(n.c).fill(1), [n.c]);
    add(trainable, `${n.name}.bias`, new Float32Array(n.c), [n.c]);
    add(stats, `${n.name}.running_mean`, new Float32Array(n.c), [n.c]);
    add(stats, `${n.name}.running_var`, new Float32Array(n.c).fill(1), [n.c]);
  }
  return { trainable, stats };
}

/** One convolution of defs: x [B, H, W, Ci] -> [B, H/stride, W/stride, Co]. */
export function conv(vars: ConvBnVars, d: ConvDef, x: tf.Tensor4D): tf.Tensor4D {
  const w = vars.trainable.get(`${d.name}.weight`)!;
  const b = d.bias ? vars.trainable.get(`${d.name}.bias`) as tf.Tensor1D : undefined;
  if (d.k === 1) return conv1x1(x, w as tf.Tensor2D, b);
  return d.stride === 2 ? conv3x3Stride2(x, w as tf.Tensor4D, b) : conv3x3(x, w as tf.Tensor4D, b);
}

/**
 * BatchNorm2d on NHWC x. Training: normalise by the batch's mean and biased variance (gradients flow
 * through both, as in PyTorch) and move the running statistics towards the batch's, the variance unbiased,
 * by momentum 0.1. Inference: normalise by the running statistics.
 */
export function batchNorm(vars: ConvBnVars, name: string, x: tf.Tensor4D, training: boolean): tf.Tensor4D {
  const gamma = vars.trainable.get(`${name}.weight`)!, beta = vars.trainable.get(`${name}.bias`)!;
  const rm = vars.stats.get(`${name}.running_mean`)!, rv = vars.stats.get(`${name}.running_var`)!;
  return tf.tidy(() => {
    let mean: tf.Tensor = rm, variance: tf.Tensor = rv;
    if (training) {
      ({ mean, variance } = tf.moments(x, [0, 1, 2])); // [C] each
      const n = x.size / x.shape[3];
      if (n < 2) throw new Error(`BatchNorm ${name}: training needs more than one value per channel`);
      // Running statistics are not trainable variables, so no gradient reaches them through these.
      rm.assign(tf.add(tf.mul(rm, 1 - BN_MOMENTUM), tf.mul(mean, BN_MOMENTUM)));
      rv.assign(tf.add(tf.mul(rv, 1 - BN_MOMENTUM), tf.mul(variance, BN_MOMENTUM * n / (n - 1))));
    }
    const scale = tf.mul(gamma, tf.rsqrt(tf.add(variance, BN_EPS))); // [C]
    return tf.add(tf.mul(x, scale), tf.sub(beta, tf.mul(mean, scale))) as tf.Tensor4D;
  });
}

/** The conv of a weight key, if the key is a conv weight (its layout differs from PyTorch's). */
function convOf(defs: NetDefs, key: string): ConvDef | undefined {
  return defs.convs.find((d) => key === `${d.name}.weight`);
}

/** A variable's value in PyTorch's layout: conv weights [Co, Ci, k, k]; everything else as is. */
function toTorch(v: tf.Variable, d: ConvDef | undefined): tf.Tensor {
  if (!d) return tf.clone(v);
  const t = d.k === 3 ? tf.transpose(v, [3, 2, 0, 1]) : tf.transpose(v);
  return tf.reshape(t, [d.cout, d.cin, d.k, d.k]);
}

/** Trainable parameters and running statistics as host tensors in PyTorch's names and layouts. */
export async function exportConvBn(vars: ConvBnVars, defs: NetDefs): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (const [key, v] of [...vars.trainable, ...vars.stats]) {
    const t = tf.tidy(() => toTorch(v, convOf(defs, key)));
    try {
      out.set(key, { dtype: "float32", shape: t.shape, data: (await t.data()) as Float32Array });
    } finally {
      t.dispose();
    }
  }
  return out;
}

export interface ImportOptions {
  /** The file's key for one of ours (default: the same). */
  fileKey?: (key: string) => string;
  /** File keys that may be absent or present without being read (e.g. num_batches_tracked). */
  ignore?: (fileKey: string) => boolean;
  /** Accept any floating dtype (a third-party checkpoint) instead of float32 only (our own files). */
  anyFloat?: boolean;
}

/**
 * Assigns every trainable parameter and running statistic from PyTorch-layout tensors, after a strict check
 * (every key present, no unexpected one, every shape right, floating dtypes): otherwise one CheckpointError
 * naming file, and no variable changed.
 */
export function importConvBn(
  vars: ConvBnVars,
  defs: NetDefs,
  tensors: ReadonlyMap<string, HostTensor>,
  file: string,
  opts: ImportOptions = {},
): void {
  const fileKey = opts.fileKey ?? ((k: string) => k);
  const ours = torchShapes(defs);
  const expected = new Map([...ours].map(([k, s]) => [fileKey(k), s]));
  checkStrict(expected, tensors as Map<string, HostTensor>, file, { ignore: opts.ignore });
  const floats = opts.anyFloat ? ["float32", "float16", "bfloat16", "float64"] : ["float32"];
  for (const key of ours.keys()) {
    const h = tensors.get(fileKey(key))!;
    if (!floats.includes(h.dtype)) {
      throw new CheckpointError(`${file}: ${fileKey(key)} is ${h.dtype}, expected ${floats.join(" or ")}`);
    }
  }
  for (const [key, shape] of ours) {
    const v = (isStat(key) ? vars.stats : vars.trainable).get(key)!;
    const d = convOf(defs, key);
    const data = toFloat32(tensors.get(fileKey(key))!);
    tf.tidy(() => {
      const t = tf.tensor(data, shape, "float32");
      if (!d) return v.assign(t);
      const flat = tf.reshape(t, [d.cout, d.cin, d.k * d.k]);
      v.assign(
        d.k === 3
          ? tf.reshape(tf.transpose(flat, [2, 1, 0]), ourShape(d))
          : tf.transpose(tf.squeeze(flat, [2])),
      );
    });
  }
}

/** Disposes every variable. */
export function disposeConvBn(vars: ConvBnVars): void {
  tf.dispose([...vars.trainable.values(), ...vars.stats.values()]);
}
