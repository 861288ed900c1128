import assert from "node:assert/strict";
import { tf } from "../engine/tf.ts";
import { selectBackend } from "../engine/backend.ts";
import { Adam } from "../engine/optimizer.ts";
import { ceDiceLoss } from "./losses.ts";
import { createSegmenter, type MethodName, type MethodOptions, methodParamCounts } from "./methods.ts";
import { convTranspose2x2 } from "./sam/layers.ts";

import { createVitHead } from "./vit_head.ts";

const quiet = () => {};

/** max |t| as a number, leaving no tensor behind (and disposing t when owned). */
async function maxAbs(t: tf.Tensor, owned = false): Promise<number> {
  const m = tf.tidy(() => tf.max(tf.abs(t)));
  const v = (await m.data())[0];
  tf.dispose(owned ? [m, t] : [m]);
  return v;
}
const VIT_B: Omit<MethodOptions, "method"> = {
  preset: "vit_b",
  weights: null,
  seed: 0,
  imageSize: 224,
  encoderSize: null,
  loraRank: 4,
  headTopChannel: null,
  numClasses: 4,
};
/** A tiny build: 2 x 2 tokens at a 16 px encoder, a 16 px grid. */
const tinyOpts = (method: MethodName, seed = 0): MethodOptions => ({
  ...VIT_B,
  method,
  preset: "tiny",
  seed,
  imageSize: 16,
  encoderSize: method === "gnet" ? 64 : 16, // the g-network reads half the encoder size, pooled 16x
  headTopChannel: 2,
});

Deno.test("methods: vit_b parameter counts from the architecture (docs/methods.md 2.6)", () => {
  const counts = (method: MethodName) => methodParamCounts({ ...VIT_B, method });
  assert.deepEqual(counts("loramednet"), { trainable: 20_833_796, frozen: 89_670_912 });
  assert.deepEqual(counts("cnn-head"), { trainable: 20_686_340, frozen: 89_670_912 });
  // Transformer 3,291,264 + upscaling 73,952 + hypernetwork MLPs 0-1 2 x 139,808 + mask tokens 8 x 256; the
  // frozen side adds the IoU token (4 x 256) and the 2-output IoU head (132,098) to the encoder.
  assert.deepEqual(counts("vit-head"), { trainable: 3_646_880, frozen: 89_670_912 + 133_122 });
  // LoRA 147,456 + prompt encoder 6,220 + mask decoder with 4 tokens 4,058,340.
  assert.deepEqual(counts("samed"), { trainable: 147_456 + 6_220 + 4_058_340, frozen: 89_670_912 });
  // HarDNet-85 to 1/16 (17,883,548) + the 3-class decoder (7,348,736); SAM frozen: encoder, mask decoder, PE.
  assert.deepEqual(counts("gnet"), { trainable: 25_232_284, frozen: 93_729_508 });
});

for (const method of ["vit-head", "samed", "loramednet", "gnet"] as const) {
  Deno.test(`${method}: a tiny build counts what the architecture says, and every used part trains (wasm)`, async () => {
    await selectBackend("wasm", {}, quiet);
    const before = tf.memory().numTensors;
    const { model, base } = await createSegmenter(tinyOpts(method));
    assert.equal(base.source, "random");
    assert.deepEqual(model.counts(), methodParamCounts(tinyOpts(method)));
    const x = tf.randomUniform([2, 16, 16, 3], 0, 1, "float32", 3) as tf.Tensor4D;
    const y = tf.tensor3d(
      Int32Array.from({ length: 2 * 16 * 16 }, (_, i) => (i >> 3) % 4),
      [2, 16, 16],
      "int32",
    );
    const out = model.forward(x);
    assert.deepEqual(out.shape, [2, 16, 16, 4]);
    out.dispose();
    const { grads, value } = tf.variableGrads(() => (model.loss ?? ceDiceLoss)(model.forward(x, true), y), [
      ...model.trainable.values(),
    ]);
    const byName = new Map([...model.trainable].map(([k, v]) => [v.name, k]));
    const withGrad = new Set(Object.keys(grads).map((n) => byName.get(n)!));
    // SAMed trains its whole prompt encoder, but without prompts only no_mask_embed is used; no loss reads
    // the IoU head.
    const unused = [...model.trainable.keys()].filter((k) => !withGrad.has(k));
    const expectedUnused = method === "samed"
      ? [...model.trainable.keys()].filter((k) =>
        (k.startsWith("prompt_encoder.") && !k.includes("no_mask_embed")) || k.includes("iou_prediction_head")
      )
      : [];
    assert.deepEqual(unused.sort(), expectedUnused.sort());
    for (const [n, g] of Object.entries(grads)) {
      if (byName.get(n)!.includes("upscaling.0.weight")) {
        assert.ok(await maxAbs(g) > 0, "the transposed-conv weight gets a real gradient");
      }
    }
    tf.dispose([value, ...Object.values(grads)]);
    // A few Adam steps on one batch: the loss falls and no tensor leaks.
    const opt = new Adam(model.trainable, { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    const losses: number[] = [];
    let counted = 0;
    for (let i = 0; i < 6; i++) {
      const names = new Map([...model.trainable].map(([k, v]) => [v.name, k]));
      const r = tf.variableGrads(() => (model.loss ?? ceDiceLoss)(model.forward(x, true), y), [
        ...model.trainable.values(),
      ]);
      opt.step(new Map(Object.entries(r.grads).map(([vn, g]) => [names.get(vn)!, g])));
      losses.push((await r.value.data())[0]);
      tf.dispose([r.value, ...Object.values(r.grads)]);
      if (i === 1) counted = tf.memory().numTensors;
    }
    assert.equal(tf.memory().numTensors, counted, "tensor count flat across steps");
    assert.ok(losses[5] < losses[0], `loss falls: ${losses.map((l) => l.toFixed(3)).join(" ")}`);
    // Trained weights round-trip through the portable form, into a fresh model of the same method.
    const saved = await model.exportTrainable();
    const { model: other } = await createSegmenter(tinyOpts(method)); // same frozen base, fresh trainables
    other.importTrainable(saved, "saved.safetensors");
    model.merge();
    other.merge();
    const [a, b] = [model.forward(x), other.forward(x)];
    assert.ok(await maxAbs(tf.sub(a, b), true) < 1e-4, "same weights, same logits (merged)");
    const wrong = new Map(saved);
    wrong.delete([...saved.keys()][0]);
    assert.throws(
      () => other.importTrainable(wrong, "bad.safetensors"),
      /bad\.safetensors: (does not fit|weights do not fit)/,
    );
    tf.dispose([a, b, x, y]);
    opt.dispose();
    model.dispose();
    other.dispose();
    assert.equal(tf.memory().numTensors, before);
  });
}

Deno.test("vit-head: the IoU parts stay frozen; --random-pe swaps SAM's positional encoding for a random one", async () => {
  await selectBackend("cpu", {}, quiet);
  const { model } = await createVitHead({ ...tinyOpts("vit-head"), randomPe: false });
  const { model: quirk } = await createVitHead({ ...tinyOpts("vit-head"), randomPe: true });
  assert.ok(![...model.trainable.keys()].some((k) => k.includes("iou")));
  assert.ok([...model.trainable.keys()].includes("mask_decoder.mask_tokens.weight"));
  const x = tf.randomUniform([1, 16, 16, 3], 0, 1, "float32", 5) as tf.Tensor4D;
  // Same seed, same tokens and decoder: only the positional encoding differs.
  assert.ok(await maxAbs(tf.tidy(() => tf.sub(model.forward(x), quirk.forward(x))), true) > 1e-6);
  model.dispose();
  quirk.dispose();
});

Deno.test("convTranspose2x2: a trainable weight's gradient matches finite differences (wasm)", async () => {
  await selectBackend("wasm", {}, quiet);
  const x = tf.randomNormal([1, 2, 2, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const w = tf.variable(tf.randomNormal([3, 2, 2, 2], 0, 1, "float32", 2));
  const b = tf.zeros([2]);
  const r = tf.randomNormal([1, 4, 4, 2], 0, 1, "float32", 3);
  const f = () => tf.sum(tf.mul(convTranspose2x2(x, w, b), r)) as tf.Scalar;
  const { grads } = tf.variableGrads(f, [w]);
  const g = await grads[w.name].data();
  const base = await w.data();
  const h = 1e-2;
  for (const i of [0, 5, 11, 23]) {
    const plus = Float32Array.from(base), minus = Float32Array.from(base);
    plus[i] += h;
    minus[i] -= h;
    w.assign(tf.tensor(plus, w.shape));
    const fp = (await f().data())[0];
    w.assign(tf.tensor(minus, w.shape));
    const fm = (await f().data())[0];
    assert.ok(Math.abs((fp - fm) / (2 * h) - g[i]) < 1e-2, `dw[${i}]`);
  }
});
