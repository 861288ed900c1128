/**
 * Data-path throughput (load -> normalize -> augment -> batch, 224 x 224, batch 4) on ACDC-sized synthetic
 * volumes, next to the time of one training step, to show the data path never starves training.
 * `deno run -A bench/data_bench.ts [--json] [--patients 10] [--steps 3] [--backend cpu] [--no-step]`
 */
import { parseCommand } from "../pipeline/flags.ts";
import { flag, int, oneOf } from "../pipeline/option_schema.ts";
import { runCli } from "../pipeline/run_cli.ts";
import { Adam } from "../engine/optimizer.ts";
import { buildDataset } from "../pipeline/dataset.ts";
import { tf } from "../engine/tf.ts";
import { disposeBatch, makeBatch } from "../stages/batch.ts";
import { expandChannels } from "../stages/normalize.ts";
import { writeTestAcdc } from "../stages/test_volume.ts";
import { createLoraMedNet } from "../model/loramednet.ts";
import { trainStep } from "../stages/train.ts";
import { NUM_CLASSES } from "../stages/volume.ts";

export interface DataBenchResult {
  backend: string;
  volumes: number;
  volume_shape: number[];
  /** Read + check of every volume (buildDataset's up-front scan). */
  scan_volumes_per_s: number;
  /** Read, normalise, resize to 224 (the cached training pool, built once per run). */
  load_normalize_slices_per_s: number;
  /** Default docs/methods.md 3.3 augmentation from the cached pool. */
  augment_slices_per_s: number;
  /** Augment + batch of 4 into tensors, through prefetch (what every epoch after the first costs). */
  augment_batch_slices_per_s: number;
  /** The first epoch: load -> normalize -> augment -> batch from files. */
  cold_epoch_slices_per_s: number;
  /** Data time per batch of 4 in a warm epoch. */
  data_ms_per_batch: number;
  /** One LoRaMedNet training step (tiny preset, 224 input, batch 4); null when skipped. */
  train_step_ms: number | null;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const out = await fn();
  return [out, (performance.now() - t0) / 1000];
}

/** Runs the benchmark in a temporary folder (removed afterwards). */
export async function runDataBench(
  opts: { patients?: number; steps?: number; backend?: string; step?: boolean } = {},
): Promise<DataBenchResult> {
  const patients = opts.patients ?? 10;
  const shape: [number, number, number] = [216, 256, 10]; // a typical ACDC short-axis stack
  await tf.setBackend(opts.backend ?? "cpu");
  const root = await Deno.makeTempDir({ prefix: "data_bench_" });
  try {
    await writeTestAcdc(root, patients, { shape });
    const volumes = patients * 2;
    const [ds, scanS] = await timed(() =>
      buildDataset({ data: root, trainPatients: Math.min(5, patients - 2) })
    );
    const [pool, poolS] = await timed(() => ds.trainPool());
    let n = 0;
    const [, augS] = await timed(async () => {
      for await (const _ of ds.trainSlices(ds.epochRng(0))) n++;
    });
    let batches = 0;
    const [, batchS] = await timed(async () => {
      for await (const b of ds.trainBatches(ds.epochRng(1), { batchSize: 4 })) {
        batches++;
        disposeBatch(b);
      }
    });
    const cold = await buildDataset({ data: root, trainPatients: Math.min(5, patients - 2) });
    const [, coldS] = await timed(async () => {
      for await (const b of cold.trainBatches(cold.epochRng(0), { batchSize: 4 })) disposeBatch(b);
    });
    let stepMs: number | null = null;
    if (opts.step !== false) {
      stepMs = await trainStepMs(pool.slice(0, 4).map((s) => expandChannels(s, 3)), opts.steps ?? 3);
    }
    return {
      backend: tf.getBackend(),
      volumes,
      volume_shape: shape,
      scan_volumes_per_s: volumes / scanS,
      load_normalize_slices_per_s: pool.length / poolS,
      augment_slices_per_s: n / augS,
      augment_batch_slices_per_s: n / batchS,
      cold_epoch_slices_per_s: pool.length / coldS,
      data_ms_per_batch: (batchS * 1000) / batches,
      train_step_ms: stepMs,
    };
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Mean time of `steps` LoRaMedNet steps (tiny preset, random base weights) after one warm-up step. */
async function trainStepMs(items: Parameters<typeof makeBatch>[0], steps: number): Promise<number> {
  const { model } = await createLoraMedNet({
    method: "loramednet",
    preset: "tiny",
    weights: null,
    loraRank: 4,
    imageSize: 224,
    encoderSize: null,
    headTopChannel: null,
    numClasses: NUM_CLASSES,
    seed: 0,
  });
  const optimizer = new Adam(model.trainable, { lr: 5e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 });
  const batch = makeBatch(items);
  try {
    await trainStep(model, optimizer, batch);
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await trainStep(model, optimizer, batch);
    return (performance.now() - t0) / steps;
  } finally {
    disposeBatch(batch);
    model.dispose();
  }
}

async function main(args: string[]) {
  const { options: values, help } = parseCommand(args, {
    json: flag,
    patients: int(3),
    steps: int(1),
    backend: oneOf(["cpu", "wasm", "webgpu"]),
    noStep: flag,
  });
  if (help) {
    return console.log(
      "usage: deno run -A bench/data_bench.ts [--json] [--patients 10] [--steps 3] [--backend cpu|wasm|webgpu] [--no-step]",
    );
  }
  const r = await runDataBench({
    patients: values.patients,
    steps: values.steps,
    backend: values.backend,
    step: !values.noStep,
  });
  if (values.json) {
    console.log(JSON.stringify(r));
    return;
  }
  const f = (x: number) => x.toFixed(1);
  console.log(
    `data path, ${r.volumes} volumes of ${r.volume_shape.join(" x ")}, 224 x 224, batch 4, ${r.backend}`,
  );
  console.log(`  scan (read + check)            ${f(r.scan_volumes_per_s)} volumes/s`);
  console.log(`  load + normalize + resize      ${f(r.load_normalize_slices_per_s)} slices/s`);
  console.log(`  augment (docs/methods.md 3.3)        ${f(r.augment_slices_per_s)} slices/s`);
  console.log(
    `  augment + batch (warm epoch)   ${f(r.augment_batch_slices_per_s)} slices/s = ${
      f(r.data_ms_per_batch)
    } ms/batch`,
  );
  console.log(`  load -> augment -> batch (cold) ${f(r.cold_epoch_slices_per_s)} slices/s`);
  if (r.train_step_ms !== null) {
    console.log(
      `  training step (tiny LoRaMedNet) ${f(r.train_step_ms)} ms/batch: data is ` +
        `${f((r.data_ms_per_batch / r.train_step_ms) * 100)}% of a step`,
    );
  }
}

if (import.meta.main) runCli(main);
