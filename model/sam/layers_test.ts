import assert from "node:assert/strict";
import { tf } from "../../engine/tf.ts";
import { selectBackend } from "../../engine/backend.ts";
import { convTranspose2x2, gelu } from "./layers.ts";

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

Deno.test("gelu: torch's exact values, and its own gradient equals autodiff of the formula", async () => {
  const x = tf.tensor1d([-4, -1.5, -0.3, 0, 0.2, 1, 2.5, 6]);
  const plain = (t: tf.Tensor) => tf.mul(tf.mul(t, 0.5), tf.add(tf.erf(tf.mul(t, Math.SQRT1_2)), 1));
  const weights = tf.tensor1d([1, -2, 0.5, 3, -1, 2, 0.25, -0.5]);
  const [want, got] = await Promise.all(
    [plain, gelu].map((f) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), weights)))(x).data()),
  );
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) < 1e-6, `x[${i}]: ${got[i]} vs ${want[i]}`);
  }
  // torch.nn.functional.gelu(torch.tensor([-1.5, 1.0])) = [-0.1002, 0.8413]
  const v = await gelu(tf.tensor1d([-1.5, 1])).data();
  assert.ok(Math.abs(v[0] + 0.10021) < 1e-4 && Math.abs(v[1] - 0.84134) < 1e-4, String(v));
});
