import assert from "node:assert/strict";
import { tf } from "../engine/tf.ts";
import { selectBackend } from "../engine/backend.ts";
import { type BuildOptions, createLoraMedNet, LoraMedNet, loraMedNetSpec } from "./loramednet.ts";
import { cnnHeadParamCount } from "./heads/cnn_head.ts";
import { loraParamCount } from "./lora.ts";
import { ceDiceLoss } from "./losses.ts";
import { initSamParams } from "./sam/params.ts";
import { imageEncoder } from "./sam/image_encoder.ts";
import { resizeBilinear } from "./sam/resize.ts";
import { cnnHead, cnnHeadLayers } from "./heads/cnn_head.ts";
import { Adam } from "../engine/optimizer.ts";

const quiet = () => {};
const hasGpu = !!(await (navigator as Navigator & { gpu?: GPU }).gpu?.requestAdapter().catch(() => null));
if (!hasGpu) {
  console.error("loramednet_test: webgpu gradient check skipped: no WebGPU adapter on this machine");
}

/**
 * A toy LoRaMedNet (4x4 tokens, narrow head) with every gradient measurable: adapters' B non-zero, and head
 * weights He-scaled, since PyTorch's default init shrinks the signal ~2.5x per head layer and leaves the
 * encoder's gradients at ~1e-8, below what float32 finite differences resolve.
 */
function toy(seed = 1): LoraMedNet {
  const spec = loraMedNetSpec({
    method: "loramednet",
    preset: "tiny",
    weights: null,
    loraRank: 2,
    imageSize: 24,
    encoderSize: 32,
    headTopChannel: 4,
    headInit: "torch", // biases U(+-1/sqrt(fan_in)): no ReLU sits exactly at its kink
    numClasses: 4,
    seed,
  });
  const all = initSamParams(spec.sam, seed);
  const base = new Map([...all].filter(([k]) => k.startsWith("image_encoder.")));
  for (const [k, t] of all) if (!k.startsWith("image_encoder.")) t.dispose();
  const model = new LoraMedNet(spec, base, seed);
  let k = 0;
  for (const [name, v] of model.trainable) {
    k++;
    if (/lora_[qv]_B$/.test(name)) {
      tf.tidy(() => v.assign(tf.randomUniform(v.shape, -0.3, 0.3, "float32", 7 + k)));
    }
    if (/cnn_head.*weight$/.test(name)) {
      // In-memory layouts: conv1 [Ci, Co], conv3 [3, 3, Ci, Co], convT [Ci, 2, 2, Co].
      const fanIn = v.shape.length === 2
        ? v.shape[0]
        : v.shape[0] === 3 && v.shape[1] === 3
        ? 9 * v.shape[2]!
        : v.shape[0];
      tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, Math.sqrt(2 / fanIn), "float32", 100 + k)));
    }
  }
  return model;
}

Deno.test("vit_b LoRaMedNet: head 20,686,340 + rank-4 LoRA 147,456 = 20,833,796 trainable", () => {
  const spec = loraMedNetSpec({
    method: "loramednet",
    preset: "vit_b",
    weights: null,
    loraRank: 4,
    imageSize: 224,
    encoderSize: null,
    headTopChannel: null,
    numClasses: 4,
    seed: 0,
  });
  assert.equal(cnnHeadParamCount(spec.head) + loraParamCount(spec.sam, spec.rank), 20_833_796);
  assert.equal(spec.sam.image_size, 1024);
});

Deno.test("LoRaMedNet: logits are [B, S, S, C]; fresh adapters (B = 0) leave the encoder unchanged", async () => {
  await selectBackend("cpu", {}, quiet);
  const opts: BuildOptions = {
    method: "loramednet",
    preset: "tiny",
    weights: null,
    loraRank: 4,
    imageSize: 24,
    encoderSize: 32,
    headTopChannel: 2,
    numClasses: 4,
    seed: 3,
  };
  const { model } = await createLoraMedNet(opts);
  const { model: plain } = await createLoraMedNet({ ...opts, method: "cnn-head" });
  const x = tf.randomNormal([2, 24, 24, 3], 0, 1, "float32", 5) as tf.Tensor4D;
  const a = model.forward(x), b = plain.forward(x);
  assert.deepEqual(a.shape, [2, 24, 24, 4]);
  assert.deepEqual(await a.data(), await b.data());
  assert.equal(model.counts().trainable - plain.counts().trainable, loraParamCount(model.spec.sam, 4));
  tf.dispose([x, a, b]);
  model.dispose();
  plain.dispose();
});

/**
 * Central difference along a random unit direction d of one variable, (f(w + h d) - f(w - h d)) / 2h, against
 * the analytic <grad, d>. Returns the relative error.
 */
async function directional(v: tf.Variable, grad: tf.Tensor, f: () => tf.Scalar, h: number, seed: number) {
  const orig = Float32Array.from(await v.data());
  const d = Float32Array.from(await tf.tidy(() => tf.randomNormal(v.shape, 0, 1, "float32", seed)).data());
  const norm = Math.hypot(...d);
  d.forEach((_, i) => (d[i] /= norm));
  const at = async (step: number) => {
    tf.tidy(() => v.assign(tf.tensor(orig.map((w, i) => w + step * d[i]), v.shape)));
    const l = f();
    const out = (await l.data())[0];
    l.dispose();
    return out;
  };
  const numeric = ((await at(h)) - (await at(-h))) / (2 * h);
  tf.tidy(() => v.assign(tf.tensor(orig, v.shape)));
  const analytic = Array.from(await grad.data()).reduce((s, gi, i) => s + gi * d[i], 0);
  // A vanishing gradient (e.g. behind a dead ReLU) would make the check vacuous.
  assert.ok(Math.abs(analytic) > 1e-4, `gradient . d is ${analytic}; the probe checks nothing`);
  return { analytic, numeric, rel: Math.abs(numeric - analytic) / Math.abs(analytic) };
}

/** Checks every probe's gradient of f against finite differences; returns the worst relative error. */
async function gradCheck(
  vars: ReadonlyMap<string, tf.Variable>,
  probes: string[],
  f: () => tf.Scalar,
  h: number,
  tol: number,
): Promise<number> {
  const names = new Map([...vars].map(([k, v]) => [v.name, k]));
  const { value, grads } = tf.variableGrads(f, probes.map((p) => vars.get(p)!));
  const byName = new Map(Object.entries(grads).map(([k, t]) => [names.get(k)!, t]));
  let worst = 0;
  try {
    for (const [k, name] of probes.entries()) {
      const r = await directional(vars.get(name)!, byName.get(name)!, f, h, 50 + k);
      worst = Math.max(worst, r.rel);
      if (Deno.env.get("GRADCHECK_VERBOSE")) console.error(name, r);
      assert.ok(
        r.rel < tol,
        `${name}: analytic ${r.analytic} vs numeric ${r.numeric} (rel ${r.rel.toExponential(2)})`,
      );
    }
  } finally {
    tf.dispose([value, ...Object.values(grads)]);
  }
  return worst;
}

const LORA_PROBES = [
  "image_encoder.blocks.0.attn.lora_q_A",
  "image_encoder.blocks.1.attn.lora_q_B",
  "image_encoder.blocks.2.attn.lora_v_B",
  "image_encoder.blocks.3.attn.lora_v_A",
];
const HEAD_PROBES = [
  "cnn_head.input_block.0.weight",
  "cnn_head.blocks.0.0.weight",
  "cnn_head.blocks.1.2.bias",
  "cnn_head.blocks.2.4.weight",
  "cnn_head.blocks.3.2.weight",
  "cnn_head.final.1.weight",
];

for (const backend of ["cpu", "wasm", "webgpu"] as const) {
  Deno.test({
    name: `gradient check (${backend}): LoRA and head gradients agree with central finite differences`,
    ignore: backend === "webgpu" && !hasGpu,
    fn: async () => {
      await selectBackend(backend, {}, quiet);
      const model = toy();
      const m = model as unknown as { encoderParams: Map<string, tf.Tensor>; head: Map<string, tf.Variable> };
      const x = tf.randomNormal([2, 24, 24, 3], 0, 1, "float32", 11) as tf.Tensor4D;
      const xe = resizeBilinear(x, 32, 32);
      // Random linear readouts keep float32 differences clean. The adapters go through the smooth encoder (GELU,
      // softmax, LayerNorm): tight agreement. The head is piecewise linear, so differences crossing ReLU kinks
      // limit FD to a few percent; the next test checks the head's gradients exactly instead.
      const r1 = tf.randomNormal([2, 4, 4, 32], 0, 1, "float32", 12);
      const lora = await gradCheck(
        model.trainable,
        LORA_PROBES,
        () =>
          tf.tidy(() => tf.sum(tf.mul(imageEncoder(m.encoderParams, model.spec.sam, xe), r1)) as tf.Scalar),
        0.1,
        5e-3,
      );
      const emb = imageEncoder(m.encoderParams, model.spec.sam, xe);
      const r2 = tf.randomNormal([2, 16, 16, 4], 0, 1, "float32", 13);
      const head = await gradCheck(
        model.trainable,
        HEAD_PROBES,
        () => tf.tidy(() => tf.sum(tf.mul(cnnHead(m.head, model.spec.head, emb), r2)) as tf.Scalar),
        1e-3,
        5e-2,
      );
      // End to end with the training loss (its float32 rounding limits the agreement to a few percent).
      const y = tf.tensor3d(
        Int32Array.from({ length: 2 * 24 * 24 }, (_, i) => ((i >> 3) + (i >> 7)) % 4),
        [2, 24, 24],
        "int32",
      );
      const full = await gradCheck(
        model.trainable,
        [LORA_PROBES[3], HEAD_PROBES[3], HEAD_PROBES[5]],
        () => tf.tidy(() => ceDiceLoss(model.forward(x), y)),
        1e-2,
        5e-2,
      );
      console.error(
        `gradient check (${backend}): worst relative error LoRA ${lora.toExponential(1)}, head ` +
          `${head.toExponential(1)}, end to end with CE + Dice ${full.toExponential(1)}`,
      );
      tf.dispose([x, xe, r1, r2, emb, y]);
      model.dispose();
    },
  });
}

Deno.test("head gradients equal tfjs's own autodiff of the same head built from conv2d / conv2dTranspose", async () => {
  await selectBackend("cpu", {}, quiet);
  const model = toy(6);
  const m = model as unknown as { head: Map<string, tf.Variable> };
  const cfg = model.spec.head;
  const reference = (x: tf.Tensor4D) => {
    let h: tf.Tensor4D = x;
    for (const l of cnnHeadLayers(cfg)) {
      const w = m.head.get(`${l.name}.weight`)!, b = m.head.get(`${l.name}.bias`)!;
      if (l.kind === "conv1") {
        h = tf.conv2d(h, tf.reshape(w, [1, 1, l.cin, l.cout]) as tf.Tensor4D, 1, "valid");
      } else if (l.kind === "conv3") h = tf.conv2d(h, w as tf.Tensor4D, 1, "same");
      else {
        const [n, hh, ww] = h.shape;
        const filter = tf.transpose(w, [1, 2, 3, 0]) as tf.Tensor4D; // [2, 2, Co, Ci]
        h = tf.conv2dTranspose(h, filter, [n, 2 * hh, 2 * ww, l.cout], 2, "valid");
      }
      h = tf.add(h, b) as tf.Tensor4D;
      if (l.relu) h = tf.relu(h);
    }
    return h;
  };
  const emb = tf.randomNormal([2, 4, 4, cfg.inChans], 0, 1, "float32", 21) as tf.Tensor4D;
  const r = tf.randomNormal([2, 16, 16, 4], 0, 1, "float32", 22);
  const vars = [...m.head.values()];
  const ours = tf.variableGrads(() => tf.sum(tf.mul(cnnHead(m.head, cfg, emb), r)) as tf.Scalar, vars);
  const ref = tf.variableGrads(() => tf.sum(tf.mul(reference(emb), r)) as tf.Scalar, vars);
  for (const [name, g] of Object.entries(ref.grads)) {
    const [a, b] = [await ours.grads[name].data(), await g.data()];
    const scale = Math.max(...Array.from(b, Math.abs));
    const diff = Math.max(...Array.from(b, (v, i) => Math.abs(v - a[i])));
    assert.ok(scale > 0 && diff <= 1e-5 * scale, `${name}: max diff ${diff} (scale ${scale})`);
  }
  tf.dispose([emb, r, ours.value, ref.value, ...Object.values(ours.grads), ...Object.values(ref.grads)]);
  model.dispose();
});

Deno.test("a training step changes the adapters and head but not one frozen weight", async () => {
  await selectBackend("wasm", {}, quiet);
  const model = toy(2);
  const base = (model as unknown as { base: Map<string, tf.Tensor> }).base;
  const before = new Map(
    await Promise.all([...base].map(async ([k, t]) => [k, Float32Array.from(await t.data())] as const)),
  );
  const trainBefore = new Map(
    await Promise.all(
      [...model.trainable].map(async ([k, t]) => [k, Float32Array.from(await t.data())] as const),
    ),
  );
  const opt = new Adam(model.trainable, { lr: 1e-3, beta1: 0.5, beta2: 0.999, eps: 1e-8 });
  const x = tf.randomNormal([2, 24, 24, 3], 0, 1, "float32", 3) as tf.Tensor4D;
  const y = tf.tensor3d(Int32Array.from({ length: 2 * 576 }, (_, i) => i % 4), [2, 24, 24], "int32");
  const names = new Map([...model.trainable].map(([k, v]) => [v.name, k]));
  const { value, grads } = tf.variableGrads(() => ceDiceLoss(model.forward(x), y), [
    ...model.trainable.values(),
  ]);
  opt.step(new Map(Object.entries(grads).map(([k, t]) => [names.get(k)!, t])));
  for (const [k, t] of base) assert.deepEqual(await t.data(), before.get(k), `frozen ${k} changed`);
  for (const [k, t] of model.trainable) {
    assert.notDeepEqual(await t.data(), trainBefore.get(k), `trainable ${k} did not move`);
  }
  tf.dispose([value, ...Object.values(grads), x, y]);
  opt.dispose();
  model.dispose();
});

Deno.test("merged LoRA weights give the same logits as the adapters; weights round-trip through torch layouts", async () => {
  await selectBackend("cpu", {}, quiet);
  const model = toy(4);
  const x = tf.randomNormal([1, 24, 24, 3], 0, 1, "float32", 9) as tf.Tensor4D;
  const a = model.forward(x);
  const saved = await model.exportTrainable();
  assert.deepEqual(saved.get("cnn_head.blocks.0.0.weight")!.shape, [64, 64, 3, 3]);
  assert.deepEqual(saved.get("image_encoder.blocks.0.attn.lora_q_A")!.shape, [2, 32]);
  model.merge();
  const b = model.forward(x);
  const [da, db] = [await a.data(), await b.data()];
  const scale = Math.max(...Array.from(da, Math.abs));
  assert.ok(Math.max(...Array.from(da, (v, i) => Math.abs(v - db[i]))) <= 1e-5 * scale);
  const other = toy(4);
  for (const v of other.trainable.values()) tf.tidy(() => v.assign(tf.zerosLike(v)));
  other.importTrainable(saved, "saved");
  other.merge();
  const c = other.forward(x);
  assert.deepEqual(await c.data(), db);
  assert.throws(
    () => other.importTrainable(new Map([...saved].slice(1)), "cut.safetensors"),
    /cut.safetensors: does not fit/,
  );
  tf.dispose([x, a, b, c]);
  model.dispose();
  other.dispose();
});
