import assert from "node:assert/strict";
import { tf } from "../../engine/tf.ts";
import { PRESETS } from "./config.ts";
import { maskDecoder } from "./mask_decoder.ts";
import { disposeParams, initSamParams } from "./params.ts";
import { getDensePe, promptEncoder } from "./prompt_encoder.ts";

await tf.setBackend("cpu");
const cfg = PRESETS.tiny; // 64 px, 8x8 embedding, 32 channels

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

Deno.test("prompt encoder: empty, padding points, boxes and masks have the official shapes and tokens", async () => {
  const p = initSamParams(cfg, 1);
  const none = promptEncoder(p, cfg);
  assert.deepEqual(none.sparse.shape, [1, 0, 32]);
  assert.deepEqual(none.dense.shape, [1, 8, 8, 32]);
  const noMask = await p.get("prompt_encoder.no_mask_embed.weight")!.data();
  const dense = await none.dense.data();
  assert.equal(maxDiff(dense.slice(32 * 63), noMask), 0);

  const points = { coords: tf.tensor3d([[[3, 4], [10, 20]]]), labels: tf.tensor2d([[1, -1]]) };
  const withPad = promptEncoder(p, cfg, { points });
  assert.deepEqual(withPad.sparse.shape, [1, 3, 32], "a padding point is appended when no box follows");
  const tokens = await withPad.sparse.data();
  const notAPoint = await p.get("prompt_encoder.not_a_point_embed.weight")!.data();
  assert.equal(maxDiff(tokens.slice(32, 64), notAPoint), 0, "label -1 is exactly not_a_point_embed");
  assert.equal(maxDiff(tokens.slice(64, 96), notAPoint), 0);

  const both = promptEncoder(p, cfg, { points, boxes: tf.tensor2d([[1, 2, 30, 40]]) });
  assert.deepEqual(both.sparse.shape, [1, 4, 32], "points then two box corners, no padding point");
  const masks = promptEncoder(p, cfg, { masks: tf.zeros([2, 32, 32, 1]) as tf.Tensor4D });
  assert.deepEqual([masks.sparse.shape, masks.dense.shape], [[2, 0, 32], [2, 8, 8, 32]]);

  const pe = await getDensePe(p, cfg).data();
  assert.equal(pe.length, 8 * 8 * 32);
  assert.ok(pe.every((v) => Math.abs(v) <= 1));
  disposeParams(p);
});

Deno.test("mask decoder: single, multi and all masks; a batch-1 prompt broadcasts over a batch of images", async () => {
  const p = initSamParams(cfg, 2);
  const emb = tf.randomNormal([2, 8, 8, 32], 0, 1, "float32", 3) as tf.Tensor4D;
  const imagePe = getDensePe(p, cfg);
  const { sparse, dense } = promptEncoder(p, cfg);
  const input = { imageEmbeddings: emb, imagePe, sparse, dense };
  const single = maskDecoder(p, cfg, input, false);
  const multi = maskDecoder(p, cfg, input, true);
  const all = maskDecoder(p, cfg, input, "all");
  assert.deepEqual([single.masks.shape, single.iou.shape], [[2, 1, 32, 32], [2, 1]]);
  assert.deepEqual([multi.masks.shape, multi.iou.shape], [[2, 3, 32, 32], [2, 3]]);
  assert.deepEqual([all.masks.shape, all.iou.shape], [[2, 4, 32, 32], [2, 4]]);
  const allData = await all.masks.data();
  assert.equal(maxDiff((await single.masks.data()).slice(0, 1024), allData.slice(0, 1024)), 0);
  // Image 1 alone gives what the broadcast batch gave for it.
  const one = maskDecoder(
    p,
    cfg,
    { ...input, imageEmbeddings: tf.slice(emb, [1, 0, 0, 0], [1, 8, 8, 32]) },
    "all",
  );
  assert.ok(maxDiff(await one.masks.data(), allData.slice(4 * 1024)) < 1e-5);
  disposeParams(p);
});
