import assert from "node:assert/strict";
import { collect, pipe } from "./pipe.ts";
import { prefetch } from "./prefetch.ts";
import { tf } from "../engine/tf.ts";
import { batch, disposeBatch, makeBatch, stackSlices } from "./batch.ts";
import type { SliceItem } from "./volume.ts";
import { testSlice } from "./test_volume.ts";

function slice(id: string, h = 4, w = 5, fill = 1): SliceItem {
  return testSlice(id, h, w, (i) => fill + i / 100, (i) => i % 4);
}

Deno.test("batch: NHWC float32 images and int32 labels with the slices' values", async () => {
  await tf.setBackend("cpu");
  const b = makeBatch([slice("a", 4, 5, 1), slice("b", 4, 5, 2)]);
  try {
    assert.deepEqual(b.image.shape, [2, 4, 5, 3]);
    assert.deepEqual(b.label.shape, [2, 4, 5]);
    assert.equal(b.image.dtype, "float32");
    assert.equal(b.label.dtype, "int32");
    assert.deepEqual(b.ids, ["a", "b"]);
    const img = await b.image.data();
    assert.ok(Math.abs(img[60] - 2) < 1e-6, "second slice starts at H*W*C");
    assert.deepEqual(Array.from((await b.label.data()).slice(0, 5)), [0, 1, 2, 3, 0]);
  } finally {
    disposeBatch(b);
  }
  assert.throws(() => stackSlices([slice("a"), slice("b", 5, 5)]), /slice b is 5x5x3/);
  assert.throws(() => stackSlices([]), RangeError);
});

Deno.test("batch: the stage groups, keeps or drops the tail, and leaks no tensors once disposed", async () => {
  await tf.setBackend("cpu");
  const items = Array.from({ length: 7 }, (_, i) => slice(`s${i}`));
  const start = tf.memory().numTensors;
  const batches = await collect(pipe(items, batch(3)));
  assert.deepEqual(batches.map((b) => b.ids.length), [3, 3, 1]);
  assert.equal(tf.memory().numTensors, start + 6);
  batches.forEach(disposeBatch);
  const dropped = await collect(pipe(items, batch(3, { dropLast: true })));
  assert.deepEqual(dropped.map((b) => b.image.shape[0]), [3, 3]);
  dropped.forEach(disposeBatch);
  // a consumer that stops early behind prefetch: read-ahead batches are disposed for it
  for await (const b of pipe(items, batch(1), prefetch(2, { dispose: disposeBatch }))) {
    disposeBatch(b);
    break;
  }
  assert.equal(tf.memory().numTensors, start);
});
