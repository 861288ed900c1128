/**
 * Convolutions whose gradients every backend can run fast: tfjs-wasm lacks Conv2DBackpropFilter and runs
 * transposed-flag matmuls (what autodiff emits) 10-40x slower, so the gradients here use plain matmuls on
 * explicitly transposed operands, and 1x1 / 2x2-stride-2 transposed convolutions are matmuls outright.
 * Biases are optional (the g-network's convolutions have none before a BatchNorm).
 */
import { tf } from "../engine/tf.ts";

type T2 = tf.Tensor2D;
type T4 = tf.Tensor4D;
type Args = Array<tf.Tensor | tf.GradSaveFunc>;

const matMulFn = tf.customGrad<tf.Tensor>((...args: Args) => {
  const [x, w, save] = args as [T2, T2, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [xs, ws] = saved as T2[];
        const d = dy as T2;
        return [tf.matMul(d, tf.transpose(ws)), tf.matMul(tf.transpose(xs), d)];
      }),
  };
});

/** x [M, K] @ w [K, N] -> [M, N]; the backward pass transposes explicitly instead of using matmul flags. */
export function matMulGrad(x: T2, w: T2): T2 {
  return matMulFn(x, w) as T2;
}

const conv3x3Fn = tf.customGrad<tf.Tensor>((...args: Args) => {
  const [x, w, save] = args as [T4, T4, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.conv2d(x, w, 1, "same"),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [xs, ws] = saved as T4[];
        const d = dy as T4;
        const [b, h, wd, ci] = xs.shape;
        const co = d.shape[3];
        // Input gradient: correlate dy with the spatially flipped, in/out-swapped filter.
        const wFlip = tf.transpose(tf.reverse(ws, [0, 1]), [0, 1, 3, 2]); // [3, 3, Co, Ci]
        const dx = tf.conv2d(d, wFlip as T4, 1, "same"); // [B, H, W, Ci]
        const xp = tf.pad(xs, [[0, 0], [1, 1], [1, 1], [0, 0]]); // [B, H+2, W+2, Ci]
        const dy2 = tf.reshape(d, [b * h * wd, co]) as T2; // [BHW, Co]
        const taps: tf.Tensor2D[] = [];
        for (let kh = 0; kh < 3; kh++) {
          for (let kw = 0; kw < 3; kw++) {
            const col = tf.reshape(tf.slice(xp, [0, kh, kw, 0], [b, h, wd, ci]), [b * h * wd, ci]);
            taps.push(tf.matMul(tf.transpose(col) as T2, dy2)); // [Ci, Co]
          }
        }
        return [dx, tf.reshape(tf.stack(taps), [3, 3, ci, co])];
      }),
  };
});

/**
 * 3x3, stride 1, zero-padding 1 convolution (NHWC, filter [3, 3, Ci, Co]). Forward and input gradient are
 * ordinary convolutions (the fast XNNPACK path on wasm); the filter gradient is nine [Ci, BHW] x [BHW, Co]
 * matmuls, one per tap, so it needs no Conv2DBackpropFilter and never holds a 9x im2col buffer.
 */
export function conv3x3(x: T4, w: T4, b?: tf.Tensor1D): T4 {
  const y = conv3x3Fn(x, w) as T4;
  return b ? tf.add(y, b) : y;
}

/**
 * Input rows kh, kh + 2, ... (ho of them) and columns kw, kw + 2, ... (wo) of xp [B, Hp, Wp, C] (Hp, Wp
 * even), as [B*ho*wo, C]: one tap's im2col column of a stride-2 convolution. The stride is taken by
 * reshaping into (pair, phase) axes, keeping every tensor at rank 4 (wasm's fast paths).
 */
function strideTwoTap(xp: T4, kh: number, kw: number, ho: number, wo: number): T2 {
  const [b, hp, wp, c] = xp.shape;
  const rows = tf.slice(tf.reshape(xp, [b, hp / 2, 2, wp * c]), [0, kh >> 1, kh & 1, 0], [b, ho, 1, wp * c]);
  const cols = tf.slice(tf.reshape(rows, [b * ho, wp / 2, 2, c]), [0, kw >> 1, kw & 1, 0], [
    b * ho,
    wo,
    1,
    c,
  ]);
  return tf.reshape(cols, [b * ho * wo, c]) as T2; // [B*ho*wo, C]
}

const conv3x3s2Fn = tf.customGrad<tf.Tensor>((...args: Args) => {
  const [x, w, save] = args as [T4, T4, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.conv2d(x, w, 2, 1),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [xs, ws] = saved as T4[];
        const d = dy as T4;
        const [b, h, wd, ci] = xs.shape;
        const [, ho, wo, co] = d.shape;
        // The input gradient is a transposed convolution (wasm has Conv2DBackpropInput).
        const dx = tf.conv2dTranspose(d, ws, [b, h, wd, ci], 2, 1); // [B, H, W, Ci]
        // Pad 1 on top/left as the forward did, and to an even size on bottom/right for strideTwoTap.
        const xp = tf.pad(xs, [[0, 0], [1, 1 + (h % 2)], [1, 1 + (wd % 2)], [0, 0]]) as T4;
        const dy2 = tf.reshape(d, [b * ho * wo, co]) as T2; // [B*ho*wo, Co]
        const taps: tf.Tensor2D[] = [];
        for (let kh = 0; kh < 3; kh++) {
          for (let kw = 0; kw < 3; kw++) {
            taps.push(tf.matMul(tf.transpose(strideTwoTap(xp, kh, kw, ho, wo)) as T2, dy2)); // [Ci, Co]
          }
        }
        return [dx, tf.reshape(tf.stack(taps), [3, 3, ci, co])];
      }),
  };
});

/**
 * 3x3 convolution with stride 2 and zero padding 1 (torch's Conv2d(k=3, s=2, p=1): [B, H, W, Ci] ->
 * [B, ceil(H/2), ceil(W/2), Co]), filter [3, 3, Ci, Co]; the filter gradient is nine strided im2col
 * matmuls, as conv3x3's.
 */
export function conv3x3Stride2(x: T4, w: T4, b?: tf.Tensor1D): T4 {
  const y = conv3x3s2Fn(x, w) as T4;
  return b ? tf.add(y, b) : y;
}

/** 1x1 convolution as a matmul: x [B, H, W, Ci], w [Ci, Co], b [Co] -> [B, H, W, Co]. */
export function conv1x1(x: T4, w: T2, b?: tf.Tensor1D): T4 {
  const [n, h, wd, ci] = x.shape;
  const y = matMulGrad(tf.reshape(x, [n * h * wd, ci]), w); // [BHW, Co]
  return tf.reshape(b ? tf.add(y, b) : y, [n, h, wd, w.shape[1]]);
}

/**
 * ConvTranspose2d with kernel 2 and stride 2 (windows never overlap, so one matmul and a pixel shuffle):
 * x [B, H, W, Ci], w [Ci, 2, 2, Co], b [Co] -> [B, 2H, 2W, Co]; out[2i+a, 2j+c] = x[i, j] . w[:, a, c, :].
 */
export function convTranspose2x2(x: T4, w: T4, b: tf.Tensor1D): T4 {
  const [n, h, wd, ci] = x.shape;
  const co = w.shape[3];
  const y = matMulGrad(tf.reshape(x, [n * h * wd, ci]), tf.reshape(w, [ci, 4 * co])); // [BHW, 4Co]
  const shuffled = tf.transpose(tf.reshape(y, [n, h, wd, 2, 2, co]), [0, 1, 3, 2, 4, 5]); // [B, H, 2, W, 2, Co]
  return tf.add(tf.reshape(shuffled, [n, 2 * h, 2 * wd, co]), b);
}
