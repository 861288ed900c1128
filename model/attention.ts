/**
 * Softmax attention computed in chunks of heads and query rows, so no intermediate exceeds the WebGPU
 * binding limit (SAM ViT-B's global blocks would need 768 MiB of logits per image in one piece), with the
 * decomposed relative-position bias of ViTDet/SAM (mvitv2) added per chunk. Chunking changes no number.
 */
import { tf } from "../engine/tf.ts";

/** Largest logits chunk by default: keeps CPU backends' peak memory sane and fits any WebGPU device. */
export const DEFAULT_MAX_CHUNK_BYTES = 64 * 2 ** 20;

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

/**
 * Splits x along axis 0 into n single-row tensors through a tree of 2-way splits: wasm's Slice copies its
 * whole input per call, so n direct slices cost n full copies where the tree costs about 2 log2(n).
 */
function splitRows(x: tf.Tensor, n: number): tf.Tensor[] {
  const out: tf.Tensor[] = [];
  const visit = (t: tf.Tensor, count: number, owned: boolean) => {
    if (count === 1) return void out.push(t);
    const half = Math.floor(count / 2);
    const [a, b] = tf.split(t, [half, count - half], 0);
    // Inner levels are full copies; freeing them now keeps the peak near one extra copy of x.
    if (owned) t.dispose();
    visit(a, half, true);
    visit(b, count - half, true);
  };
  visit(x, n, false);
  return out;
}

/**
 * a [G, M, K] @ b [G, K, N]. On wasm a batched matmul leaves XNNPACK for a loop ~10x slower than G 2-D
 * products (SAM's 300 window-heads per image), so there a given b arrives pre-split (see splitRows).
 */
function batchMatMul(a: tf.Tensor3D, b: tf.Tensor3D | tf.Tensor[]): tf.Tensor3D {
  if (!Array.isArray(b)) return tf.matMul(a, b);
  const [g, m, k] = a.shape;
  const as = splitRows(a, g);
  const n = b[0].shape[2]!;
  const parts = as.map((ai, i) =>
    tf.matMul(tf.reshape(ai, [m, k]) as tf.Tensor2D, tf.reshape(b[i], [k, n]) as tf.Tensor2D)
  );
  return tf.reshape(tf.concat(parts, 0), [g, m, n]) as tf.Tensor3D;
}

/** The two halves of the decomposed bias for queries q [g, qh*qw, d]: relH [g, qh, qw, kh], relW [g, qh, qw, kw]. */
function relPosTerms(q: tf.Tensor3D, rhT: tf.Tensor3D, rwT: tf.Tensor3D, rel: RelPosBias, wasm: boolean) {
  const [g, , d] = q.shape;
  const [qh, qw] = rel.qSize;
  const [kh, kw] = rel.kSize;
  const q4 = tf.reshape(q, [g, qh, qw, d]);
  // rel_h[b, y, x, k] = q[b, y, x] . Rh[y, k]: one product per query row y.
  const qByRow = tf.reshape(tf.transpose(q4, [1, 0, 2, 3]), [qh, g * qw, d]) as tf.Tensor3D;
  const hProd = batchMatMul(qByRow, wasm ? splitRows(rhT, qh) : rhT); // [qh, g*qw, kh]
  const relH = tf.transpose(tf.reshape(hProd, [qh, g, qw, kh]), [1, 0, 2, 3]) as tf.Tensor4D;
  // rel_w[b, y, x, k] = q[b, y, x] . Rw[x, k]: one product per query column x.
  const qByCol = tf.reshape(tf.transpose(q4, [2, 0, 1, 3]), [qw, g * qh, d]) as tf.Tensor3D;
  const wProd = batchMatMul(qByCol, wasm ? splitRows(rwT, qw) : rwT); // [qw, g*qh, kw]
  const relW = tf.transpose(tf.reshape(wProd, [qw, g, qh, kw]), [1, 2, 0, 3]) as tf.Tensor4D;
  return { relH, relW };
}

/** Slices the bias terms to groups g0.. and grid rows h0.. of a chunk. */
function sliceTerms(
  t: { relH: tf.Tensor4D; relW: tf.Tensor4D },
  g0: number,
  gn: number,
  h0: number,
  rowsH: number,
) {
  const cut = (x: tf.Tensor4D) => {
    const [g, qh, qw, k] = x.shape;
    return gn === g && rowsH === qh ? x : tf.slice(x, [g0, h0, 0, 0], [gn, rowsH, qw, k]);
  };
  return { relH: cut(t.relH), relW: cut(t.relW) };
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
  const [g, nq, d] = q.shape;
  const nk = k.shape[1];
  const dv = v.shape[2];
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
    // Explicit transposes: wasm's matmul leaves its fast path for transposed-flag operands.
    const kT = tf.transpose(k, [0, 2, 1]); // [G, d, Nk]
    const rhT = rel ? tf.transpose(rel.rh, [0, 2, 1]) as tf.Tensor3D : undefined; // [qh, d, kh]
    const rwT = rel ? tf.transpose(rel.rw, [0, 2, 1]) as tf.Tensor3D : undefined; // [qw, d, kw]
    // The bias terms are small (kh + kw per query): all heads at once when they fit the cap, else per group.
    const termsAll = rel && g * nq * (rel.kSize[0] + rel.kSize[1]) * 4 <= cap;
    const allTerms = termsAll ? relPosTerms(q, rhT!, rwT!, rel, wasm) : undefined;
    const qs = tf.mul(q, opts.scale);
    const perGroup: tf.Tensor[] = [];
    for (let g0 = 0; g0 < g; g0 += plan.groups) {
      const gn = Math.min(plan.groups, g - g0);
      const whole = gn === g;
      const kGroup = whole ? kT : tf.slice(kT, [g0, 0, 0], [gn, d, nk]);
      const vGroup = whole ? v : tf.slice(v, [g0, 0, 0], [gn, nk, dv]);
      const sliced = gn > 1 && wasm;
      const kc = sliced ? splitRows(kGroup, gn) : kGroup;
      const vc = sliced ? splitRows(vGroup, gn) : vGroup;
      const qGroup = whole ? q : tf.slice(q, [g0, 0, 0], [gn, nq, d]) as tf.Tensor3D;
      const terms = !rel ? undefined : allTerms ?? relPosTerms(qGroup, rhT!, rwT!, rel, wasm);
      const tg0 = allTerms ? g0 : 0;
      const perRows: tf.Tensor[] = [];
      for (let r0 = 0; r0 < nq; r0 += plan.rows) {
        const rn = Math.min(plan.rows, nq - r0);
        perRows.push(tf.tidy(() => {
          const qsc = whole && rn === nq ? qs : tf.slice(qs, [g0, r0, 0], [gn, rn, d]);
          let logits: tf.Tensor = batchMatMul(qsc as tf.Tensor3D, kc); // [gn, rn, Nk]
          if (rel && terms) {
            const [qw, [kh, kw]] = [rel.qSize[1], rel.kSize];
            const { relH, relW } = sliceTerms(terms, tg0, gn, r0 / qw, rn / qw);
            const l5 = tf.reshape(logits, [gn, rn / qw, qw, kh, kw]);
            logits = tf.reshape(tf.add(tf.add(l5, tf.expandDims(relH, 4)), tf.expandDims(relW, 3)), [
              gn,
              rn,
              nk,
            ]);
          }
          return batchMatMul(tf.softmax(logits) as tf.Tensor3D, vc); // [gn, rn, dv]
        }));
      }
      perGroup.push(perRows.length === 1 ? perRows[0] : tf.concat(perRows, 1));
    }
    return (perGroup.length === 1 ? perGroup[0] : tf.concat(perGroup, 0)) as tf.Tensor3D;
  });
}
