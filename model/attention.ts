/**
 * Softmax attention computed in chunks of heads and query rows, so no intermediate exceeds the WebGPU
 * binding limit (SAM ViT-B's global blocks would need 768 MiB of logits per image in one piece), with the
 * decomposed relative-position bias of ViTDet/SAM (mvitv2) added per chunk. Chunking changes no number.
 */
import { tf } from "../engine/tf.ts";
import { spans } from "./spans.ts";

/**
 * Largest logits chunk by default, and always in the backward pass (which holds about four chunk-sized
 * tensors at once). It fits any WebGPU device, and it is what lets a vit_b step at 1024 px fit the 4 GiB wasm
 * heap: with 64 MiB chunks the global blocks' temporaries took the heap past it (measured), and 16 MiB costs
 * the encoder forward nothing measurable (25.2 s either way).
 */
export const DEFAULT_MAX_CHUNK_BYTES = 16 * 2 ** 20;

/** The decomposed relative-position tables of one attention call, already gathered (see getRelPos). */
export interface RelPosBias {
  /** [qh, kh, d]: Rh[i, j] is the height embedding for query row i and key row j. */
  rh: tf.Tensor3D;
  /** [qw, kw, d] likewise along the width. */
  rw: tf.Tensor3D;
  qSize: [number, number];
  kSize: [number, number];
}

export interface AttentionOptions {
  /** Multiplies q before q @ k^T (the bias uses the unscaled q, as in the official code). */
  scale: number;
  relPos?: RelPosBias;
  /** Cap on one chunk's logits in bytes (the caller lowers it to the device's binding limit). */
  maxChunkBytes?: number;
}

/** How attention over `groups` x nq x nk logits is cut: `groups` per chunk and `rows` queries per chunk. */
export interface ChunkPlan {
  groups: number;
  rows: number;
}

/**
 * Picks the chunk shape: everything at once if it fits, else whole heads, else one head and as many query
 * rows (in units of rowUnit queries, a full query-grid row when the bias needs it) as fit.
 */
export function planChunks(
  groups: number,
  nq: number,
  nk: number,
  rowUnit: number,
  capBytes: number,
): ChunkPlan {
  const perGroup = nq * nk * 4;
  if (groups * perGroup <= capBytes) return { groups, rows: nq };
  if (perGroup <= capBytes) return { groups: Math.floor(capBytes / perGroup), rows: nq };
  const units = Math.max(1, Math.floor(capBytes / (rowUnit * nk * 4)));
  return { groups: 1, rows: Math.min(nq, units * rowUnit) };
}

/** Index of torch's get_rel_pos relative coordinate, in float32 arithmetic like torch, truncated like .long(). */
function relIndex(i: number, j: number, q: number, k: number): number {
  const f = Math.fround;
  const qc = f(i * f(Math.max(k / q, 1)));
  const kc = f(j * f(Math.max(q / k, 1)));
  return Math.trunc(f(f(qc - kc) + f((k - 1) * f(Math.max(q / k, 1)))));
}

/**
 * get_rel_pos: the [qSize, kSize, d] embeddings for every query/key offset from a table [L, d]; a table whose
 * length is not 2 * max(qSize, kSize) - 1 is first resized like F.interpolate(mode="linear"). Built as one
 * constant [qSize*kSize, L] matrix times the table, so the table gets gradients on every backend.
 */
export function getRelPos(table: tf.Tensor, qSize: number, kSize: number): tf.Tensor3D {
  const [len, d] = table.shape;
  const maxDist = 2 * Math.max(qSize, kSize) - 1;
  const scale = len / maxDist;
  const m = new Float32Array(qSize * kSize * len);
  for (let i = 0; i < qSize; i++) {
    for (let j = 0; j < kSize; j++) {
      const r = relIndex(i, j, qSize, kSize);
      const row = (i * kSize + j) * len;
      if (len === maxDist) {
        m[row + r] = 1;
        continue;
      }
      const src = Math.max(scale * (r + 0.5) - 0.5, 0);
      const i0 = Math.min(Math.floor(src), len - 1);
      const lambda = Math.min(Math.max(src - i0, 0), 1);
      m[row + i0] += 1 - lambda;
      m[row + (i0 < len - 1 ? i0 + 1 : i0)] += lambda;
    }
  }
  return tf.tidy(() => {
    const gathered = tf.matMul(tf.tensor2d(m, [qSize * kSize, len]), table as tf.Tensor2D); // [q*k, d]
    return tf.reshape(gathered, [qSize, kSize, d]) as tf.Tensor3D;
  });
}

/** Operands of a batched product: one [G, M, K] tensor, or on wasm its G slices (see batchMatMul). */
type Batched = tf.Tensor3D | tf.Tensor[];

/** x as batchMatMul wants it: on wasm with more than one group, cut into its groups (one copy in all). */
function byGroup(x: tf.Tensor3D, wasm: boolean): Batched {
  return wasm && x.shape[0] > 1 ? tf.unstack(x) : x;
}

/**
 * a [G, M, K] @ b [G, K, N]. On wasm a batched matmul leaves XNNPACK for a loop ~10x slower than G 2-D
 * products (SAM's 300 window-heads per image), so there the operands come cut into groups (byGroup).
 */
function batchMatMul(a: Batched, b: Batched): tf.Tensor3D {
  if (!Array.isArray(a) && !Array.isArray(b)) return tf.matMul(a, b);
  const as = Array.isArray(a) ? a : tf.unstack(a);
  const bs = Array.isArray(b) ? b : tf.unstack(b);
  return tf.stack(as.map((ai, i) => tf.matMul(ai as tf.Tensor2D, bs[i] as tf.Tensor2D))) as tf.Tensor3D;
}

/** The two halves of the decomposed bias for queries q [g, qh*qw, d]: relH [g, qh, qw, kh], relW [g, qh, qw, kw]. */
function relPosTerms(q: tf.Tensor3D, rhT: tf.Tensor3D, rwT: tf.Tensor3D, rel: RelPosBias, wasm: boolean) {
  const [g, , d] = q.shape;
  const [qh, qw] = rel.qSize;
  const [kh, kw] = rel.kSize;
  const q4 = tf.reshape(q, [g, qh, qw, d]);
  // rel_h[b, y, x, k] = q[b, y, x] . Rh[y, k]: one product per query row y.
  const qByRow = tf.reshape(tf.transpose(q4, [1, 0, 2, 3]), [qh, g * qw, d]) as tf.Tensor3D;
  const hProd = batchMatMul(byGroup(qByRow, wasm), byGroup(rhT, wasm)); // [qh, g*qw, kh]
  const relH = tf.transpose(tf.reshape(hProd, [qh, g, qw, kh]), [1, 0, 2, 3]) as tf.Tensor4D;
  // rel_w[b, y, x, k] = q[b, y, x] . Rw[x, k]: one product per query column x.
  const qByCol = tf.reshape(tf.transpose(q4, [2, 0, 1, 3]), [qw, g * qh, d]) as tf.Tensor3D;
  const wProd = batchMatMul(byGroup(qByCol, wasm), byGroup(rwT, wasm)); // [qw, g*qh, kw]
  const relW = tf.transpose(tf.reshape(wProd, [qw, g, qh, kw]), [1, 2, 0, 3]) as tf.Tensor4D;
  return { relH, relW };
}

/** x [G, N, c] cut to groups g0 .. g0+gn and rows r0 .. r0+rn (x itself when that is all of it). */
function cut3<T extends tf.Tensor>(x: T, g0: number, gn: number, r0: number, rn: number): T {
  const [g, n, c] = x.shape;
  return gn === g && rn === n ? x : tf.slice(x, [g0, r0, 0], [gn, rn, c!]) as T;
}

/** A bias term [G, qh, qw, k] cut to groups g0.. and query-grid rows h0.. of a chunk. */
function cut4(x: tf.Tensor4D, g0: number, gn: number, h0: number, hn: number): tf.Tensor4D {
  const [g, qh, qw, k] = x.shape;
  return gn === g && hn === qh ? x : tf.slice(x, [g0, h0, 0, 0], [gn, hn, qw, k]);
}

/** The grid of a biased attention: qw queries per grid row, kh x kw keys, and the bias halves [G, qh, qw, kh|kw]. */
interface Bias {
  qw: number;
  kh: number;
  kw: number;
  relH: tf.Tensor4D;
  relW: tf.Tensor4D;
}

/** softmax(qs @ kT + bias) for one chunk of query rows: qs [g, rn, d] -> probabilities [g, rn, Nk]. */
function chunkProbs(qs: tf.Tensor3D, kT: Batched, wasm: boolean, bias?: Bias): tf.Tensor3D {
  const [g, rn] = qs.shape;
  let logits: tf.Tensor = batchMatMul(byGroup(qs, wasm), kT); // [g, rn, Nk]
  if (bias) {
    const { qw, kh, kw, relH, relW } = bias;
    const l5 = tf.reshape(logits, [g, rn / qw, qw, kh, kw]);
    logits = tf.reshape(tf.add(tf.add(l5, tf.expandDims(relH, 4)), tf.expandDims(relW, 3)), [g, rn, kh * kw]);
  }
  return tf.softmax(logits) as tf.Tensor3D;
}

/**
 * The core of one group range: softmax(q * scale @ k^T + bias) @ v, `rows` query rows at a time, with its
 * own gradient. Autodiff would keep every chunk's logits and probabilities for the backward pass (3 GiB for
 * one ViT-B global block at 1024 px, more than the wasm heap can spare) and differentiate the products into
 * transposed-flag matmuls that wasm runs ~10x slower. This backward recomputes each chunk's probabilities
 * instead (flash attention's trade: one more q @ k^T per chunk) and transposes explicitly, so memory stays at
 * one chunk. The bias halves are inputs: their own small autodiff carries their gradient on to q and the
 * rel-pos tables.
 */
function attendGroups(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  scale: number,
  rows: number,
  bias?: Bias,
): tf.Tensor3D {
  const wasm = tf.getBackend() === "wasm";
  const [g, nq] = q.shape;
  const nk = k.shape[1];
  /** The bias of query rows r0 .. r0+rn (whole query-grid rows: planChunks cuts in units of qw). */
  const biasOf = (b: Bias | undefined, r0: number, rn: number): Bias | undefined =>
    b && {
      ...b,
      relH: cut4(b.relH, 0, g, r0 / b.qw, rn / b.qw),
      relW: cut4(b.relW, 0, g, r0 / b.qw, rn / b.qw),
    };
  // The backward pass holds several chunk-sized tensors at once, so it never takes chunks over the default
  // (whole grid rows), even where the caller allowed larger ones.
  const unit = bias ? bias.qw : 1;
  const backwardRows = Math.min(
    rows,
    unit * Math.max(1, Math.floor(DEFAULT_MAX_CHUNK_BYTES / (g * nk * 4 * unit))),
  );
  const join = (xs: tf.Tensor[]) => (xs.length === 1 ? xs[0] : tf.concat(xs, 1));

  // The customGrad's forward reads q, k, v and the bias, which are its inputs.
  const forward = () =>
    tf.tidy(() => {
      // Explicit transposes: wasm's matmul leaves its fast path for transposed-flag operands.
      const kT = byGroup(tf.transpose(k, [0, 2, 1]) as tf.Tensor3D, wasm); // [g, d, Nk]
      const vs = byGroup(v, wasm);
      return join(
        spans(nq, rows).map(([r0, rn]) =>
          tf.tidy(() => {
            const p = chunkProbs(
              tf.mul(cut3(q, 0, g, r0, rn), scale) as tf.Tensor3D,
              kT,
              wasm,
              biasOf(bias, r0, rn),
            );
            return batchMatMul(byGroup(p, wasm), vs); // [g, rn, dv]
          })
        ),
      );
    });

  // dy [g, Nq, dv] -> the gradients of q, k, v (and the bias halves), one chunk of query rows at a time, from
  // the copies the forward saved (by then a tidy may have freed the originals).
  const backward = (dy: tf.Tensor3D, qi: tf.Tensor3D, ki: tf.Tensor3D, vi: tf.Tensor3D, b?: Bias) =>
    tf.tidy(() => {
      const kT = byGroup(tf.transpose(ki, [0, 2, 1]) as tf.Tensor3D, wasm); // [g, d, Nk]
      const vT = byGroup(tf.transpose(vi, [0, 2, 1]) as tf.Tensor3D, wasm); // [g, dv, Nk]
      const ks = byGroup(ki, wasm);
      let dk: tf.Tensor = tf.zerosLike(ki), dv: tf.Tensor = tf.zerosLike(vi);
      const dq: tf.Tensor[] = [], dRelH: tf.Tensor[] = [], dRelW: tf.Tensor[] = [];
      for (const [r0, rn] of spans(nq, backwardRows)) {
        // Inner tidies free each step's temporaries at once: at most p, dS and one product live together.
        const part = tf.tidy(() => {
          const cb = biasOf(b, r0, rn);
          const qs = tf.mul(cut3(qi, 0, g, r0, rn), scale) as tf.Tensor3D; // [g, rn, d]
          const dO = cut3(dy, 0, g, r0, rn); // [g, rn, dv]
          const t = (x: tf.Tensor3D) => byGroup(tf.transpose(x, [0, 2, 1]) as tf.Tensor3D, wasm);
          const p = tf.tidy(() => chunkProbs(qs, kT, wasm, cb)); // [g, rn, Nk]
          const ds = tf.tidy(() => {
            const dp = batchMatMul(byGroup(dO, wasm), vT); // [g, rn, Nk]
            return tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), -1, true))) as tf.Tensor3D; // softmax backward
          });
          const dvNext = tf.tidy(() => tf.add(dv, batchMatMul(t(p), byGroup(dO, wasm)))); // += P^T @ dO
          p.dispose();
          const dkNext = tf.tidy(() => tf.add(dk, batchMatMul(t(ds), byGroup(qs, wasm)))); // += dS^T @ (q * scale)
          const ds5 = cb && tf.reshape(ds, [g, rn / cb.qw, cb.qw, cb.kh, cb.kw]);
          return {
            dk: dkNext,
            dv: dvNext,
            dq: tf.tidy(() => tf.mul(batchMatMul(byGroup(ds, wasm), ks), scale)), // [g, rn, d]
            dRelH: ds5 && tf.sum(ds5, 4), // [g, rn/qw, qw, kh]
            dRelW: ds5 && tf.sum(ds5, 3), // [g, rn/qw, qw, kw]
          };
        });
        tf.dispose([dk, dv]);
        [dk, dv] = [part.dk, part.dv];
        dq.push(part.dq);
        if (part.dRelH && part.dRelW) dRelH.push(part.dRelH), dRelW.push(part.dRelW);
      }
      return b ? [join(dq), dk, dv, join(dRelH), join(dRelW)] : [join(dq), dk, dv];
    });

  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    (args.at(-1) as tf.GradSaveFunc)(args.slice(0, -1) as tf.Tensor[]);
    return {
      value: forward(),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [qs, ks, vs, h, w] = saved as [
          tf.Tensor3D,
          tf.Tensor3D,
          tf.Tensor3D,
          tf.Tensor4D?,
          tf.Tensor4D?,
        ];
        return backward(
          dy as tf.Tensor3D,
          qs,
          ks,
          vs,
          bias && h && w ? { ...bias, relH: h, relW: w } : undefined,
        );
      },
    };
  });
  return (bias ? f(q, k, v, bias.relH, bias.relW) : f(q, k, v)) as tf.Tensor3D;
}

/**
 * softmax((q * scale) @ k^T + bias) @ v for q [G, Nq, d], k [G, Nk, d], v [G, Nk, dv] -> [G, Nq, dv], where
 * G is batch x heads. With relPos, Nq = qh*qw and Nk = kh*kw in row-major grid order.
 */
export function attention(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  opts: AttentionOptions,
): tf.Tensor3D {
  const [g, nq] = q.shape;
  const nk = k.shape[1];
  const rel = opts.relPos;
  if (rel && (rel.qSize[0] * rel.qSize[1] !== nq || rel.kSize[0] * rel.kSize[1] !== nk)) {
    throw new Error(
      `attention: rel-pos sizes ${rel.qSize}/${rel.kSize} do not match ${nq} queries, ${nk} keys`,
    );
  }
  const cap = opts.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  const plan = planChunks(g, nq, nk, rel ? rel.qSize[1] : 1, cap);
  const wasm = tf.getBackend() === "wasm";
  return tf.tidy(() => {
    const rhT = rel && tf.transpose(rel.rh, [0, 2, 1]) as tf.Tensor3D; // [qh, d, kh]
    const rwT = rel && tf.transpose(rel.rw, [0, 2, 1]) as tf.Tensor3D; // [qw, d, kw]
    // The bias halves are small (kh + kw per query): all heads at once when they fit the cap, else per group.
    const termsAll = rel && g * nq * (rel.kSize[0] + rel.kSize[1]) * 4 <= cap;
    const allTerms = termsAll ? relPosTerms(q, rhT!, rwT!, rel, wasm) : undefined;
    const perGroup: tf.Tensor[] = [];
    for (const [g0, gn] of spans(g, plan.groups)) {
      const [qG, kG, vG] = [q, k, v].map((x) => cut3(x, g0, gn, 0, x.shape[1]));
      let bias: Bias | undefined;
      if (rel) {
        const qh = rel.qSize[0];
        const terms = allTerms
          ? { relH: cut4(allTerms.relH, g0, gn, 0, qh), relW: cut4(allTerms.relW, g0, gn, 0, qh) }
          : relPosTerms(qG, rhT!, rwT!, rel, wasm);
        bias = { qw: rel.qSize[1], kh: rel.kSize[0], kw: rel.kSize[1], ...terms };
      }
      perGroup.push(attendGroups(qG, kG, vG, opts.scale, plan.rows, bias));
    }
    return (perGroup.length === 1 ? perGroup[0] : tf.concat(perGroup, 0)) as tf.Tensor3D;
  });
}
