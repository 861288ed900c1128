import assert from "node:assert/strict";
import {
  applyOptions,
  dataOptions,
  DEMO_DEFAULTS,
  PAPER_DEFAULTS,
  resolveConfig,
  TINY_RECIPE,
  TRAIN_OPTIONS,
} from "./config.ts";
import { optionName, toOptionValues } from "./option_schema.ts";
import { ConfigError } from "../errors.ts";

Deno.test("config: no data -> the demo; with data -> the paper's recipe", async () => {
  const demo = await resolveConfig({});
  assert.equal(demo.data, null);
  assert.equal(demo.preset, DEMO_DEFAULTS.preset);
  const paper = await resolveConfig({ data: "/d", weights: "sam.pth" });
  assert.deepEqual({ ...paper, data: null, weights: null }, PAPER_DEFAULTS);
  assert.equal(paper.lr, 5e-4);
  assert.deepEqual([paper.beta1, paper.beta2, paper.batchSize, paper.epochs], [0.5, 0.999, 4, 120]);
});

Deno.test("config: --preset tiny with data takes the tiny recipe, which flags still override", async () => {
  const tiny = await resolveConfig({ data: "/d", preset: "tiny" });
  assert.deepEqual([tiny.epochs, tiny.lr, tiny.augment], [
    TINY_RECIPE.epochs,
    TINY_RECIPE.lr,
    TINY_RECIPE.augment,
  ]);
  assert.deepEqual([tiny.trainPatients, tiny.imageSize, tiny.beta1], [5, 224, 0.5]);
  const flagged = await resolveConfig({ data: "/d", preset: "tiny", epochs: "3", lr: "1e-4" });
  assert.deepEqual([flagged.epochs, flagged.lr], [3, 1e-4]);
  const vitb = await resolveConfig({ data: "/d", preset: "vit_b", weights: "random" });
  assert.deepEqual([vitb.epochs, vitb.lr], [120, 5e-4]);
});

Deno.test("config: file then flags; the resolved config round-trips as a config file", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/c.json`,
    JSON.stringify({ data: "/d", weights: "random", epochs: 7, "batch-size": 2, augment: "none" }),
  );
  const cfg = await resolveConfig({ epochs: "9", "train-patients": "all" }, `${dir}/c.json`);
  assert.deepEqual([cfg.epochs, cfg.batchSize, cfg.trainPatients, cfg.augment], [9, 2, "all", false]);
  await Deno.writeTextFile(`${dir}/back.json`, JSON.stringify(toOptionValues(cfg)));
  assert.deepEqual(await resolveConfig({}, `${dir}/back.json`), cfg);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("config: bad values and unknown keys are ConfigErrors naming the option", async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ epochs: "0" }, /--epochs: "0" is not an integer >= 1/],
    [{ lr: "-1" }, /--lr: "-1" is not a number > 0/],
    [{ backend: "tpu" }, /--backend: "tpu" is not one of auto, webgpu, wasm, cpu/],
    [{ method: "unet" }, /--method: "unet" is not one of loramednet, cnn-head, vit-head, gnet, samed/],
    [{ "train-patients": "x" }, /"all"/],
    [{ "train-cache-mib": "512" }, /--train-cache-mib needs --augment none/],
  ];
  for (const [flags, re] of cases) {
    await assert.rejects(
      () => resolveConfig(flags),
      (e: Error) => e instanceof ConfigError && re.test(e.message),
    );
  }
  assert.throws(
    () => applyOptions(PAPER_DEFAULTS, { batch_size: 3 }, "c.json"),
    /unknown option "batch_size" \(did you mean "batch-size"\?\)/,
  );
  assert.ok(Object.keys(TRAIN_OPTIONS).map(optionName).every((k) => k === k.toLowerCase()));
  assert.throws(
    () => applyOptions(PAPER_DEFAULTS, { augment: { wobble: { p: 1 } } }, "c.json"),
    /augment\.wobble/,
  );
  assert.throws(() => applyOptions(PAPER_DEFAULTS, { augment: 3 }, "c.json"), /"augment": 3 is not "none"/);
  const reuse = await resolveConfig({ "train-cache-mib": "512", augment: "none", method: "cnn-head" });
  assert.deepEqual([reuse.trainCacheMib, reuse.augment], [512, false]);
});

Deno.test("config: every option has a default, and the defaults pass their own checks", () => {
  assert.deepEqual(Object.keys(PAPER_DEFAULTS).sort(), Object.keys(TRAIN_OPTIONS).sort());
  for (const defaults of [PAPER_DEFAULTS, DEMO_DEFAULTS, { ...PAPER_DEFAULTS, ...TINY_RECIPE }]) {
    assert.deepEqual(applyOptions(PAPER_DEFAULTS, toOptionValues(defaults), "defaults"), defaults);
  }
});

Deno.test("dataOptions: the paper's defaults under partial options, every value checked", () => {
  const o = dataOptions({ data: "x" });
  assert.deepEqual(
    [o.seed, o.fold, o.trainPatients, o.imageSize, o.normalization, o.onBadCase, o.trainUnit, o.augment],
    [0, 0, 5, 224, "zscore", "fail", "patients", {}],
  );
  assert.equal(dataOptions({ data: "x", augment: false }).augment, false);
  assert.throws(() => dataOptions({ data: "x", fold: 5 }), /"fold": 5 is not an integer in 0..4/);
  assert.throws(() => dataOptions({ data: "x", onBadCase: "ignore" as never }), /"on-bad-case"/);
  assert.throws(() => dataOptions({ data: "x", normalization: "clahe" as never }), /"normalization"/);
  assert.throws(() => dataOptions({ data: "x", wat: 1 } as never), /unknown option "wat"/);
  assert.throws(() => dataOptions({ data: "" }), /"data": "" is not a path/);
});
