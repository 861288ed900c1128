/**
 * The encoder block's MLP, lin2(gelu(lin1(x))), a chunk of tokens at a time in both passes.
 *
 * Why: its hidden layer is the widest activation of a ViT block ([tokens, 4C]: 50 MB per image at 1024 px),
 * and autodiff keeps it and builds several more of its size in the backward pass. Tokens are independent
 * here, so this runs `rows` of them at a time and keeps only x for the backward pass, where it recomputes
 * each chunk's hidden layer (one more lin1 product per chunk). Every product keeps the untransposed-operand
 * shapes wasm's fast matmul wants, and weight gradients are built only for trainable weights.
 */
import { tf } from "../../engine/tf.ts";
import { spans } from "../spans.ts";
import { gelu, geluSlope, isTrainable } from "./layers.ts";

/** Tokens per chunk: a [1024, 3072] hidden chunk is 12 MiB. */
export const MLP_CHUNK_ROWS = 1024;

type T2 = tf.Tensor2D;

/** x [N, C] -> [N, C] through w1 [H, C], b1 [H], w2 [C, H], b2 [C] (torch Linear layouts). */
export function mlpBlock(
  x: tf.Tensor,
  w1: tf.Tensor,
  b1: tf.Tensor,
  w2: tf.Tensor,
  b2: tf.Tensor,
  rows = MLP_CHUNK_ROWS,
): tf.Tensor {
  const lead = x.shape.slice(0, -1);
  const c = x.shape.at(-1)!;
  const x2 = tf.reshape(x, [-1, c]) as T2;
  const n = x2.shape[0];
  const chunks = spans(n, rows);
  const rowsOf = (t: T2, r0: number, rn: number) => (rn === n ? t : tf.slice(t, [r0, 0], [rn, t.shape[1]]));
  // Frozen weights (every method here freezes them) are closed over: persistent params, no gradient to build.
  const train = [w1, b1, w2, b2].some(isTrainable);

  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const inputs = args.slice(0, -1) as tf.Tensor[];
    (args.at(-1) as tf.GradSaveFunc)(inputs);
    const [xi, w1i, b1i, w2i, b2i] = train ? inputs : [inputs[0], w1, b1, w2, b2];
    // Explicit transposes: wasm's matmul leaves its fast path for transposed-flag operands.
    const value = tf.tidy(() => {
      const [w1T, w2T] = [tf.transpose(w1i), tf.transpose(w2i)] as T2[];
      const out = chunks.map(([r0, rn]) =>
        tf.tidy(() => {
          const h = gelu(tf.add(tf.matMul(rowsOf(xi as T2, r0, rn), w1T), b1i)); // [rn, H]
          return tf.add(tf.matMul(h as T2, w2T), b2i); // [rn, C]
        })
      );
      return out.length === 1 ? out[0] : tf.concat(out, 0);
    });
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [xs, w1s, b1s, w2s] = (train ? saved : [saved[0], w1, b1, w2]) as T2[];
          const w1T = tf.transpose(w1s) as T2;
          const dx: tf.Tensor[] = [];
          let weightGrads: tf.Tensor[] = []; // dW1, db1, dW2, db2 summed over the chunks
          for (const [r0, rn] of chunks) {
            const [dxPart, ...wParts] = tf.tidy(() => {
              const xc = rowsOf(xs, r0, rn), dyc = rowsOf(dy as T2, r0, rn);
              const pre = tf.add(tf.matMul(xc, w1T), b1s) as T2; // [rn, H], recomputed
              const dh = tf.tidy(() => tf.mul(tf.matMul(dyc, w2s), geluSlope(pre))) as T2; // [rn, H]
              const dxc = tf.matMul(dh, w1s); // [rn, C]
              if (!train) return [dxc];
              return [
                dxc,
                tf.matMul(tf.transpose(dh) as T2, xc), // [H, C]
                tf.sum(dh, 0),
                tf.matMul(tf.transpose(dyc) as T2, gelu(pre) as T2), // [C, H]
                tf.sum(dyc, 0),
              ];
            });
            dx.push(dxPart);
            if (train) {
              const sums = weightGrads.length ? wParts.map((g, i) => tf.add(weightGrads[i], g)) : wParts;
              if (weightGrads.length) tf.dispose([...weightGrads, ...wParts]);
              weightGrads = sums;
            }
          }
          const dxAll = dx.length === 1 ? dx[0] : tf.concat(dx, 0);
          return [dxAll, ...weightGrads];
        }),
    };
  });
  return tf.reshape(train ? f(x2, w1, b1, w2, b2) : f(x2), [...lead, c]);
}
