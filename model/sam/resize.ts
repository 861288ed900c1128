/**
 * torch's F.interpolate (linear / bilinear, align_corners=False, no antialias) as constant interpolation
 * matrices applied with matmuls: identical weights to torch, differentiable on every backend, and a crop
 * between two resizes folds into one matrix per axis.
 */
import { tf } from "../../engine/tf.ts";

/** A dense [rows, cols] matrix in host memory (float64 so composed weights round once). */
export interface HostMatrix {
  rows: number;
  cols: number;
  data: Float64Array;
}

/**
 * Weights of torch's 1-D linear resize from inSize to outSize samples: [outSize, inSize]. alignCorners as
 * F.interpolate's: true maps the end samples onto each other (the g-network's resizes), false (torch's
 * default) maps pixel edges.
 */
export function linearResizeMatrix(inSize: number, outSize: number, alignCorners = false): HostMatrix {
  const data = new Float64Array(outSize * inSize);
  const scale = alignCorners ? (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0) : inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    // area_pixel_compute_source_index, then guard_index_and_lambda (ATen UpSample.h).
    const src = alignCorners ? scale * o : Math.max(scale * (o + 0.5) - 0.5, 0);
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const lambda = Math.min(Math.max(src - i0, 0), 1);
    const i1 = i0 < inSize - 1 ? i0 + 1 : i0;
    data[o * inSize + i0] += 1 - lambda;
    data[o * inSize + i1] += lambda;
  }
  return { rows: outSize, cols: inSize, data };
}

/** a [r, k] @ b [k, c] in float64. */
export function matMulHost(a: HostMatrix, b: HostMatrix): HostMatrix {
  if (a.cols !== b.rows) throw new Error(`matMulHost: [${a.rows}, ${a.cols}] @ [${b.rows}, ${b.cols}]`);
  const data = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let k = 0; k < a.cols; k++) {
      const v = a.data[i * a.cols + k];
      if (v === 0) continue;
      for (let j = 0; j < b.cols; j++) data[i * b.cols + j] += v * b.data[k * b.cols + j];
    }
  }
  return { rows: a.rows, cols: b.cols, data };
}

/** The first n rows of m (a crop of the resized axis). */
export function firstRows(m: HostMatrix, n: number): HostMatrix {
  return { rows: n, cols: m.cols, data: m.data.slice(0, n * m.cols) };
}

function toTensor(m: HostMatrix): tf.Tensor2D {
  return tf.tensor2d(Float32Array.from(m.data), [m.rows, m.cols]);
}

/**
 * out[b, i, j, c] = sum mh[i, h] * mw[j, w] * x[b, h, w, c] for x [B, H, W, C] (NHWC), as two 2-D matmuls.
 * The matrices are constants: only x receives a gradient.
 */
export function applyAxisMatrices(x: tf.Tensor4D, mh: HostMatrix, mw: HostMatrix): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  if (mh.cols !== h || mw.cols !== w) throw new Error(`resize matrices do not fit [${x.shape}]`);
  return tf.tidy(() => {
    const xh = tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [h, b * w * c]); // [H, B*W*C]
    const yh = tf.matMul(toTensor(mh), xh); // [H', B*W*C]
    const xw = tf.reshape(tf.transpose(tf.reshape(yh, [mh.rows, b, w, c]), [2, 0, 1, 3]), [w, -1]); // [W, H'*B*C]
    const yw = tf.matMul(toTensor(mw), xw); // [W', H'*B*C]
    return tf.transpose(tf.reshape(yw, [mw.rows, mh.rows, b, c]), [2, 1, 0, 3]) as tf.Tensor4D; // [B, H', W', C]
  });
}

/** F.interpolate(x, size, mode="bilinear", align_corners=alignCorners) on NHWC x. */
export function resizeBilinear(
  x: tf.Tensor4D,
  height: number,
  width: number,
  alignCorners = false,
): tf.Tensor4D {
  const [, h, w] = x.shape;
  if (h === height && w === width) return tf.clone(x);
  return applyAxisMatrices(
    x,
    linearResizeMatrix(h, height, alignCorners),
    linearResizeMatrix(w, width, alignCorners),
  );
}
