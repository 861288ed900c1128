import assert from "node:assert/strict";
import { tf } from "../../engine/tf.ts";
import { PRESETS } from "./config.ts";
import { longestSideShape, postprocessMasks, preprocess } from "./preprocess.ts";
import { linearResizeMatrix, resizeBilinear } from "./resize.ts";

await tf.setBackend("cpu");
const cfg = PRESETS.tiny;

Deno.test("preprocess normalises with the pixel mean/std and zero-pads bottom/right", async () => {
  const raw = tf.fill([1, 2, 3, 3], 255) as tf.Tensor4D;
  const x = preprocess(cfg, raw);
  assert.deepEqual(x.shape, [1, 64, 64, 3]);
  const v = await x.data();
  assert.ok(Math.abs(v[0] - (255 - 123.675) / 58.395) < 1e-6);
  assert.equal(v[3 * 3], 0, "column 3 is padding");
  assert.throws(
    () => preprocess(cfg, tf.zeros([1, 65, 10, 3]) as tf.Tensor4D),
    /larger than the model input 64x64/,
  );
});

Deno.test("linear resize weights follow torch (align_corners=False): identity, 2x up, 2x down", () => {
  assert.deepEqual(Array.from(linearResizeMatrix(3, 3).data), [1, 0, 0, 0, 1, 0, 0, 0, 1]);
  // Upsampling 2 -> 4: sources -0.25 (clamped), 0.25, 0.75, 1.25 (clamped to the last sample).
  assert.deepEqual(Array.from(linearResizeMatrix(2, 4).data), [1, 0, 0.75, 0.25, 0.25, 0.75, 0, 1]);
  assert.deepEqual(Array.from(linearResizeMatrix(4, 2).data), [0.5, 0.5, 0, 0, 0, 0, 0.5, 0.5]);
});

Deno.test("linear resize with align_corners=True: end samples map onto each other; agrees with tfjs alignCorners", async () => {
  // 3 -> 5: sources 0, 0.5, 1, 1.5, 2.
  assert.deepEqual(Array.from(linearResizeMatrix(3, 5, true).data), [
    1,
    0,
    0,
    0.5,
    0.5,
    0,
    0,
    1,
    0,
    0,
    0.5,
    0.5,
    0,
    0,
    1,
  ]);
  // 5 -> 3: sources 0, 2, 4 (plain sampling); one output takes the first sample.
  assert.deepEqual(Array.from(linearResizeMatrix(5, 3, true).data), [
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
  ]);
  assert.deepEqual(Array.from(linearResizeMatrix(4, 1, true).data), [1, 0, 0, 0]);
  const x = tf.randomNormal([2, 5, 7, 3], 0, 1, "float32", 3) as tf.Tensor4D;
  const ours = await resizeBilinear(x, 13, 4, true).data();
  const theirs = await tf.image.resizeBilinear(x, [13, 4], true).data();
  assert.ok(ours.every((v, i) => Math.abs(v - theirs[i]) < 1e-5));
});

Deno.test("bilinear upsampling agrees with tfjs resizeBilinear(halfPixelCenters), and postprocess crops", async () => {
  const x = tf.randomNormal([2, 5, 7, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const ours = await resizeBilinear(x, 13, 16).data();
  const theirs = await tf.image.resizeBilinear(x, [13, 16], false, true).data();
  let d = 0;
  for (let i = 0; i < ours.length; i++) d = Math.max(d, Math.abs(ours[i] - theirs[i]));
  assert.ok(d < 1e-5, String(d));
  const m = tf.randomNormal([1, 2, 16, 16], 0, 1, "float32", 2) as tf.Tensor4D;
  assert.deepEqual(postprocessMasks(cfg, m, [40, 30], [80, 60]).shape, [1, 2, 80, 60]);
  // Upsample to 64, crop the whole image, size unchanged: same as one plain resize to 64.
  const full = await postprocessMasks(cfg, m, [64, 64], [64, 64]).data();
  const plain = await tf.transpose(resizeBilinear(tf.transpose(m, [0, 2, 3, 1]) as tf.Tensor4D, 64, 64), [
    0,
    3,
    1,
    2,
  ]).data();
  let e = 0;
  for (let i = 0; i < full.length; i++) e = Math.max(e, Math.abs(full[i] - plain[i]));
  assert.ok(e < 1e-5);
});

Deno.test("ResizeLongestSide target shape rounds half up", () => {
  assert.deepEqual(longestSideShape(480, 640, 1024), [768, 1024]);
  assert.deepEqual(longestSideShape(72, 77, 80), [75, 80]);
});
