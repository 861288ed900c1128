import assert from "node:assert/strict";
import { tf } from "./tf.ts";
import { selectBackend } from "./backend.ts";
import { Rng } from "./rng.ts";
import { ZERO_COPY_KERNELS } from "./wasm_kernels.ts";

const quiet = () => {};

/** Runs f on cpu and on wasm with the same inputs and returns both results' values and shapes. */
async function onBoth(
  values: Float32Array,
  shape: number[],
  dtype: "float32" | "int32" | "bool",
  f: (x: tf.Tensor) => tf.Tensor[],
) {
  const out: Array<Array<{ shape: number[]; data: number[] }>> = [];
  for (const backend of ["cpu", "wasm"] as const) {
    await selectBackend(backend, {}, quiet);
    const x = tf.tensor(
      dtype === "float32"
        ? values
        : Int32Array.from(values, (v) => dtype === "bool" ? (v > 0 ? 1 : 0) : Math.round(v * 100)),
      shape,
      dtype,
    );
    const ys = f(x);
    out.push(await Promise.all(ys.map(async (y) => ({ shape: y.shape, data: Array.from(await y.data()) }))));
    tf.dispose([x, ...ys]);
  }
  return out;
}

Deno.test("wasm's Identity, Slice, SplitV and Unpack are the zero-copy ones, and give cpu's numbers", async () => {
  await selectBackend("wasm", {}, quiet);
  for (const name of ZERO_COPY_KERNELS) {
    assert.ok((tf.getKernel(name, "wasm")?.kernelFunc as { zeroCopy?: boolean }).zeroCopy, name);
  }
  const rng = new Rng(5);
  const rand = () => rng.next();
  const int = (n: number) => rng.int(n);
  for (let trial = 0; trial < 60; trial++) {
    const rank = 1 + (trial % 6);
    const shape = Array.from({ length: rank }, () => 1 + int(5));
    const size = shape.reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: size }, () => rand() * 2 - 1);
    const begin = shape.map((s) => int(s));
    // Some axes whole (the contiguous runs), some cut, some -1 (to the end).
    const sz = shape.map((s, i) =>
      trial % 3 === 0 ? s - begin[i] : (rand() < 0.3 ? -1 : 1 + int(s - begin[i]))
    );
    const axis = int(rank);
    const dtype = (["float32", "int32", "bool"] as const)[trial % 3];
    const [cpu, wasm] = await onBoth(values, shape, dtype, (x) => [
      tf.slice(x, begin, sz),
      ...tf.split(x, [1, shape[axis] - 1].filter((s) => s > 0), axis),
      ...tf.unstack(x, axis),
      tf.clone(x),
    ]);
    assert.deepEqual(wasm, cpu, `shape ${shape} begin ${begin} size ${sz} axis ${axis} ${dtype}`);
  }
  await selectBackend("cpu", {}, quiet);
});

Deno.test("a clone on wasm shares its data and outlives the original", async () => {
  await selectBackend("wasm", {}, quiet);
  const x = tf.tensor1d([1, 2, 3]);
  const before = tf.memory().numDataBuffers;
  const y = tf.clone(x);
  assert.equal(tf.memory().numDataBuffers, before, "no new buffer for a clone");
  x.dispose();
  assert.deepEqual(Array.from(await y.data()), [1, 2, 3]);
  y.dispose();
  await selectBackend("cpu", {}, quiet);
});
