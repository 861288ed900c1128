import assert from "node:assert/strict";
import { tf } from "../engine/tf.ts";
import { selectBackend } from "../engine/backend.ts";
import { createLoraMedNet } from "../model/loramednet.ts";
import { generateAcdcPhantoms } from "../fixtures/phantom.ts";
import { buildDataset } from "../pipeline/dataset.ts";
import { Adam, LrSchedule, PLATEAU_DEFAULTS } from "../engine/optimizer.ts";
import { memorySink } from "./train_sink.ts";
import type { TrainEvent } from "./train_events.ts";
import { train, trainStep } from "./train.ts";
import { batch as makeBatches } from "./batch.ts";
import { pipe } from "./pipe.ts";
import { evaluate } from "./evaluate.ts";

const quiet = () => {};
const root = await Deno.makeTempDir({ prefix: "train_test_" });
await generateAcdcPhantoms(`${root}/data`, { patients: 5, seed: 1, small: true });
const data = await buildDataset({
  data: `${root}/data`,
  seed: 0,
  trainPatients: 1,
  imageSize: 32,
  augment: false,
}, { onSkip: quiet });

async function tinyModel() {
  return (await createLoraMedNet({
    method: "loramednet",
    preset: "tiny",
    weights: null,
    loraRank: 2,
    imageSize: 32,
    encoderSize: 32,
    headTopChannel: 2,
    numClasses: 4,
    seed: 0,
  })).model;
}

const hasGpu = !!(await (navigator as Navigator & { gpu?: GPU }).gpu?.requestAdapter().catch(() => null));
if (!hasGpu) console.error("train_test: webgpu training test skipped: no WebGPU adapter on this machine");

for (const backend of ["wasm", "webgpu"] as const) {
  Deno.test({
    name: `train step (${backend}): the loss falls and tf.memory().numTensors stays flat across steps`,
    ignore: backend === "webgpu" && !hasGpu,
    fn: async () => {
      await selectBackend(backend, {}, quiet);
      const model = await tinyModel();
      const opt = new Adam(model.trainable, { lr: 1e-3, beta1: 0.5, beta2: 0.999, eps: 1e-8 });
      const counts: number[] = [];
      const losses: number[] = [];
      for (let epoch = 0; epoch < (backend === "wasm" ? 2 : 1); epoch++) {
        // No prefetch here: read-ahead batches would count as live tensors.
        for await (const batch of pipe(data.trainSlices(data.epochRng(epoch)), makeBatches(2))) {
          try {
            losses.push(await trainStep(model, opt, batch));
          } finally {
            batch.image.dispose();
            batch.label.dispose();
          }
          counts.push(tf.memory().numTensors);
        }
      }
      assert.ok(counts.length >= 3, `only ${counts.length} steps`);
      assert.deepEqual(counts, counts.map(() => counts[0]), `numTensors per step: ${counts.join(" ")}`);
      assert.ok(losses.every(Number.isFinite));
      assert.ok(losses.at(-1)! < losses[0], `loss did not fall: ${losses.join(" ")}`);
      opt.dispose();
      model.dispose();
    },
  });
}

Deno.test("train stage: events, log records, checkpoint and best per epoch to its sink; evaluation scores every test patient", async () => {
  await selectBackend("wasm", {}, quiet);
  const sink = memorySink();
  const model = await tinyModel();
  const optimizer = new Adam(model.trainable, { lr: 1e-3, beta1: 0.5, beta2: 0.999, eps: 1e-8 });
  const schedule = new LrSchedule(PLATEAU_DEFAULTS);
  const events: TrainEvent[] = [];
  const before = tf.memory().numTensors;
  for await (
    const ev of train({
      model,
      data,
      optimizer,
      schedule,
      epochs: 2,
      batchSize: 4,
      sink,
      logEvery: 1,
      state: {
        epoch: 0,
        step: 0,
        lr: 1e-3,
        schedule: schedule.state(),
        rng: data.epochRng(0).state(),
        best: null,
        elapsedS: 0,
      },
      validate: async () =>
        (await evaluate(model, data.evalPatients("val"), { batchSize: 4, perFrame: false })).dice,
    })
  ) events.push(ev);
  assert.equal(tf.memory().numTensors, before);
  const steps = Math.ceil(data.sliceCounts.train / 4);
  assert.equal(events.filter((e) => e.type === "progress").length, 2 * steps);
  assert.deepEqual(events.filter((e) => e.type !== "progress").map((e) => e.type), [
    "validation",
    "checkpoint",
    "validation",
    "checkpoint",
    "done",
  ]);
  const p = events.find((e) => e.type === "progress")!;
  for (const k of ["epoch", "step", "loss", "lr", "elapsed_s", "eta_s"]) assert.ok(k in p, k);
  const ck = sink.checkpoint!;
  assert.equal(ck.state.epoch, 2);
  assert.equal(ck.state.step, 2 * steps);
  assert.deepEqual([...ck.trainable.keys()].sort(), [...model.trainable.keys()].sort());
  assert.deepEqual([...ck.optimizer.keys()].length > 0, true);
  assert.equal(sink.records.filter((r) => r.type === "epoch").length, 2);
  assert.equal(sink.records.filter((r) => r.type === "step").length, 2 * steps);
  assert.ok(sink.records.every((r) => r.type !== "step" || r.steps === steps), "step records carry steps");
  assert.ok(sink.best && sink.best.epoch >= 1 && sink.best.dice >= 0);
  assert.deepEqual([...sink.best.trainable.keys()].sort(), [...model.trainable.keys()].sort());
  const result = await evaluate(model, data.evalPatients("test"), { batchSize: 4, perFrame: true });
  assert.equal(result.patients.length, data.split.test.length);
  assert.equal(result.frames!.length, data.volumes.filter((v) => data.split.test.includes(v.patient)).length);
  for (const v of Object.values(result.dice)) assert.ok(v >= 0 && v <= 1);
  optimizer.dispose();
  model.dispose();
});

Deno.test("train stage: --val-every validates every n-th epoch and after the last; best comes from those", async () => {
  await selectBackend("wasm", {}, quiet);
  const sink = memorySink();
  const model = await tinyModel();
  const optimizer = new Adam(model.trainable, { lr: 1e-3, beta1: 0.5, beta2: 0.999, eps: 1e-8 });
  const schedule = new LrSchedule(PLATEAU_DEFAULTS);
  let validations = 0;
  const types: string[] = [];
  for await (
    const ev of train({
      model,
      data,
      optimizer,
      schedule,
      epochs: 3,
      batchSize: 8,
      sink,
      logEvery: 100,
      valEvery: 2,
      state: {
        epoch: 0,
        step: 0,
        lr: 1e-3,
        schedule: schedule.state(),
        rng: data.epochRng(0).state(),
        best: null,
        elapsedS: 0,
      },
      validate: () => {
        validations++;
        return Promise.resolve({ RV: 0.1, Myo: 0.2, LV: 0.3, avg: 0.2 * validations });
      },
    })
  ) if (ev.type !== "progress") types.push(`${ev.type}${"epoch" in ev ? ev.epoch : ""}`);
  assert.equal(validations, 2, "epochs 2 and 3 (the last)");
  assert.deepEqual(types, [
    "checkpoint1",
    "validation2",
    "checkpoint2",
    "validation3",
    "checkpoint3",
    "done3",
  ]);
  const epochs = sink.records.filter((r) => r.type === "epoch");
  assert.deepEqual(epochs.map((r) => "val_dice" in r), [false, true, true]);
  assert.equal(sink.best!.epoch, 3);
  optimizer.dispose();
  model.dispose();
});

Deno.test({
  name: "cleanup",
  fn: async () => await Deno.remove(root, { recursive: true }),
});
