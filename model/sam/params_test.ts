import assert from "node:assert/strict";
import { tf } from "../../engine/tf.ts";
import { readStateDict } from "../checkpoint.ts";
import { loadSamConfig, PRESETS } from "./config.ts";
import { disposeParams, initSamParams, paramsFromStateDict, samParamShapes } from "./params.ts";
import { TINY_CONFIG, TINY_PTH, VIT_B_KEYS } from "./test_util.ts";

await tf.setBackend("cpu");

const count = (m: Map<string, number[]>, prefix = "") =>
  [...m].filter(([k]) => k.startsWith(prefix)).reduce((s, [, v]) => s + v.reduce((a, b) => a * b, 1), 0);

Deno.test("vit_b key set, order and shapes equal the official ViT-B state dict", async () => {
  const ref = JSON.parse(await Deno.readTextFile(VIT_B_KEYS));
  const ours = samParamShapes(PRESETS.vit_b);
  assert.deepEqual([...ours.keys()], Object.keys(ref.keys));
  assert.deepEqual(Object.fromEntries(ours), ref.keys);
  assert.equal(count(ours), 93_735_728);
  assert.equal(count(ours, "image_encoder."), 89_670_912);
  for (const [k, v] of Object.entries(ref.config)) {
    assert.deepEqual(PRESETS.vit_b[k as keyof typeof PRESETS.vit_b], v, k);
  }
});

Deno.test("tiny fixture: shapes from its config equal the checkpoint's, and loading is strict", async () => {
  const cfg = await loadSamConfig(TINY_CONFIG);
  const sd = await readStateDict(TINY_PTH);
  const shapes = samParamShapes(cfg);
  assert.deepEqual([...shapes.keys()], [...sd.keys()]);
  for (const [k, t] of sd) assert.deepEqual(t.shape, shapes.get(k), k);
  const before = tf.memory().numTensors;
  const p = paramsFromStateDict(sd, cfg, TINY_PTH);
  assert.equal(p.size, sd.size);
  assert.deepEqual(
    Array.from(await p.get("image_encoder.neck.1.bias")!.data()),
    Array.from(sd.get("image_encoder.neck.1.bias")!.data as Float32Array),
  );
  disposeParams(p);
  assert.equal(tf.memory().numTensors, before);

  const missing = new Map(sd);
  missing.delete("mask_decoder.iou_token.weight");
  missing.set("image_encoder.extra", sd.get("image_encoder.neck.1.bias")!);
  assert.throws(
    () => paramsFromStateDict(missing, cfg, "x.pth"),
    (e: Error) =>
      e.name === "CheckpointError" && /x\.pth/.test(e.message) &&
      /1 missing: mask_decoder\.iou_token\.weight/.test(e.message) &&
      /1 unexpected: image_encoder\.extra/.test(e.message),
  );
  assert.equal(tf.memory().numTensors, before, "nothing is built when the check fails");
  assert.throws(
    () => paramsFromStateDict(sd, PRESETS.tiny, "y.pth"),
    /shape mismatches: image_encoder\.pos_embed/,
  );
});

Deno.test("initSamParams is seeded, complete, and disposable", async () => {
  const before = tf.memory().numTensors;
  const a = initSamParams(PRESETS.tiny, 7),
    b = initSamParams(PRESETS.tiny, 7),
    c = initSamParams(PRESETS.tiny, 8);
  assert.deepEqual([...a.keys()], [...samParamShapes(PRESETS.tiny).keys()]);
  const w = "image_encoder.blocks.0.attn.qkv.weight";
  assert.deepEqual(await a.get(w)!.data(), await b.get(w)!.data());
  assert.notDeepEqual(await a.get(w)!.data(), await c.get(w)!.data());
  assert.deepEqual(new Set(await a.get("image_encoder.blocks.0.norm1.weight")!.data()), new Set([1]));
  const bound = 1 / Math.sqrt(PRESETS.tiny.embed_dim);
  assert.ok((await a.get(w)!.data()).every((x) => Math.abs(x) <= bound));
  for (const p of [a, b, c]) disposeParams(p);
  assert.equal(tf.memory().numTensors, before);
});
