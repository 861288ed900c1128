import assert from "node:assert/strict";
import { tf } from "../engine/tf.ts";
import { attention, getRelPos, planChunks } from "./attention.ts";
import { selectBackend } from "../engine/backend.ts";

await tf.setBackend("cpu");

function maxDiff(
  a: Float32Array | Int32Array | Uint8Array,
  b: Float32Array | Int32Array | Uint8Array,
): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Straightforward reference: full logits, bias from explicit loops over the gathered tables. */
async function naive(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  rh: tf.Tensor3D,
  rw: tf.Tensor3D,
  grid: number[],
  scale: number,
) {
  const [g, n, d] = q.shape;
  const [qh, qw] = grid;
  const qa = await q.data(), ka = await k.data(), rha = await rh.data(), rwa = await rw.data();
  const logits = new Float32Array(g * n * n);
  for (let b = 0; b < g; b++) {
    for (let i = 0; i < n; i++) {
      const [yi, xi] = [Math.floor(i / qw), i % qw];
      for (let j = 0; j < n; j++) {
        const [yj, xj] = [Math.floor(j / qw), j % qw];
        let s = 0, bh = 0, bw = 0;
        for (let c = 0; c < d; c++) {
          const qv = qa[(b * n + i) * d + c];
          s += qv * scale * ka[(b * n + j) * d + c];
          bh += qv * rha[(yi * qh + yj) * d + c];
          bw += qv * rwa[(xi * qw + xj) * d + c];
        }
        logits[(b * n + i) * n + j] = s + bh + bw;
      }
    }
  }
  return tf.matMul(tf.softmax(tf.tensor3d(logits, [g, n, n])), v);
}

/** Seeded q, k, v [g, qh*qw, d] and gathered rel-pos tables for a qh x qw grid. */
function randomInputs(qh: number, qw: number, g: number, d: number) {
  const n = qh * qw;
  const [q, k, v] = [1, 2, 3].map((s) => tf.randomNormal([g, n, d], 0, 1, "float32", s) as tf.Tensor3D);
  const rh = getRelPos(tf.randomNormal([2 * qh - 1, d], 0, 1, "float32", 4), qh, qh);
  const rw = getRelPos(tf.randomNormal([2 * qw - 1, d], 0, 1, "float32", 5), qw, qw);
  const relPos = { rh, rw, qSize: [qh, qw] as [number, number], kSize: [qh, qw] as [number, number] };
  return { q, k, v, rh, rw, relPos };
}

Deno.test("chunked attention gives the unchunked numbers, with the decomposed rel-pos bias", async () => {
  const [qh, qw, g, d] = [5, 6, 4, 8];
  const n = qh * qw;
  const { q, k, v, rh, rw, relPos } = randomInputs(qh, qw, g, d);
  const scale = d ** -0.5;
  const ref = await (await naive(q, k, v, rh, rw, [qh, qw], scale)).data();
  const row = qw * n * 4; // bytes of one grid row of logits for one group
  for (const cap of [Infinity, n * n * 4 * 2, n * n * 4, 2 * row + 1, row, 1]) {
    const out = attention(q, k, v, { scale, relPos, maxChunkBytes: cap });
    assert.deepEqual(out.shape, [g, n, d]);
    assert.ok(maxDiff(await out.data(), ref) < 1e-5, `cap ${cap}`);
  }
});

Deno.test("chunk plans: whole, by groups, then by whole query-grid rows", () => {
  assert.deepEqual(planChunks(12, 4096, 4096, 64, Infinity), { groups: 12, rows: 4096 });
  assert.deepEqual(planChunks(12, 4096, 4096, 64, 64 * 2 ** 20), { groups: 1, rows: 4096 });
  assert.deepEqual(planChunks(12, 4096, 4096, 64, 128 * 2 ** 20), { groups: 2, rows: 4096 });
  assert.deepEqual(planChunks(12, 4096, 4096, 64, 16 * 2 ** 20), { groups: 1, rows: 1024 });
  assert.deepEqual(planChunks(12, 4096, 4096, 64, 1), { groups: 1, rows: 64 });
  // ViT-B at 1024 on a 128 MiB WebGPU device: no logits chunk over the limit.
  const p = planChunks(12, 4096, 4096, 64, 128 * 2 ** 20);
  assert.ok(p.groups * p.rows * 4096 * 4 <= 128 * 2 ** 20);
});

Deno.test("getRelPos gathers q - k + (k - 1) and linearly resizes a table of another length", async () => {
  const table = tf.tensor2d([[0], [10], [20], [30], [40]]); // L = 5 = 2 * 3 - 1
  assert.deepEqual(Array.from(await getRelPos(table, 3, 3).data()), [20, 10, 0, 30, 20, 10, 40, 30, 20]);
  // L = 3 resized to 5 like F.interpolate(mode="linear", align_corners=False) (checked in torch): [0, 4, 10, 16, 20].
  const small = tf.tensor2d([[0], [10], [20]]);
  const got = Array.from(await getRelPos(small, 3, 3).data());
  const want = [10, 4, 0, 16, 10, 4, 20, 16, 10];
  assert.ok(maxDiff(Float32Array.from(got), Float32Array.from(want)) < 1e-5, String(got));
});

Deno.test("gradients through chunked attention equal the unchunked ones", async () => {
  const [qh, qw, g, d] = [4, 4, 2, 4];
  const n = qh * qw;
  const k = tf.randomNormal([g, n, d], 0, 1, "float32", 7) as tf.Tensor3D;
  const v = tf.randomNormal([g, n, d], 0, 1, "float32", 8) as tf.Tensor3D;
  const q = tf.randomNormal([g, n, d], 0, 1, "float32", 6) as tf.Tensor3D;
  const th = tf.randomNormal([2 * qh - 1, d], 0, 1, "float32", 9);
  const grads = async (cap: number) => {
    const gs = tf.grads((qq: tf.Tensor, tt: tf.Tensor) => {
      const relPos = {
        rh: getRelPos(tt, qh, qh),
        rw: getRelPos(tt, qw, qw),
        qSize: [qh, qw] as [number, number],
        kSize: [qh, qw] as [number, number],
      };
      return tf.sum(
        tf.square(attention(qq as tf.Tensor3D, k, v, { scale: 0.5, relPos, maxChunkBytes: cap })),
      );
    })([q, th]);
    return [await gs[0].data(), await gs[1].data()];
  };
  const [a, b] = [await grads(Infinity), await grads(1)];
  assert.ok(maxDiff(a[0], b[0]) < 1e-5 && maxDiff(a[1], b[1]) < 1e-5);
  assert.ok(a[1].some((x) => x !== 0));
});

/** Attention in plain differentiable ops (full logits, bias by broadcasting), for autodiff to check against. */
function plainAttention(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  rh: tf.Tensor3D,
  rw: tf.Tensor3D,
  [qh, qw]: number[],
  scale: number,
) {
  const [g, n, d] = q.shape;
  const q4 = tf.reshape(q, [g, qh, qw, 1, d]);
  const relH = tf.sum(tf.mul(q4, tf.expandDims(rh, 1)), -1); // [g, qh, qw, kh]
  const relW = tf.sum(tf.mul(q4, rw), -1); // [g, qh, qw, kw]
  const logits = tf.reshape(tf.matMul(tf.mul(q, scale), k, false, true), [g, qh, qw, qh, qw]);
  const biased = tf.add(tf.add(logits, tf.expandDims(relH, 4)), tf.expandDims(relW, 3));
  return tf.matMul(tf.softmax(tf.reshape(biased, [g, n, n])), v);
}

Deno.test("attention's own gradient (chunk by chunk, on cpu and wasm) equals autodiff of plain attention", async () => {
  const [qh, qw, g, d] = [4, 6, 3, 5];
  const n = qh * qw;
  const data = [1, 2, 3].map((s) => tf.randomNormal([g, n, d], 0, 1, "float32", s).dataSync());
  const tables = [[2 * qh - 1, 4], [2 * qw - 1, 5]].map(([len, s]) =>
    tf.randomNormal([len, d], 0, 1, "float32", s).dataSync()
  );
  const up = tf.randomNormal([g, n, d], 0, 1, "float32", 6).dataSync(); // weights of the loss
  const grads = async (backend: "cpu" | "wasm", cap?: number) => {
    await selectBackend(backend, {}, () => {});
    const [q, k, v] = data.map((x) => tf.tensor3d(x, [g, n, d]));
    const [th, tw] = tables.map((x) => tf.tensor2d(x, [x.length / d, d]));
    const w = tf.tensor3d(up, [g, n, d]);
    const loss = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, hh: tf.Tensor, ww: tf.Tensor) => {
      const [rh, rw] = [getRelPos(hh, qh, qh), getRelPos(ww, qw, qw)];
      const [q3, k3, v3] = [qq, kk, vv] as tf.Tensor3D[];
      const out = cap === undefined
        ? plainAttention(q3, k3, v3, rh, rw, [qh, qw], 0.3)
        : attention(q3, k3, v3, {
          scale: 0.3,
          relPos: { rh, rw, qSize: [qh, qw], kSize: [qh, qw] },
          maxChunkBytes: cap,
        });
      return tf.sum(tf.mul(out, w));
    };
    const gs = tf.grads(loss)([q, k, v, th, tw]);
    const out = await Promise.all(gs.map((t) => t.data()));
    tf.dispose([...gs, q, k, v, th, tw, w]);
    return out;
  };
  const want = await grads("cpu");
  const row = qw * n * 4; // bytes of one query-grid row of one group's logits
  for (const backend of ["cpu", "wasm"] as const) {
    for (const cap of [Infinity, n * n * 4, row]) {
      const got = await grads(backend, cap);
      for (const [i, name] of ["q", "k", "v", "rel_pos_h", "rel_pos_w"].entries()) {
        assert.ok(
          maxDiff(got[i], want[i]) < 1e-4,
          `${backend} cap ${cap}: d${name} off by ${maxDiff(got[i], want[i])}`,
        );
        assert.ok(want[i].some((x) => x !== 0), `d${name} is not all zero`);
      }
    }
  }
  await selectBackend("cpu", {}, () => {});
});

Deno.test("attention's backward pass keeps one chunk of logits, not all of them", async () => {
  const [qh, qw, g, d] = [24, 24, 2, 4];
  const n = qh * qw;
  const full = g * n * n * 4; // all logits: 2.5 MiB
  const { q, k, v, rh, rw, relPos } = randomInputs(qh, qw, g, d);
  const before = tf.memory().numBytes;
  const info = await tf.profile(() => {
    const gs = tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) =>
      tf.sum(attention(qq as tf.Tensor3D, kk as tf.Tensor3D, vv as tf.Tensor3D, {
        scale: 0.3,
        relPos,
        maxChunkBytes: qw * n * 4, // one query-grid row of one group
      }))
    )([q, k, v]);
    tf.dispose(gs);
  });
  // Autodiff kept logits, biased logits and probabilities of every chunk: 19x `full` (measured).
  assert.ok(
    info.peakBytes - before < full,
    `peak ${info.peakBytes - before} bytes over inputs, all logits ${full}`,
  );
  tf.dispose([q, k, v, rh, rw]);
});
