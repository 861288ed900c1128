import assert from "node:assert/strict";
import { tf } from "../../engine/tf.ts";
import { selectBackend } from "../../engine/backend.ts";
import { gelu, linear } from "./layers.ts";
import { mlpBlock } from "./mlp_block.ts";

const quiet = () => {};
await tf.setBackend("cpu");

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

Deno.test("mlpBlock, a chunk of tokens at a time, gives the plain MLP's values and gradients (cpu, wasm)", async () => {
  const [n, c, h] = [13, 6, 10]; // 13 tokens in chunks of 4: a short last chunk
  const draw = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 0.5, "float32", seed).dataSync();
  const data = {
    x: draw([2, n, c], 1),
    w1: draw([h, c], 2),
    b1: draw([h], 3),
    w2: draw([c, h], 4),
    b2: draw([c], 5),
  };
  const up = draw([2, n, c], 6);
  const run = async (backend: "cpu" | "wasm", chunked: boolean, trainable: boolean) => {
    await selectBackend(backend, {}, quiet);
    const x = tf.tensor3d(data.x, [2, n, c]);
    const w = [[data.w1, [h, c]], [data.b1, [h]], [data.w2, [c, h]], [data.b2, [c]]].map(([v, s]) =>
      tf.variable(tf.tensor(v as Float32Array, s as number[]), trainable)
    );
    const weight = tf.tensor3d(up, [2, n, c]);
    const f = (xx: tf.Tensor) => {
      const y = chunked
        ? mlpBlock(xx, w[0], w[1], w[2], w[3], 4)
        : linear(gelu(linear(xx, w[0], w[1])), w[2], w[3]);
      return tf.sum(tf.mul(y, weight));
    };
    const value = await f(x).data();
    const dx = await tf.grad(f)(x).data();
    const grads = trainable ? tf.variableGrads(() => f(x) as tf.Scalar, w as tf.Variable[]).grads : {};
    const dw = await Promise.all(Object.values(grads).map((g) => g.data()));
    tf.dispose([x, weight, ...w, ...Object.values(grads)]);
    return [value, dx, ...dw];
  };
  for (const trainable of [false, true]) {
    const want = await run("cpu", false, trainable);
    for (const backend of ["cpu", "wasm"] as const) {
      const got = await run(backend, true, trainable);
      assert.equal(got.length, want.length);
      for (let i = 0; i < want.length; i++) {
        assert.ok(
          maxDiff(got[i], want[i]) < 1e-4,
          `${backend} trainable=${trainable} output ${i}: ${maxDiff(got[i], want[i])}`,
        );
      }
    }
  }
  await selectBackend("cpu", {}, quiet);
});
