import assert from "node:assert/strict";
import { tf } from "../../engine/tf.ts";
import { selectBackend } from "../../engine/backend.ts";
import { convTranspose2x2 } from "./layers.ts";

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`layers: gradients flow through a frozen transposed conv inside a tidy (${backend})`, async () => {
    await selectBackend(backend, {}, () => {});
    // The g-network trains through SAM's frozen mask decoder, whose tidy frees the filter reshaped inside
    // convTranspose2x2 before the backward pass (wasm then fails on the freed buffer).
    const w = tf.randomNormal([4, 3, 2, 2], 0, 1, "float32", 1); // [Ci, Co, 2, 2], a constant
    const b = tf.zeros([3]);
    const x = tf.randomNormal([1, 2, 2, 4], 0, 1, "float32", 2) as tf.Tensor4D;
    const [dx] = tf.grads((xi: tf.Tensor) =>
      tf.sum(tf.tidy(() => convTranspose2x2(xi as tf.Tensor4D, w, b)))
    )([
      x,
    ]);
    // d sum / dx[.., i] = the sum of every output weight of input channel i.
    const expected = await tf.sum(w, [1, 2, 3]).data();
    const got = await dx.data();
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - expected[i % 4]) < 1e-5, `dx[${i}]`);
    tf.dispose([w, b, x, dx]);
  });
}
