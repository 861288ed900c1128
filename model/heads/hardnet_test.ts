import assert from "node:assert/strict";
import { tf } from "../../engine/tf.ts";
import { selectBackend } from "../../engine/backend.ts";
import { Rng } from "../../engine/rng.ts";
import { writeSafetensors } from "../../io/safetensors.ts";
import { findTorchPython, runPython } from "../../io/torch_python.ts";
import { CheckpointError } from "../checkpoint.ts";
import { batchNorm, exportConvBn, initConvBn, paramCount } from "./conv_bn.ts";
import {
  hardLinks,
  hardnet,
  HARDNET85,
  HARDNET85_TO_16,
  HARDNET_TINY,
  type HarDNetConfig,
  hardnetFeatureWidths,
  hardnetPlan,
  loadHardnetStateDict,
} from "./hardnet.ts";

const quiet = () => {};
const REFERENCE = new URL("./gnet_reference.py", import.meta.url).pathname;

Deno.test("HarDNet-85: 35,389,212 parameters as published; cut at 1/16 17,883,548, features 192, 320, 720", () => {
  // PyTorch's HarDNet(arch=85) has 35,389,212 parameters in base[0:19] (everything but the classifier).
  assert.equal(paramCount(hardnetPlan(HARDNET85).defs), 35_389_212);
  assert.equal(paramCount(hardnetPlan(HARDNET85_TO_16).defs), 17_883_548);
  assert.deepEqual(hardnetFeatureWidths(HARDNET85_TO_16), [192, 320, 720]);
  const names = hardnetPlan(HARDNET85_TO_16).defs.convs.map((d) => d.name);
  assert.equal(names[0], "base.0.conv");
  assert.equal(names.at(-1), "base.14.conv", "the 720-wide transition is module 14, as in PyTorch");
  assert.ok(names.includes("base.13.layers.15.conv"));
});

Deno.test("HarD link rule: the 1/32 block of HarDNet-85 (in 720, growth 256, 4 layers), worked by hand", () => {
  // Layer 2 reads 1 and 0 (256 * 1.7 = 435.2 -> 436); layer 4 reads 3, 2, 0 (256 * 1.7^2 = 739.84 -> 740).
  assert.deepEqual(hardLinks(720, 256, 1.7, 4), [
    { links: [0], cin: 720, cout: 256 },
    { links: [1, 0], cin: 976, cout: 436 },
    { links: [2], cin: 436, cout: 256 },
    { links: [3, 2, 0], cin: 1412, cout: 740 },
  ]);
});

Deno.test("BatchNorm: training normalises by the batch and moves the running statistics; inference uses them", async () => {
  await selectBackend("cpu", {}, quiet);
  const vars = initConvBn({ convs: [], norms: [{ name: "bn", c: 2 }] }, new Rng(0));
  // Channel 0 holds 1, 2, 3, 4 (mean 2.5, biased var 1.25, unbiased 5/3); channel 1 holds 0 everywhere.
  const x = tf.tensor4d([1, 0, 2, 0, 3, 0, 4, 0], [1, 2, 2, 2]);
  const eval0 = await batchNorm(vars, "bn", x, false).data();
  assert.ok(Math.abs(eval0[6] - 4 / Math.sqrt(1 + 1e-5)) < 1e-5, "inference: running mean 0, var 1");
  const train = await batchNorm(vars, "bn", x, true).data();
  assert.ok(Math.abs(train[0] - (1 - 2.5) / Math.sqrt(1.25 + 1e-5)) < 1e-5);
  assert.equal(train[1], 0);
  const rm = await vars.stats.get("bn.running_mean")!.data();
  const rv = await vars.stats.get("bn.running_var")!.data();
  assert.ok(Math.abs(rm[0] - 0.25) < 1e-6 && rm[1] === 0, `running mean ${rm}`);
  assert.ok(
    Math.abs(rv[0] - (0.9 + 0.1 * 5 / 3)) < 1e-6 && Math.abs(rv[1] - 0.9) < 1e-6,
    `running var ${rv}`,
  );
  const eval1 = await batchNorm(vars, "bn", x, false).data();
  assert.ok(
    Math.abs(eval1[0] - (1 - 0.25) / Math.sqrt(rv[0] + 1e-5)) < 1e-5,
    "inference after: new statistics",
  );
  assert.deepEqual(
    await vars.stats.get("bn.running_mean")!.data(),
    rm,
    "inference leaves the statistics alone",
  );
  // Training-mode gradients (through the batch mean and variance) against central differences.
  const gamma = vars.trainable.get("bn.weight")!;
  tf.tidy(() => gamma.assign(tf.tensor1d([1.5, 0.5])));
  const r = tf.tensor4d([0.3, -1, 2, 0.5, -0.7, 1, 1.1, 0.2], [1, 2, 2, 2]);
  const f = (xi: tf.Tensor) => tf.sum(tf.mul(batchNorm(vars, "bn", xi as tf.Tensor4D, true), r)) as tf.Scalar;
  const g = await tf.grad(f)(x).data();
  const base = await x.data();
  for (const i of [0, 2, 4]) {
    const at = async (d: number) => {
      const v = Float32Array.from(base);
      v[i] += d;
      return (await f(tf.tensor4d(v, [1, 2, 2, 2])).data())[0];
    };
    const numeric = ((await at(1e-2)) - (await at(-1e-2))) / 2e-2;
    assert.ok(
      Math.abs(numeric - g[i]) < 1e-2 * Math.max(1, Math.abs(g[i])),
      `dx[${i}] ${g[i]} vs ${numeric}`,
    );
  }
  tf.dispose([x, r, ...vars.trainable.values(), ...vars.stats.values()]);
});

/** A HarDNet state dict as our exporter writes it (PyTorch names and layouts, no num_batches_tracked). */
async function writeStateDict(path: string, cfg: HarDNetConfig, seed: number) {
  const vars = initConvBn(hardnetPlan(cfg).defs, new Rng(seed));
  const sd = await exportConvBn(vars, hardnetPlan(cfg).defs);
  tf.dispose([...vars.trainable.values(), ...vars.stats.values()]);
  await writeSafetensors(path, sd);
  return sd;
}

Deno.test("HarDNet state dict loading: exact values; missing, unexpected, misshapen keys and foreign files fail naming the file", async () => {
  await selectBackend("cpu", {}, quiet);
  const dir = await Deno.makeTempDir();
  const sd = await writeStateDict(`${dir}/ok.safetensors`, HARDNET_TINY, 1);
  const vars = initConvBn(hardnetPlan(HARDNET_TINY, "backbone.").defs, new Rng(2));
  await loadHardnetStateDict(vars, HARDNET_TINY, `${dir}/ok.safetensors`, "backbone.");
  const back = await exportConvBn(vars, hardnetPlan(HARDNET_TINY, "backbone.").defs);
  for (const [k, t] of sd) assert.deepEqual(back.get(`backbone.${k}`)!.data, t.data, k);
  const cut = new Map(sd);
  cut.delete("base.3.layers.1.norm.running_var");
  await writeSafetensors(`${dir}/cut.safetensors`, cut);
  const extra = new Map(sd).set("base.4.conv.bias", {
    dtype: "float32",
    shape: [24],
    data: new Float32Array(24),
  });
  await writeSafetensors(`${dir}/extra.safetensors`, extra);
  const fails = async (file: string, pattern: RegExp, cfg = HARDNET_TINY) =>
    await assert.rejects(
      () => loadHardnetStateDict(vars, cfg, `${dir}/${file}`, "backbone."),
      (e) =>
        e instanceof CheckpointError && e.message.startsWith(`${dir}/${file}: `) && pattern.test(e.message),
    );
  await fails("cut.safetensors", /1 missing: base\.3\.layers\.1\.norm\.running_var/);
  await fails("extra.safetensors", /1 unexpected: base\.4\.conv\.bias/);
  const wider = { ...HARDNET_TINY, stem: [12, 16] as [number, number] };
  await fails(
    "ok.safetensors",
    /shape mismatches: base\.0\.conv\.weight \(file \[8,3,3,3\], model \[12,3,3,3\]\)/,
    wider,
  );
  await writeSafetensors(`${dir}/other.safetensors`, new Map([["fc.weight", sd.get("base.0.conv.weight")!]]));
  await fails("other.safetensors", /not a HarDNet state dict/);
  await fails("absent.pth", /no such file/);
  tf.dispose([...vars.trainable.values(), ...vars.stats.values()]);
  await Deno.remove(dir, { recursive: true });
});

const py = await findTorchPython();
if (!py) console.error("hardnet_test: PyTorch parity skipped: no python3 with torch found");

Deno.test({
  name:
    "HarDNet: a torch-written .pth (with an unread 1/32 stage and classifier) loads and matches torch, eval and train",
  ignore: !py,
  async fn() {
    const dir = await Deno.makeTempDir();
    const input = [2, 3, 32, 48]; // NCHW, not square: a swapped axis would show
    const extra = { growth: 8, layers: 2, width: 80 };
    const out = await runPython(py!, await Deno.readTextFile(REFERENCE), [
      "hardnet",
      JSON.stringify({ ...HARDNET_TINY, extra, input }),
      dir,
    ]);
    const ref = JSON.parse(out) as {
      x: number[];
      eval: number[][];
      train: number[][];
      shapes: number[][];
      stats: Record<string, number[]>;
    };
    const worst = (a: ArrayLike<number>, b: number[]) => {
      const scale = Math.max(...b.map(Math.abs));
      return Math.max(...b.map((v, i) => Math.abs(v - a[i]))) / scale;
    };
    for (const backend of ["cpu", "wasm"] as const) {
      await selectBackend(backend, {}, quiet);
      const defs = hardnetPlan(HARDNET_TINY).defs;
      const vars = initConvBn(defs, new Rng(9));
      await loadHardnetStateDict(vars, HARDNET_TINY, `${dir}/hardnet.pth`);
      const x = tf.tensor4d(ref.x, [input[0], input[2], input[3], input[1]]);
      const ev = hardnet(vars, HARDNET_TINY, x, false);
      const tr = hardnet(vars, HARDNET_TINY, x, true);
      const errs: string[] = [];
      for (const [i, f] of ev.entries()) {
        assert.deepEqual(f.shape, ref.shapes[i]);
        errs.push(`eval ${f.shape[3]} ch ${worst(await f.data(), ref.eval[i]).toExponential(1)}`);
        assert.ok(worst(await f.data(), ref.eval[i]) < 1e-4, `${backend} eval feature ${i}: ${errs.at(-1)}`);
        assert.ok(worst(await tr[i].data(), ref.train[i]) < 1e-4, `${backend} training-mode feature ${i}`);
      }
      const keys = Object.keys(ref.stats);
      assert.equal(keys.length, 2 * defs.norms.length, "every built BatchNorm's statistics are compared");
      for (const k of keys) {
        assert.ok(
          worst(await vars.stats.get(k)!.data(), ref.stats[k]) < 1e-4,
          `${backend} ${k} after one step`,
        );
      }
      console.error(`hardnet_test (${backend}): worst relative error ${errs.join(", ")}`);
      tf.dispose([x, ...ev, ...tr, ...vars.trainable.values(), ...vars.stats.values()]);
    }
    await Deno.remove(dir, { recursive: true });
  },
});
