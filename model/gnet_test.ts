import assert from "node:assert/strict";
import { tf } from "../engine/tf.ts";
import { selectBackend } from "../engine/backend.ts";
import { Adam } from "../engine/optimizer.ts";
import { Rng } from "../engine/rng.ts";
import type { HostTensor } from "../io/host_tensor.ts";
import { writeSafetensors } from "../io/safetensors.ts";
import { findTorchPython, runPython } from "../io/torch_python.ts";
import { ConfigError } from "../errors.ts";
import { trainStep } from "../stages/train.ts";
import { CheckpointError, readStateDict, sha256File } from "./checkpoint.ts";
import {
  createGNet,
  GNet,
  type GNetBuildOptions,
  gnetParamCounts,
  gnetSpec,
  RANDOM_SAM_LOGIT_GAIN,
} from "./gnet.ts";
import { type ConvBnVars, exportConvBn, initConvBn, paramCount } from "./heads/conv_bn.ts";
import { gnetDecoderDefs } from "./heads/gnet_decoder.ts";
import { HARDNET85, HARDNET_TINY, hardnetPlan } from "./heads/hardnet.ts";
import { imageEncoder } from "./sam/image_encoder.ts";
import { PRESETS } from "./sam/config.ts";
import { disposeParams, initSamParams } from "./sam/params.ts";
import { maskDecoder } from "./sam/mask_decoder.ts";
import { resizeBilinear } from "./sam/resize.ts";

const quiet = () => {};
const REFERENCE = new URL("./heads/gnet_reference.py", import.meta.url).pathname;
const TINY_PTH = new URL("../fixtures/reference/tiny_sam.pth", import.meta.url).pathname;

/** The tiny preset at its smallest: SAM at 64 px (8x8 grid), the g-network at 32 px, 32 px in and out. */
const tiny = (o: Partial<GNetBuildOptions> = {}): GNetBuildOptions => ({
  preset: "tiny",
  weights: null,
  backboneWeights: null,
  imageSize: 32,
  encoderSize: 64,
  numClasses: 4,
  seed: 1,
  ...o,
});

type Inside = { sam: Map<string, tf.Tensor>; net: ConvBnVars; densePe: tf.Tensor4D };
const inside = (m: GNet) => m as unknown as Inside;

const hostOf = async (ts: Iterable<[string, tf.Tensor]>) =>
  new Map(await Promise.all([...ts].map(async ([k, t]) => [k, Float32Array.from(await t.data())] as const)));

const hostTensors = (data: Map<string, Float32Array>, ts: Map<string, tf.Tensor>) =>
  new Map([...data].map(([k, d]) => [k, { dtype: "float32" as const, shape: ts.get(k)!.shape, data: d }]));

/** A batch with structure to learn: class by distance from the centre (background, LV, Myo, RV rings). */
function batch(b: number, s: number, seed: number) {
  const image = tf.tidy(() => tf.randomNormal([b, s, s, 3], 0, 0.3, "float32", seed)) as tf.Tensor4D;
  const lab = Int32Array.from({ length: b * s * s }, (_, i) => {
    const [y, x] = [Math.floor(i / s) % s - s / 2, (i % s) - s / 2];
    const r = Math.hypot(x, y) / (s / 2);
    return r < 0.3 ? 3 : r < 0.5 ? 2 : r < 0.7 ? 1 : 0;
  });
  const label = tf.tensor3d(lab, [b, s, s], "int32");
  const bright = tf.tidy(() => tf.add(image, tf.mul(tf.cast(tf.expandDims(label, 3), "float32"), 0.5)));
  image.dispose();
  return { image: bright as tf.Tensor4D, label };
}

Deno.test("g-network counts at vit_b, from the architecture: 25,232,284 trainable (derivation in docs/methods.md 2.3)", () => {
  const c = gnetParamCounts({ ...tiny(), preset: "vit_b", imageSize: 224, encoderSize: null });
  assert.deepEqual(c, {
    trainable: 25_232_284,
    backbone: 17_883_548, // HarDNet-85 up to the 1/16 features
    decoder: 7_348_736, // SmallDecoder with a 3 x 256 output, without the unused BN2
    frozen: 93_729_508, // image encoder 89,670,912 + mask decoder 4,058,340 + positional matrix 256
  });
  assert.equal(gnetSpec({ ...tiny(), preset: "vit_b", encoderSize: null }).gnetSize, 512);
  // The published binary g-network, counted as PyTorch's parameters() does: all of HarDNet-85 but the
  // classifier (35,389,212, 1/32 stage included), the decoder with one 256-wide output (6,168,576) and the
  // final block's BN2 (512), which the forward never applies.
  const binaryDecoder = paramCount(gnetDecoderDefs({ skips: [192, 320, 720], embed: 256, outputs: 1 }));
  assert.equal(paramCount(hardnetPlan(HARDNET85).defs) + binaryDecoder + 512, 41_558_300);
  assert.equal(c.decoder - binaryDecoder, 1_180_160, "the 3 x 256 output adds 1,180,160");
});

Deno.test("g-network spec: bad sizes are ConfigErrors", () => {
  assert.throws(() => gnetSpec(tiny({ encoderSize: 80 })), ConfigError);
  assert.throws(() => gnetSpec(tiny({ encoderSize: 32 })), /at least 64/);
  assert.throws(() => gnetSpec(tiny({ numClasses: 1 })), /at least 2 classes/);
});

Deno.test("g-network (tiny): counts, logits [B, S, S, 4] with background 0, argmax = decision 6's rule; inference leaves BatchNorm alone", async () => {
  await selectBackend("cpu", {}, quiet);
  const { model, base, backbone } = await createGNet(tiny());
  assert.deepEqual([base.source, backbone.source], ["random", "random"]);
  assert.equal(model.spec.logitGain, RANDOM_SAM_LOGIT_GAIN);
  const { trainable, frozen } = gnetParamCounts(tiny());
  assert.deepEqual(model.counts(), { trainable, frozen });
  const stats = await hostOf(inside(model).net.stats);
  const x = tf.randomNormal([2, 32, 32, 3], 0, 1, "float32", 2) as tf.Tensor4D;
  const [y, y2] = [model.forward(x), model.forward(x)];
  assert.deepEqual(y.shape, [2, 32, 32, 4]);
  const [v, v2, arg] = [await y.data(), await y2.data(), await tf.argMax(y, -1).data()];
  assert.deepEqual(v, v2, "inference is deterministic");
  for (const [k, s] of await hostOf(inside(model).net.stats)) assert.deepEqual(s, stats.get(k), k);
  let fg = 0;
  for (let p = 0; p < arg.length; p++) {
    const probs = [1, 2, 3].map((c) => 1 / (1 + Math.exp(-v[p * 4 + c])));
    const best = probs.indexOf(Math.max(...probs));
    assert.equal(v[p * 4], 0);
    assert.equal(arg[p], probs[best] > 0.5 ? best + 1 : 0, `pixel ${p}`);
    if (arg[p]) fg++;
  }
  assert.ok(fg > 0 && fg < arg.length, `a random model labels some pixels, not all (${fg})`);
  // The gain puts a random decoder's logits where sigmoid can be confident: spread 3.0 here; x20 gave 0.6, a
  // loss too flat to learn a 30-patient ACDC-format set (docs/methods.md 2.3).
  const fgLogits = Array.from(v).filter((_, i) => i % 4 !== 0);
  const mean = fgLogits.reduce((a, b) => a + b, 0) / fgLogits.length;
  const spread = Math.sqrt(fgLogits.reduce((a, b) => a + (b - mean) ** 2, 0) / fgLogits.length);
  console.error(`gnet_test: random-weights logit spread ${spread.toFixed(2)}`);
  assert.ok(spread > 2, `random-weights logits spread ${spread}`);
  tf.dispose([x, y, y2]);
  model.dispose();
});

Deno.test("g-network: class c's map is the frozen decoder run alone on image b with dense embedding c", async () => {
  await selectBackend("cpu", {}, quiet);
  const { model } = await createGNet(tiny({ seed: 3 }));
  const { sam, densePe } = inside(model);
  const cfg = model.spec.sam;
  const x = tf.randomNormal([2, 32, 32, 3], 0, 1, "float32", 4) as tf.Tensor4D;
  const logits = model.forward(x); // S = 32 = 4 x the 8x8 grid: no resize of the maps
  const xe = resizeBilinear(x, 64, 64);
  const emb = imageEncoder(sam, cfg, xe); // [2, 8, 8, 32]
  const dense = model.gnetEmbeddings(resizeBilinear(xe, 32, 32, true)); // [2, 8, 8, 3 * 32]
  let worst = 0;
  for (let b = 0; b < 2; b++) {
    for (let c = 0; c < 3; c++) {
      const one = tf.tidy(() =>
        maskDecoder(sam, cfg, {
          imageEmbeddings: tf.slice(emb, [b, 0, 0, 0], [1, 8, 8, 32]),
          imagePe: densePe,
          sparse: tf.zeros([1, 0, 32]) as tf.Tensor3D,
          dense: tf.slice(dense, [b, 0, 0, 32 * c], [1, 8, 8, 32]),
        }, false).masks
      ); // [1, 1, 32, 32]
      // Random SAM weights: the logits are the decoder's x RANDOM_SAM_LOGIT_GAIN.
      const ours = tf.div(tf.slice(logits, [b, 0, 0, c + 1], [1, 32, 32, 1]), RANDOM_SAM_LOGIT_GAIN);
      const [a, r] = [await ours.data(), await one.data()];
      worst = Math.max(worst, ...Array.from(r, (t, i) => Math.abs(t - a[i]) / Math.max(1, Math.abs(t))));
      tf.dispose([one, ours]);
    }
  }
  assert.ok(worst < 1e-5, `worst ${worst}`);
  tf.dispose([x, logits, xe, emb, dense]);
  model.dispose();
});

for (const [backend, steps] of [["wasm", 6], ["cpu", 2]] as const) {
  Deno.test(`g-network training (${backend}): gradients reach every g-network weight and no SAM weight; loss falls; tensors flat`, async () => {
    await selectBackend(backend, {}, quiet);
    const { model } = await createGNet(tiny({ seed: 5 }));
    const { sam, net } = inside(model);
    const [samBefore, trainBefore, statsBefore] = await Promise.all(
      [sam, model.trainable, net.stats].map((m) => hostOf(m)),
    );
    const { image, label } = batch(2, 32, 6);
    // The loss on this backend sees the labels: near 0 for logits that state them, large for the opposite.
    // (tfjs-backend-wasm's OneHot ignored a float32 dtype: every target read as background and the
    // g-network learned to predict nothing.)
    const [right, wrong] = tf.tidy(() => {
      const hot = tf.sub(tf.mul(tf.oneHot(label, 4).asType("float32"), 20), 10) as tf.Tensor4D; // +-10
      return [model.loss(hot, label), model.loss(tf.neg(hot), label)];
    });
    const [r, w] = [(await right.data())[0], (await wrong.data())[0]];
    assert.ok(r < 0.01 && w > 5, `loss of the labels' own logits ${r}, of their opposite ${w}`);
    tf.dispose([right, wrong]);
    const opt = new Adam(model.trainable, { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    // Step 1 by hand (what trainStep does), to look at the gradients.
    const names = new Map([...model.trainable].map(([k, v]) => [v.name, k]));
    const { value, grads } = tf.variableGrads(
      () => model.loss(model.forward(image, true), label),
      [...model.trainable.values()],
    );
    assert.equal(Object.keys(grads).length, model.trainable.size);
    for (const [n, g] of Object.entries(grads)) {
      const m = await tf.tidy(() => tf.max(tf.abs(g))).data();
      assert.ok(m[0] > 0, `no gradient reaches ${names.get(n)}`);
    }
    opt.step(new Map(Object.entries(grads).map(([n, g]) => [names.get(n)!, g])));
    const losses = [(await value.data())[0]];
    tf.dispose([value, ...Object.values(grads)]);
    const counts = [tf.memory().numTensors];
    for (let i = 1; i < steps; i++) {
      losses.push(await trainStep(model, opt, { image, label } as Parameters<typeof trainStep>[2]));
      counts.push(tf.memory().numTensors);
    }
    console.error(`gnet training (${backend}): loss ${losses.map((l) => l.toFixed(3)).join(" ")}`);
    assert.ok(losses.at(-1)! < 0.95 * losses[0], `loss did not fall: ${losses}`);
    assert.ok(counts.every((c) => c === counts[0]), `tensor count drifts: ${counts}`);
    for (const [k, t] of await hostOf(sam)) assert.deepEqual(t, samBefore.get(k), `frozen ${k} changed`);
    for (const [k, t] of await hostOf(model.trainable)) {
      assert.notDeepEqual(t, trainBefore.get(k), `${k} did not move`);
    }
    for (const [k, t] of await hostOf(net.stats)) {
      assert.notDeepEqual(t, statsBefore.get(k), `${k} did not move`);
    }
    tf.dispose([image, label]);
    opt.dispose();
    model.dispose();
  });
}

const hasGpu = !!(await (navigator as Navigator & { gpu?: GPU }).gpu?.requestAdapter().catch(() => null));
if (!hasGpu) console.error("gnet_test: webgpu check skipped: no WebGPU adapter on this machine");

Deno.test({
  name: "g-network on webgpu: logits, training loss and gradients match the cpu backend",
  ignore: !hasGpu,
  async fn() {
    const run = async (backend: "cpu" | "webgpu") => {
      await selectBackend(backend, {}, quiet);
      const { model } = await createGNet(tiny({ seed: 9 }));
      const { image, label } = batch(2, 32, 10);
      const y = model.forward(image);
      const { value, grads } = tf.variableGrads(
        () => model.loss(model.forward(image, true), label),
        [...model.trainable.values()],
      );
      const g = Object.values(grads);
      const out = await Promise.all([y, value, g[0], g[g.length - 1]].map(async (t) => await t.data()));
      tf.dispose([image, label, y, value, ...g]);
      model.dispose();
      return out;
    };
    const [cpu, gpu] = [await run("cpu"), await run("webgpu")];
    const names = ["logits", "loss", "first gradient", "last gradient"];
    for (const [i, ref] of cpu.entries()) {
      const scale = Math.max(...Array.from(ref, Math.abs));
      const err = Math.max(...Array.from(ref, (v, j) => Math.abs(v - gpu[i][j])));
      assert.ok(err <= 1e-4 * scale, `${names[i]}: max error ${err} of ${scale}`);
    }
  },
});

Deno.test("g-network export/import: PyTorch names and layouts with running statistics; round trip exact; strict errors", async () => {
  await selectBackend("cpu", {}, quiet);
  const { model } = await createGNet(tiny({ seed: 7 }));
  const saved = await model.exportTrainable();
  assert.deepEqual(saved.get("backbone.base.0.conv.weight")!.shape, [8, 3, 3, 3]);
  // Block 0 (16 in, growth 4) outputs layers 1, 3, 4: 4 + 4 + 12 channels into the 24-wide transition.
  assert.deepEqual(saved.get("backbone.base.4.conv.weight")!.shape, [24, 20, 1, 1]);
  assert.deepEqual(saved.get("decoder.final.conv2.weight")!.shape, [96, 32, 3, 3]);
  assert.deepEqual(saved.get("decoder.up1.BN.running_var")!.shape, [40]);
  assert.equal(saved.size, model.trainable.size + inside(model).net.stats.size);
  // New values everywhere (statistics included), through import, must come back out unchanged.
  const rng = new Rng(3);
  for (const t of saved.values()) (t.data as Float32Array).forEach((_, i, d) => d[i] = rng.uniform(0.5, 1));
  model.importTrainable(saved, "saved.safetensors");
  const again = await model.exportTrainable();
  for (const [k, t] of saved) assert.deepEqual(again.get(k)!.data, t.data, k);
  const { model: other } = await createGNet(tiny({ seed: 7 }));
  for (const v of [...other.trainable.values(), ...inside(other).net.stats.values()]) {
    tf.tidy(() => v.assign(tf.zerosLike(v)));
  }
  other.importTrainable(saved, "saved.safetensors");
  const image = tf.randomNormal([2, 32, 32, 3], 0, 1, "float32", 8) as tf.Tensor4D;
  const [a, b] = [model.forward(image), other.forward(image)];
  assert.deepEqual(await a.data(), await b.data());
  const without = new Map(saved);
  without.delete("backbone.base.1.norm.running_mean");
  const fails = (tensors: Map<string, HostTensor>, pattern: RegExp) =>
    assert.throws(
      () => other.importTrainable(tensors, "t.safetensors"),
      (e) => e instanceof CheckpointError && /^t\.safetensors: /.test(e.message) && pattern.test(e.message),
    );
  fails(without, /1 missing: backbone\.base\.1\.norm\.running_mean/);
  const w = saved.get("decoder.up2.conv1.weight")!;
  fails(
    new Map(saved).set("decoder.up2.conv1.weight", { ...w, shape: [w.shape[0], w.shape[1], 9, 1] }),
    /shape/,
  );
  fails(
    new Map(saved).set("decoder.up2.BN.weight", { dtype: "int32", shape: [24], data: new Int32Array(24) }),
    /int32/,
  );
  tf.dispose([image, a, b]);
  model.dispose();
  other.dispose();
});

Deno.test("createGNet: SAM from a checkpoint, the backbone from a HarDNet state dict; both recorded; bad files fail cleanly", async () => {
  await selectBackend("cpu", {}, quiet);
  const dir = await Deno.makeTempDir();
  const defs = hardnetPlan(HARDNET_TINY).defs;
  const vars = initConvBn(defs, new Rng(11));
  const sd = await exportConvBn(vars, defs);
  tf.dispose([...vars.trainable.values(), ...vars.stats.values()]);
  await writeSafetensors(`${dir}/hardnet.safetensors`, sd);
  const samFile = `${dir}/sam.safetensors`;
  const samParams = initSamParams(PRESETS.tiny, 21);
  await writeSafetensors(samFile, await hostOf(samParams).then((m) => hostTensors(m, samParams)));
  disposeParams(samParams);
  const { model, base, backbone } = await createGNet(
    tiny({ weights: samFile, backboneWeights: `${dir}/hardnet.safetensors` }),
  );
  assert.deepEqual(base, { path: samFile, sha256: await sha256File(samFile), source: "checkpoint" });
  assert.equal(model.spec.logitGain, 1, "a real decoder's logits are used as they are");
  assert.equal(backbone.sha256, await sha256File(`${dir}/hardnet.safetensors`));
  assert.equal(backbone.source, "checkpoint");
  const exported = await model.exportTrainable();
  for (const [k, t] of sd) assert.deepEqual(exported.get(`backbone.${k}`)!.data, t.data, k);
  const file = await readStateDict(samFile);
  const decoderWeight = "mask_decoder.transformer.layers.0.self_attn.q_proj.weight";
  assert.deepEqual(await inside(model).sam.get(decoderWeight)!.data(), file.get(decoderWeight)!.data);
  assert.equal(model.counts().frozen, gnetParamCounts(tiny({ weights: samFile })).frozen);
  assert.ok(!inside(model).sam.has("prompt_encoder.no_mask_embed.weight"), "only the parts the method runs");
  model.dispose();
  const before = tf.memory().numTensors;
  await assert.rejects(
    () => createGNet(tiny({ backboneWeights: `${dir}/none.pth` })),
    (e) => e instanceof CheckpointError && e.message === `${dir}/none.pth: no such file`,
  );
  await assert.rejects(() => createGNet(tiny({ backboneWeights: samFile })), /not a HarDNet state dict/);
  // The parity fixture's SAM is built for 80 px: its position tables do not fit the tiny preset.
  await assert.rejects(() => createGNet(tiny({ weights: TINY_PTH })), /tiny_sam\.pth: weights do not fit/);
  assert.equal(tf.memory().numTensors, before, "a failed build leaves no tensor behind");
  await Deno.remove(dir, { recursive: true });
});

const py = await findTorchPython();
if (!py) console.error("gnet_test: PyTorch parity skipped: no python3 with torch found");

Deno.test({
  name: "g-network: exported weights load strictly into a torch.nn build and give the same dense embeddings",
  ignore: !py,
  async fn() {
    await selectBackend("cpu", {}, quiet);
    const { model } = await createGNet(tiny({ seed: 12 }));
    // Non-trivial BatchNorm statistics, through the import path.
    const saved = await model.exportTrainable();
    const rng = new Rng(13);
    for (const [k, t] of saved) {
      const d = t.data as Float32Array;
      if (k.endsWith("running_var")) d.forEach((_, i) => d[i] = rng.uniform(0.5, 1.5));
      else if (/running_mean$|BN1?\.bias$|norm\.bias$/.test(k)) {
        d.forEach((_, i) => d[i] = rng.uniform(-0.3, 0.3));
      }
    }
    model.importTrainable(saved, "randomised");
    const dir = await Deno.makeTempDir();
    await writeSafetensors(`${dir}/gnet.safetensors`, await model.exportTrainable());
    // 64 px into a net whose embeddings live on an 8x8 grid: the 16x16 output is resized with align_corners.
    const x = tf.randomNormal([2, 64, 64, 3], 0, 1, "float32", 14) as tf.Tensor4D;
    await writeSafetensors(
      `${dir}/x.safetensors`,
      new Map([["x", { dtype: "float32", shape: x.shape, data: await x.data() }]]),
    );
    const cfg = { ...HARDNET_TINY, skips: model.spec.decoder.skips, embed: 32, outputs: 3, grid: 8 };
    const out = await runPython(py!, await Deno.readTextFile(REFERENCE), [
      "gnet",
      JSON.stringify(cfg),
      `${dir}/gnet.safetensors`,
      `${dir}/x.safetensors`,
    ]);
    const ref = (JSON.parse(out) as { dense: number[] }).dense;
    const ours = model.gnetEmbeddings(x);
    assert.deepEqual(ours.shape, [2, 8, 8, 96]);
    const a = await ours.data();
    const scale = Math.max(...ref.map(Math.abs));
    const err = Math.max(...ref.map((r, i) => Math.abs(r - a[i])));
    console.error(
      `gnet_test: dense embeddings vs torch, max error ${err.toExponential(1)} of ${scale.toFixed(2)}`,
    );
    assert.ok(err <= 1e-5 * Math.max(1, scale), `max error ${err}`);
    tf.dispose([x, ours]);
    model.dispose();
    await Deno.remove(dir, { recursive: true });
  },
});
