import assert from "node:assert/strict";
import { tf } from "../engine/tf.ts";
import { selectBackend } from "../engine/backend.ts";
import { createSegmenter, type MethodName } from "../model/methods.ts";
import { Adam } from "../engine/optimizer.ts";
import { disposeBatch, makeBatch } from "./batch.ts";
import { EmbeddingCache } from "./embedding_cache.ts";
import { trainStep } from "./train.ts";
import { predictSlices } from "./predict_slices.ts";
import type { SliceItem } from "./volume.ts";

const S = 16;

function slices(n: number, seed: number): SliceItem[] {
  let r = seed;
  const next = () => ((r = (r * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  return Array.from({ length: n }, (_, z) => ({
    id: `v${seed}_z${z}`,
    volumeId: `v${seed}`,
    patient: "p",
    z,
    height: S,
    width: S,
    channels: 3,
    image: Float32Array.from({ length: S * S * 3 }, next),
    label: new Uint8Array(S * S),
    originalHeight: S,
    originalWidth: S,
  }));
}

const tiny = (method: MethodName) => ({
  method,
  preset: "tiny" as const,
  weights: null,
  seed: 3,
  imageSize: S,
  encoderSize: method === "gnet" ? 64 : 16,
  loraRank: 4,
  headTopChannel: 2,
  numClasses: 4,
});

for (const method of ["cnn-head", "vit-head", "gnet"] as const) {
  Deno.test(`${method}: forward = decode(encode); cached validation gives the same maps and skips the encoder`, async () => {
    await selectBackend("cpu", {}, () => {});
    const { model } = await createSegmenter(tiny(method));
    const before = tf.memory().numTensors;
    try {
      assert.ok(model.encode && model.decode, `${method} exposes its frozen encoder`);
      const items = slices(5, 1);
      const x = tf.randomNormal([2, S, S, 3], 0, 1, "float32", 4) as tf.Tensor4D;
      const whole = model.forward(x), emb = model.encode(x), split = model.decode(x, emb);
      assert.deepEqual(await split.data(), await whole.data());
      tf.dispose([x, whole, emb, split]);

      const plain = await predictSlices(model, items, 2);
      let encodes = 0;
      const encode = model.encode;
      (model as { encode?: typeof encode }).encode = (t) => (encodes++, encode(t));
      const cache = new EmbeddingCache(1 << 30);
      const first = await predictSlices(model, items, 2, cache);
      const second = await predictSlices(model, items, 2, cache);
      assert.deepEqual(first, plain);
      assert.deepEqual(second, plain);
      assert.equal(encodes, 3, "3 batches encoded once, none on the second pass");
      assert.equal(cache.size, 5);
      assert.equal(cache.hits, 5);
      assert.equal(tf.memory().numTensors, before, "no tensor outlives the calls");
    } finally {
      model.dispose();
    }
  });
}

Deno.test("loramednet (LoRA trains the encoder): no encode, so a cache is never used", async () => {
  await selectBackend("cpu", {}, () => {});
  const { model } = await createSegmenter(tiny("loramednet"));
  try {
    assert.equal(model.encode, undefined);
    const cache = new EmbeddingCache(1 << 30);
    assert.deepEqual(
      await predictSlices(model, slices(3, 2), 2, cache),
      await predictSlices(model, slices(3, 2), 2),
    );
    assert.equal(cache.size, 0);
  } finally {
    model.dispose();
  }
});

Deno.test("embedding cache: stops growing at its bound, keeps the first entries, never replaces one", () => {
  const cache = new EmbeddingCache(3 * 16);
  for (let i = 0; i < 5; i++) cache.set(`s${i}`, new Float32Array(4).fill(i), [1, 1, 4]);
  assert.equal(cache.size, 3);
  assert.equal(cache.byteLength, 48);
  assert.equal(cache.get("s4"), undefined);
  assert.equal(cache.set("s0", new Float32Array(4).fill(9), [1, 1, 4]), false);
  assert.deepEqual([...cache.get("s0")!.data], [0, 0, 0, 0]);
  assert.deepEqual([cache.hits, cache.misses], [1, 1]);
});

Deno.test("training from cached embeddings: the same weights as without, the encoder run once per slice", async () => {
  await selectBackend("cpu", {}, () => {});
  const items = slices(4, 5).map((s, i) => ({
    ...s,
    label: new Uint8Array(S * S).map((_, p) => (p + i) % 4),
  }));
  const weights: Float32Array[][] = [];
  for (const cached of [false, true]) {
    const { model } = await createSegmenter(tiny("cnn-head"));
    const optimizer = new Adam(model.trainable, { lr: 1e-2, beta1: 0.5, beta2: 0.999, eps: 1e-8 });
    const cache = cached ? new EmbeddingCache(1 << 30) : undefined;
    let encodes = 0;
    const encode = model.encode!;
    (model as { encode?: typeof encode }).encode = (t) => (encodes++, encode(t));
    const before = tf.memory().numTensors;
    try {
      for (let epoch = 0; epoch < 3; epoch++) {
        for (const part of [items.slice(0, 2), items.slice(2)]) {
          const batch = makeBatch(part);
          try {
            await trainStep(model, optimizer, batch, undefined, cache);
          } finally {
            disposeBatch(batch);
          }
        }
      }
      assert.equal(tf.memory().numTensors, before, "no tensor outlives the steps");
      if (cached) {
        assert.deepEqual([encodes, cache!.hits], [2, 8], "2 batches encoded once, then read 2 x 4 times");
      }
      weights.push(
        await Promise.all([...model.trainable.values()].map(async (v) => (await v.data()) as Float32Array)),
      );
    } finally {
      optimizer.dispose();
      model.dispose();
    }
  }
  assert.deepEqual(weights[1], weights[0]);
});
