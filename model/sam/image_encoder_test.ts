import assert from "node:assert/strict";
import { tf } from "../../engine/tf.ts";
import { PRESETS, type SamConfig } from "./config.ts";
import { imageEncoder } from "./image_encoder.ts";
import { linear, type Params } from "./layers.ts";
import { disposeParams, initSamParams } from "./params.ts";

/** tiny preset at 32 px (4x4 tokens, window 4 => no padding, 2 global blocks). */
const cfg: SamConfig = { ...PRESETS.tiny, image_size: 32 };

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function withLora(p: Params, rank: number, seed: number, trainable: boolean, zeroB = false): Params {
  const q = new Map(p);
  const c = cfg.embed_dim;
  for (let i = 0; i < cfg.depth; i++) {
    for (const n of ["q", "v"]) {
      const a = tf.randomUniform([rank, c], -0.2, 0.2, "float32", seed++);
      const b = zeroB ? tf.zeros([c, rank]) : tf.randomUniform([c, rank], -0.2, 0.2, "float32", seed++);
      q.set(`image_encoder.blocks.${i}.attn.lora_${n}_A`, trainable ? tf.variable(a) : a);
      q.set(`image_encoder.blocks.${i}.attn.lora_${n}_B`, trainable ? tf.variable(b) : b);
    }
  }
  return q;
}

/** The same model with each LoRA pair folded into the frozen qkv weight: W_q += B_q A_q, W_v += B_v A_v. */
function folded(p: Params, lora: Params): Params {
  const q = new Map(p);
  const c = cfg.embed_dim;
  for (let i = 0; i < cfg.depth; i++) {
    const pre = `image_encoder.blocks.${i}.attn`;
    const d = (n: string) => tf.matMul(lora.get(`${pre}.lora_${n}_B`)!, lora.get(`${pre}.lora_${n}_A`)!);
    q.set(
      `${pre}.qkv.weight`,
      tf.add(p.get(`${pre}.qkv.weight`)!, tf.concat([d("q"), tf.zeros([c, c]), d("v")], 0)),
    );
  }
  return q;
}

for (const backend of ["cpu", "wasm"]) {
  Deno.test(`${backend}: LoRA on q and v equals folding B A into the qkv weight; zero B changes nothing`, async () => {
    await tf.setBackend(backend);
    const p = initSamParams(cfg, 1);
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, "float32", 3) as tf.Tensor4D;
    const base = await imageEncoder(p, cfg, x).data();
    assert.equal(maxDiff(await imageEncoder(withLora(p, 4, 10, false, true), cfg, x).data(), base), 0);
    const lora = withLora(p, 4, 20, false);
    const a = await imageEncoder(lora, cfg, x).data();
    const b = await imageEncoder(folded(p, lora), cfg, x).data();
    assert.ok(maxDiff(a, base) > 1e-3, "LoRA changes the output");
    assert.ok(maxDiff(a, b) < 1e-4, `LoRA vs folded: ${maxDiff(a, b)}`);
    disposeParams(p);
  });

  Deno.test(`${backend}: LoRA trains through the frozen encoder: variableGrads match finite differences`, async () => {
    await tf.setBackend(backend);
    const p = withLora(initSamParams(cfg, 2), 2, 30, true);
    const x = tf.randomNormal([1, 32, 32, 3], 0, 1, "float32", 4) as tf.Tensor4D;
    const target = tf.randomNormal([1, 4, 4, cfg.out_chans], 0, 1, "float32", 5);
    const loss = () => tf.mean(tf.square(tf.sub(imageEncoder(p, cfg, x), target))) as tf.Scalar;
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(loss);
    const names = Object.keys(grads);
    assert.equal(names.length, 4 * cfg.depth, "exactly the LoRA variables get gradients");
    const key = "image_encoder.blocks.1.attn.lora_v_B";
    const v = p.get(key) as tf.Variable;
    const g = await grads[v.name].data() as Float32Array;
    assert.ok(Number.isFinite((await value.data())[0]));
    tf.dispose([value, ...Object.values(grads)]);
    assert.equal(tf.memory().numTensors, before, "no intermediates kept after the step");
    const i = g.reduce(
      (best: number, x: number, j: number) => (Math.abs(x) > Math.abs(g[best]) ? j : best),
      0,
    );
    const eps = 1e-2;
    const orig = await v.data() as Float32Array;
    const at = async (delta: number) => {
      const w = orig.slice();
      w[i] += delta;
      tf.tidy(() => v.assign(tf.tensor(w, v.shape)));
      const l = loss();
      const out = (await l.data())[0];
      l.dispose();
      return out;
    };
    const fd = ((await at(eps)) - (await at(-eps))) / (2 * eps);
    tf.tidy(() => v.assign(tf.tensor(orig, v.shape)));
    assert.ok(Math.abs(fd - g[i]) <= 2e-2 * Math.abs(g[i]) + 1e-6, `grad ${g[i]} vs finite difference ${fd}`);
    for (const t of p.values()) t.dispose();
  });
}

Deno.test("linear: trainable weights get gradients equal to plain autodiff; frozen ones are constants", async () => {
  await tf.setBackend("cpu");
  const x = tf.randomNormal([5, 3], 0, 1, "float32", 1);
  const w = tf.variable(tf.randomNormal([4, 3], 0, 1, "float32", 2));
  const b = tf.randomNormal([4], 0, 1, "float32", 3);
  const f = (xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.square(linear(xx, ww, b)));
  const plain = (xx: tf.Tensor, ww: tf.Tensor) =>
    tf.sum(tf.square(tf.add(tf.matMul(xx, ww, false, true), b)));
  const gx = tf.grad((xx: tf.Tensor) => f(xx, w))(x);
  const gw = tf.variableGrads(() => f(x, w) as tf.Scalar, [w]).grads[w.name];
  const [px, pw] = tf.grads(plain)([x, w]);
  assert.ok(maxDiff(await gx.data(), await px.data()) < 1e-5);
  assert.ok(maxDiff(await gw.data(), await pw.data()) < 1e-5);
  const frozen = tf.randomNormal([4, 3], 0, 1, "float32", 2);
  assert.ok(
    maxDiff(
      await tf.grad((xx: tf.Tensor) => f(xx, frozen))(x).data(),
      await tf.grads(plain)([x, frozen])[0].data(),
    ) < 1e-5,
  );
  assert.throws(() => tf.grads(f)([x, frozen]), /Cannot compute gradient/);
});

Deno.test("a batch run in passes of whole images (binding limit) gives the same numbers", async () => {
  await tf.setBackend("cpu");
  const p = initSamParams(cfg, 4);
  const x = tf.randomNormal([3, 32, 32, 3], 0, 1, "float32", 7) as tf.Tensor4D;
  const whole = await imageEncoder(p, cfg, x).data();
  const perImage = 16 * 4 * cfg.embed_dim * 4; // one image's MLP hidden layer
  const split = await imageEncoder(p, cfg, x, { maxActivationBytes: perImage }).data();
  assert.ok(maxDiff(whole, split) < 1e-6);
  disposeParams(p);
});

Deno.test("the encoder leaks no tensors and accepts other input sizes", async () => {
  await tf.setBackend("cpu");
  const p = initSamParams(cfg, 3);
  const x = tf.randomNormal([1, 48, 48, 3], 0, 1, "float32", 6) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  for (let i = 0; i < 2; i++) {
    const y = imageEncoder(p, cfg, x);
    assert.deepEqual(y.shape, [1, 6, 6, cfg.out_chans]);
    y.dispose();
    assert.equal(tf.memory().numTensors, before);
  }
  assert.throws(() => imageEncoder(p, cfg, tf.zeros([1, 30, 32, 3]) as tf.Tensor4D), /divisible by 8/);
  disposeParams(p);
});

for (const backend of ["cpu", "wasm"]) {
  Deno.test(`${backend}: activation checkpointing gives the same LoRA gradients and keeps fewer tensors alive`, async () => {
    await tf.setBackend(backend);
    const p = withLora(initSamParams(cfg, 3), 2, 40, true);
    const vars = [...p.values()].filter((t) => t instanceof tf.Variable) as tf.Variable[];
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, "float32", 4) as tf.Tensor4D;
    const target = tf.randomNormal([2, 4, 4, cfg.out_chans], 0, 1, "float32", 5);
    let peak = 0;
    const run = (checkpointBlocks: boolean) =>
      tf.variableGrads(() => {
        const y = imageEncoder(p, cfg, x, { checkpointBlocks });
        peak = tf.memory().numTensors;
        return tf.mean(tf.square(tf.sub(y, target))) as tf.Scalar;
      }, vars);
    const plain = run(false);
    const peakPlain = peak;
    const ckpt = run(true);
    const peakCkpt = peak;
    assert.ok(Math.abs((await plain.value.data())[0] - (await ckpt.value.data())[0]) < 1e-6);
    assert.equal(Object.keys(ckpt.grads).length, vars.length);
    for (const v of vars) {
      const d = maxDiff(await plain.grads[v.name].data(), await ckpt.grads[v.name].data());
      assert.ok(d < 1e-5, `${v.name}: ${d}`);
    }
    assert.ok(peakCkpt < peakPlain, `live tensors at the end of forward: ${peakCkpt} vs ${peakPlain}`);
    tf.dispose([
      plain.value,
      ckpt.value,
      ...Object.values(plain.grads),
      ...Object.values(ckpt.grads),
      x,
      target,
    ]);
    disposeParams(p);
  });
}
