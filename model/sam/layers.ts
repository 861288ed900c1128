/**
 * SAM's building blocks over torch-layout weights (Linear [out, in], Conv2d [out, in, kh, kw], ConvTranspose2d
 * [in, out, kh, kw]) on NHWC activations, shaped so that both passes stay on wasm's fast 2-D matmul path.
 */
import { tf } from "../../engine/tf.ts";

/** Model parameters keyed by the official state-dict names, in torch layouts. */
export type Params = Map<string, tf.Tensor>;

/** The parameter under key; a missing one is a programming error (checkpoints are checked at load). */
export function param<T extends tf.Tensor = tf.Tensor>(p: Params, key: string): T {
  const t = p.get(key);
  if (!t) throw new Error(`SAM parameter "${key}" is missing`);
  return t as T;
}

type T2 = tf.Tensor2D;
type Args = Array<tf.Tensor | tf.GradSaveFunc>;

/** Whether w is a weight being trained (a trainable tf.Variable), so its gradient must be built. */
export function isTrainable(w: tf.Tensor): boolean {
  return w instanceof tf.Variable && w.trainable;
}

/**
 * x [N, in] @ w^T for w [out, in]. Autodiff of a plain matMul would emit transposed-flag matmuls (10x slower
 * on wasm) and, for frozen weights, nothing cheaper; here dx = dy @ w needs no transpose at all and dw is
 * only built when w is a trainable tf.Variable. A frozen w is a constant: ask tf.grads for it and tfjs
 * reports it unreachable rather than returning a wrong gradient. Both branches save w for the backward pass (a
 * w computed inside the forward, like a reshaped filter, is freed by a tidy before backward runs); `derived`
 * also passes w's gradient on, for a w computed from a trainable weight.
 */
function matMulWt(x: T2, w: T2, derived = false): T2 {
  if (derived || isTrainable(w)) {
    const f = tf.customGrad((...args: Args) => {
      const [xi, wi, save] = args as [T2, T2, tf.GradSaveFunc];
      save([xi, wi]);
      return {
        value: tf.matMul(xi as T2, tf.transpose(wi as T2)),
        gradFunc: (dy: tf.Tensor, [xs, ws]: tf.Tensor[]) => [
          tf.matMul(dy as T2, ws as T2),
          tf.matMul(tf.transpose(dy as T2), xs as T2),
        ],
      };
    });
    return f(x, w) as T2;
  }
  const f = tf.customGrad((...args: Args) => {
    // Kept through save: w may be a temporary (a reshaped convolution filter) that a tidy frees before the
    // backward pass runs.
    (args[1] as tf.GradSaveFunc)([w]);
    return {
      value: tf.matMul(args[0] as T2, tf.transpose(w)),
      gradFunc: (dy: tf.Tensor, [ws]: tf.Tensor[]) => tf.matMul(dy as T2, ws as T2),
    };
  });
  return f(x) as T2;
}

/** torch.nn.Linear on the last axis: x [..., in], w [out, in], b [out] -> [..., out]. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor, derived = false): tf.Tensor {
  const [out, inp] = w.shape;
  const lead = x.shape.slice(0, -1);
  const y = matMulWt(tf.reshape(x, [-1, inp]), w as T2, derived); // [N, out]
  return tf.reshape(b ? tf.add(y, b) : y, [...lead, out]);
}

/** LayerNorm over the last axis (torch eps: 1e-6 in the encoder and LayerNorm2d, 1e-5 in the decoder). */
export function layerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), w), b);
}

/**
 * Exact (erf) GELU, torch's nn.GELU default (the tanh approximation differs by ~1e-3), with its own gradient:
 * autodiff of the formula keeps four copies of x's size for the backward pass and builds a dozen more at once
 * inside it (ViT-B's MLP at 1024 px: 50 MB each, the largest part of a training step's memory). This keeps x
 * alone and builds the derivative 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi) a few at a time.
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  const f = tf.customGrad((...args: Args) => {
    const [xi, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([xi]);
    return {
      value: tf.tidy(() => tf.mul(tf.mul(xi, 0.5), tf.add(tf.erf(tf.mul(xi, Math.SQRT1_2)), 1))),
      gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => tf.tidy(() => tf.mul(dy, geluSlope(xs))),
    };
  });
  return f(x);
}

/** gelu'(x) = 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi), built a few x-sized tensors at a time. */
export function geluSlope(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const cdf = tf.tidy(() => tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5));
    const pdf = tf.tidy(() => tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), 1 / Math.sqrt(2 * Math.PI)));
    const xPdf = tf.mul(x, pdf);
    pdf.dispose();
    return tf.add(cdf, xPdf);
  });
}

/**
 * Conv2d with stride = kernel and no padding (patch embedding, mask downscaling): the windows never
 * overlap, so it is a reshape and one matmul. x [B, H, W, Ci], w [Co, Ci, k, k] -> [B, H/k, W/k, Co];
 * like torch, trailing rows/columns that do not fill a window are dropped.
 */
export function patchConv(x: tf.Tensor4D, w: tf.Tensor, b?: tf.Tensor): tf.Tensor4D {
  const [co, ci, k] = w.shape;
  const [n, hIn, wIn] = x.shape;
  const h = Math.floor(hIn / k), wd = Math.floor(wIn / k);
  const xc = hIn === h * k && wIn === wd * k ? x : tf.slice(x, [0, 0, 0, 0], [n, h * k, wd * k, ci]);
  // [B*h, k, w, k*Ci] -> [B*h, w, k, k*Ci]: rank-4 transposes stay on wasm's fast path.
  const cols = tf.reshape(tf.transpose(tf.reshape(xc, [n * h, k, wd, k * ci]), [0, 2, 1, 3]), [
    n * h * wd,
    k * k * ci,
  ]);
  const wf = tf.reshape(tf.transpose(w, [0, 2, 3, 1]), [co, k * k * ci]); // [Co, k*k*Ci]
  return tf.reshape(linear(cols, wf, b, true), [n, h, wd, co]); // wf is a copy: see matMulWt
}

/** 1x1 Conv2d: x [B, H, W, Ci], w [Co, Ci, 1, 1] -> [B, H, W, Co]. */
export function conv1x1(x: tf.Tensor4D, w: tf.Tensor, b?: tf.Tensor): tf.Tensor4D {
  // A reshape shares w's data, so the constant branch is safe; a trainable w needs its gradient passed on.
  return linear(x, tf.reshape(w, [w.shape[0], w.shape[1]!]), b, isTrainable(w)) as tf.Tensor4D;
}

/** 3x3 Conv2d, stride 1, zero padding 1, no bias (the encoder neck): w [Co, Ci, 3, 3]. */
export function conv3x3(x: tf.Tensor4D, w: tf.Tensor): tf.Tensor4D {
  const filter = tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D; // [3, 3, Ci, Co]
  return tf.conv2d(x, filter, 1, "same");
}

/**
 * ConvTranspose2d with kernel 2, stride 2 (mask upscaling): outputs never overlap, so one matmul and a pixel
 * shuffle. x [B, H, W, Ci], w [Ci, Co, 2, 2], b [Co] -> [B, 2H, 2W, Co].
 */
export function convTranspose2x2(x: tf.Tensor4D, w: tf.Tensor, b: tf.Tensor): tf.Tensor4D {
  const [ci, co] = w.shape;
  const [n, h, wd] = x.shape;
  const wf = tf.reshape(tf.transpose(w, [2, 3, 1, 0]), [4 * co, ci]); // [(a, c, Co), Ci]
  // wf is computed here, not a parameter: `derived` keeps it for the backward pass and passes w's gradient on.
  const y = tf.reshape(linear(x, wf, undefined, true), [n * h, wd, 2, 2 * co]); // [B*H, W, a, (c, Co)]
  const shuffled = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [n, 2 * h, 2 * wd, co]); // [B, 2H, 2W, Co]
  return tf.add(shuffled, b);
}

/** The official 3-layer-style MLP (mask_decoder.MLP): Linear layers with ReLU between, none after the last. */
export function mlpRelu(p: Params, prefix: string, x: tf.Tensor, numLayers: number): tf.Tensor {
  let h = x;
  for (let i = 0; i < numLayers; i++) {
    h = linear(h, param(p, `${prefix}.layers.${i}.weight`), param(p, `${prefix}.layers.${i}.bias`));
    if (i < numLayers - 1) h = tf.relu(h);
  }
  return h;
}
