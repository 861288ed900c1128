import assert from "node:assert/strict";
import { tf } from "../engine/tf.ts";
import { selectBackend } from "../engine/backend.ts";
import { conv1x1, conv3x3, conv3x3Stride2, convTranspose2x2 } from "./conv_ops.ts";

const quiet = () => {};

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`conv ops: values and gradients match tfjs autodiff (${backend})`, async () => {
    await selectBackend(backend, {}, quiet);
    const x = tf.randomNormal([2, 6, 7, 3], 0, 1, "float32", 1) as tf.Tensor4D;
    const w3 = tf.randomNormal([3, 3, 3, 5], 0, 0.3, "float32", 2) as tf.Tensor4D;
    const w1 = tf.randomNormal([5, 5], 0, 0.3, "float32", 3) as tf.Tensor2D;
    const wt = tf.randomNormal([5, 2, 2, 5], 0, 0.3, "float32", 4) as tf.Tensor4D;
    const b = tf.randomNormal([5], 0, 0.3, "float32", 5) as tf.Tensor1D;
    const hosts = await Promise.all(
      [x, w3, w1, wt, b].map(async (t) => ({ shape: t.shape, data: await t.data() })),
    );
    const ours = tf.grads((...a: tf.Tensor[]) => {
      const [xx, ww3, ww1, wwt] = a as [tf.Tensor4D, tf.Tensor4D, tf.Tensor2D, tf.Tensor4D];
      const h = tf.relu(conv3x3(xx, ww3, b));
      return tf.sum(tf.square(convTranspose2x2(conv1x1(h, ww1, b), wwt, b)));
    })([x, w3, w1, wt]);
    const oursHost = await Promise.all(ours.map((t) => t.data()));
    await selectBackend("cpu", {}, quiet);
    const [cx, cw3, cw1, cwt, cb] = hosts.map((h) => tf.tensor(h.data, h.shape));
    const ref = tf.grads((...a: tf.Tensor[]) => {
      const [xx, ww3, ww1, wwt] = a as [tf.Tensor4D, tf.Tensor4D, tf.Tensor2D, tf.Tensor4D];
      const h = tf.relu(tf.add(tf.conv2d(xx, ww3, 1, "same"), cb)) as tf.Tensor4D;
      const c = tf.add(
        tf.conv2d(h, tf.reshape(ww1, [1, 1, 5, 5]) as tf.Tensor4D, 1, "valid"),
        cb,
      ) as tf.Tensor4D;
      const [n, hh, wd] = c.shape;
      const filt = tf.transpose(wwt, [1, 2, 3, 0]) as tf.Tensor4D; // [2, 2, Co, Ci]
      return tf.sum(tf.square(tf.add(tf.conv2dTranspose(c, filt, [n, 2 * hh, 2 * wd, 5], 2, "valid"), cb)));
    })([cx, cw3, cw1, cwt] as [tf.Tensor4D, tf.Tensor4D, tf.Tensor2D, tf.Tensor4D]);
    for (let i = 0; i < ref.length; i++) {
      const r = await ref[i].data();
      const scale = Math.max(...Array.from(r, Math.abs));
      const d = Math.max(...Array.from(r, (v, j) => Math.abs(v - oursHost[i][j])));
      assert.ok(d <= 1e-4 * scale, `gradient ${i}: max diff ${d} vs scale ${scale}`);
    }
    tf.dispose([...ref, ...ours, cx, cw3, cw1, cwt, cb, x, w3, w1, wt, b]);
  });
}

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`conv ops: stride-2 3x3 conv (torch padding 1) matches tfjs autodiff, even and odd sizes (${backend})`, async () => {
    await selectBackend(backend, {}, quiet);
    for (const [h, w] of [[8, 6], [7, 9]]) {
      const x = tf.randomNormal([2, h, w, 3], 0, 1, "float32", 6) as tf.Tensor4D;
      const f = tf.randomNormal([3, 3, 3, 4], 0, 0.3, "float32", 7) as tf.Tensor4D;
      const r = tf.randomNormal([2, Math.ceil(h / 2), Math.ceil(w / 2), 4], 0, 1, "float32", 8);
      const hosts = await Promise.all([x, f, r].map(async (t) => ({ shape: t.shape, data: await t.data() })));
      const ours = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(conv3x3Stride2(a as tf.Tensor4D, b as tf.Tensor4D), r))
      )([x, f]);
      const y = conv3x3Stride2(x, f);
      const oursHost = await Promise.all([y, ...ours].map((t) => t.data()));
      await selectBackend("cpu", {}, quiet);
      const [cx, cf, cr] = hosts.map((t) => tf.tensor4d(t.data, t.shape as [number, number, number, number]));
      const ry = tf.conv2d(cx, cf, 2, 1);
      const ref = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 1), cr))
      )([cx, cf]);
      assert.deepEqual(y.shape, [2, Math.ceil(h / 2), Math.ceil(w / 2), 4]);
      for (const [i, t] of [ry, ...ref].entries()) {
        const v = await t.data();
        const scale = Math.max(...Array.from(v, Math.abs));
        const d = Math.max(...Array.from(v, (e, j) => Math.abs(e - oursHost[i][j])));
        assert.ok(d <= 1e-5 * scale, `[${h}, ${w}] output/gradient ${i}: max diff ${d} vs scale ${scale}`);
      }
      tf.dispose([x, f, r, y, ...ours, cx, cf, cr, ry, ...ref]);
      await selectBackend(backend, {}, quiet);
    }
  });
}
