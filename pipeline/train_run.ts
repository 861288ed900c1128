/**
 * A whole training run from a resolved config: backend, model, data (the demo's phantoms when no data is
 * given), the run directory, the training loop (stages/train.ts) with resume, and the final test evaluation.
 * `deno task train` (cli/train.ts) and, next, the server's POST /api/runs both call runTraining.
 */
import { tf } from "../engine/tf.ts";
import { ceDiceLoss } from "../model/losses.ts";
import { createSegmenter, type MethodOptions, methodParamCounts } from "../model/methods.ts";
import { PRESETS } from "../model/sam/config.ts";
import { encoderLimits, imagesPerPass } from "../model/sam/image_encoder.ts";
import { encoderSizeOf } from "../model/sam_weights.ts";
import type { Segmenter } from "../model/segmenter.ts";
import { type BackendChoice, selectBackend } from "../engine/backend.ts";
import { ConfigError } from "../errors.ts";
import { dataOf, type TrainConfig, weightsFile } from "./config.ts";
import { toOptionValues } from "./option_schema.ts";
import { NUM_CLASSES } from "../stages/volume.ts";
import { buildDataset, type Dataset } from "./dataset.ts";
import { Adam, LrSchedule } from "../engine/optimizer.ts";
import type { DiceScores, TrainEvent } from "../stages/train_events.ts";
import {
  exists,
  loadCheckpoint,
  loadTrainable,
  prepareRunDir,
  recoverCheckpoint,
  RUN_FILES,
  runDirSink,
  truncateLog,
  writeJson,
} from "./run_dir.ts";
import { EmbeddingCache } from "../stages/embedding_cache.ts";
import { type EvalResult, evaluate } from "../stages/evaluate.ts";
import { train } from "../stages/train.ts";
import type { TrainState } from "../stages/train_sink.ts";
import { makeDemoData } from "./demo_data.ts";

/** The model options a config implies (weights "random" becomes null: seeded random base weights). */
export function methodOptions(cfg: TrainConfig, maxBindingBytes?: number): MethodOptions {
  const checkpointBlocks = cfg.checkpointBlocks === "auto"
    ? cfg.preset === "vit_b"
    : cfg.checkpointBlocks === "on";
  return { ...cfg, weights: weightsFile(cfg), numClasses: NUM_CLASSES, maxBindingBytes, checkpointBlocks };
}

/**
 * Kernels one training step of the method runs, found by profiling a micro model of it (the tiny preset at a
 * 2 x 2 token grid: the same ops as any size) on the cpu backend, so `auto` can tell whether wasm has them.
 */
export async function trainingKernels(
  cfg: Pick<TrainConfig, "method" | "loraRank" | "randomPe">,
): Promise<string[]> {
  // (No tf.getBackend() here: with no backend set yet it would initialise webgpu just to report it.)
  await selectBackend("cpu", {}, () => {});
  // 2 x 2 tokens; the g-network reads the image at half the encoder size and pools it 16x, so it needs 64.
  const size = cfg.method === "gnet" ? 64 : 2 * PRESETS.tiny.patch_size;
  const { model } = await createSegmenter({
    method: cfg.method,
    preset: "tiny",
    weights: null,
    seed: 0,
    imageSize: size,
    encoderSize: size,
    loraRank: cfg.loraRank,
    headTopChannel: 1,
    randomPe: cfg.randomPe,
    numClasses: NUM_CLASSES,
  });
  const x = tf.zeros([1, size, size, 3]) as tf.Tensor4D;
  const y = tf.zeros([1, size, size], "int32");
  const loss = model.loss ?? ceDiceLoss;
  try {
    const info = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(() => loss(model.forward(x, true), y), [
        ...model.trainable.values(),
      ]);
      tf.dispose([value, ...Object.values(grads)]);
    });
    // kernelNames also lists op scopes ("logSoftmax__op"); keep the registered kernels.
    return [...new Set(info.kernelNames)].filter((k) => tf.getKernel(k, "cpu")).sort();
  } finally {
    tf.dispose([x, y]);
    model.dispose();
  }
}

export interface RunOptions {
  resume?: boolean;
  dryRun?: boolean;
  /** Progress and messages (stderr in the CLI, SSE in the server). */
  onEvent?: (ev: TrainEvent) => void;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface RunResult {
  run: string;
  test: { dice: DiceScores };
}

/** The resolved run config saved as config.json: the options plus what the run found out. */
export interface RunRecord {
  options: Record<string, unknown>;
  method: string;
  backend: { name: string; reason: string; adapter?: string };
  model: { spec: object; trainable_params: number; frozen_params: number };
  base_weights: { path: string | null; sha256: string | null; source: string };
  /** The g-network's HarDNet-85 starting weights (absent for the other methods). */
  backbone_weights?: { path: string | null; sha256: string | null; source: string };
  split: ReturnType<Dataset["splitRecord"]>;
  created: string;
}

/**
 * --dry-run: parameter counts. With --weights the model is really built (so the file is read and checked);
 * with random base weights the counts come from the architecture, without drawing ~90 M random numbers.
 */
async function dryRun(build: MethodOptions, backend: TrainConfig["backend"], log: (l: string) => void) {
  if (!build.weights) {
    const c = methodParamCounts(build);
    return { trainable_params: c.trainable, frozen_params: c.frozen };
  }
  await selectBackend(backend, {}, log);
  const { model } = await createSegmenter(build);
  const c = model.counts();
  model.dispose();
  return { trainable_params: c.trainable, frozen_params: c.frozen };
}

function defaultOut(cfg: TrainConfig): string {
  const stamp = new Date().toISOString().replace(/[:]/g, "-").replace(/\..*$/, "");
  return `runs/${stamp}-${cfg.method}`;
}

async function validationDice(
  model: Segmenter,
  data: Dataset,
  batchSize: number,
  cache: EmbeddingCache | undefined,
): Promise<DiceScores> {
  return (await evaluate(model, data.evalPatients("val"), { batchSize, perFrame: false, cache })).dice;
}

/** What the device's binding limit means for this run's encoder: the attention chunks and images per pass. */
export function derivedLimits(
  cfg: Pick<TrainConfig, "preset" | "encoderSize">,
  maxBindingBytes: number,
  batch: number,
) {
  const size = encoderSizeOf(cfg);
  const lim = encoderLimits(maxBindingBytes);
  const perPass = imagesPerPass({ ...PRESETS[cfg.preset], image_size: size }, size, size, maxBindingBytes);
  return `derived from the device limits: attention in chunks of <= ${
    (lim.maxChunkBytes! / 2 ** 20).toFixed(0)
  } ` +
    `MiB of logits; the ${size} px encoder runs ${
      Math.min(perPass, batch)
    } of a batch's ${batch} image(s) per pass`;
}

/** Runs (or resumes, or dry-runs) training and evaluates the result on the test patients. */
export async function runTraining(
  cfg: TrainConfig,
  opts: RunOptions = {},
): Promise<RunResult | { trainable_params: number; frozen_params: number }> {
  const log = opts.log ?? ((l: string) => console.error(l));
  if (cfg.weights === "random") log("base weights: random (--weights random): a smoke run, not a SAM result");
  if (opts.dryRun) return await dryRun(methodOptions(cfg), cfg.backend, log);
  const dir = cfg.out ?? defaultOut(cfg);
  // A finished run or a foreign folder is refused, and an unwritable one found, before any work is done.
  const fresh = (await prepareRunDir(dir, { resume: opts.resume })).created;
  if (opts.resume) { for (const line of await recoverCheckpoint(dir)) log(line); }
  // Bad data or weights found while setting up must not leave an empty run directory behind.
  const setup = async () => {
    const kernels = await trainingKernels(cfg);
    const choice: BackendChoice = await selectBackend(cfg.backend, { kernels }, log);
    const build = methodOptions(cfg, choice.maxBindingBytes);
    if (choice.maxBindingBytes !== undefined) log(derivedLimits(cfg, choice.maxBindingBytes, cfg.batchSize));
    const dataDir = cfg.data ?? await makeDemoData(`${dir}/phantoms`, cfg.demoPatients, cfg.seed, log);
    const data = await buildDataset({ ...dataOf(cfg), data: dataDir }, { onSkip: log });
    log(
      `data: ${data.root} (${data.layout}); train patients ${data.labelled.patients.join(", ")}; ` +
        `${data.sliceCounts.train} training slices, ${data.split.val.length} val and ${data.split.test.length} test patients`,
    );
    const { model, base, backbone } = await createSegmenter(build);
    if (cfg.trainCacheMib > 0 && !model.encode) {
      model.dispose();
      throw new ConfigError(
        `--train-cache-mib: ${cfg.method} trains its encoder, so its embeddings change every step; only the ` +
          `frozen-encoder methods (cnn-head, vit-head, gnet) can reuse them`,
      );
    }
    return { choice, dataDir, data, model, base, backbone };
  };
  const { choice, dataDir, data, model, base, backbone } = await setup().catch(async (err) => {
    if (fresh) await Deno.remove(dir, { recursive: true }).catch(() => {});
    else if (!opts.resume && !cfg.data) {
      await Deno.remove(`${dir}/phantoms`, { recursive: true }).catch(() => {});
    }
    throw err;
  });
  const optimizer = new Adam(model.trainable, {
    lr: cfg.lr,
    beta1: cfg.beta1,
    beta2: cfg.beta2,
    eps: cfg.eps,
  });
  const schedule = new LrSchedule({
    kind: cfg.schedule,
    factor: cfg.plateauFactor,
    patience: cfg.plateauPatience,
    threshold: cfg.plateauThreshold,
    startEpoch: cfg.plateauStart,
    minLr: 0,
  });
  try {
    let state: TrainState = {
      epoch: 0,
      step: 0,
      lr: cfg.lr,
      schedule: schedule.state(),
      rng: data.epochRng(0).state(),
      best: null,
      elapsedS: 0,
    };
    if (opts.resume) {
      const ck = await loadCheckpoint(dir);
      model.importTrainable(ck.trainable, `${dir}/${RUN_FILES.trainable}`);
      optimizer.importState(ck.optimizer, ck.state.step);
      schedule.restore(ck.state.schedule);
      state = ck.state;
      if (data.epochRng(state.epoch).state().join() !== state.rng.join()) {
        log(
          `warning: the data generator for epoch ${
            state.epoch + 1
          } differs from the checkpoint's (seed changed?)`,
        );
      }
      await truncateLog(dir, state.epoch);
      log(`resuming ${dir} after epoch ${state.epoch} (step ${state.step}, lr ${state.lr})`);
    } else {
      await Deno.remove(`${dir}/${RUN_FILES.log}`).catch(() => {});
    }
    const counts = model.counts();
    const record: RunRecord = {
      options: toOptionValues({ ...cfg, data: dataDir, out: dir }),
      method: cfg.method,
      backend: {
        name: choice.backend,
        reason: choice.reason,
        ...(choice.adapter ? { adapter: choice.adapter } : {}),
      },
      model: { spec: model.spec, trainable_params: counts.trainable, frozen_params: counts.frozen },
      base_weights: base,
      ...(backbone ? { backbone_weights: backbone } : {}),
      split: data.splitRecord(),
      created: new Date().toISOString(),
    };
    await writeJson(`${dir}/${RUN_FILES.config}`, record);
    const meta = { method: cfg.method, preset: cfg.preset, base_sha256: base.sha256 ?? "random" };
    const valCache = model.encode && cfg.valCacheMib > 0
      ? new EmbeddingCache(cfg.valCacheMib * 2 ** 20)
      : undefined;
    const trainCache = cfg.trainCacheMib > 0 ? new EmbeddingCache(cfg.trainCacheMib * 2 ** 20) : undefined;
    const events = train({
      model,
      data,
      optimizer,
      schedule,
      epochs: cfg.epochs,
      batchSize: cfg.batchSize,
      sink: runDirSink(dir, meta),
      state,
      logEvery: cfg.logEvery,
      valEvery: cfg.valEvery,
      signal: opts.signal,
      validate: () => validationDice(model, data, cfg.batchSize, valCache),
      trainCache,
    });
    try {
      for await (const ev of events) {
        opts.onEvent?.(ev);
        if (ev.type === "done" && ev.cancelled) {
          return { run: dir, test: { dice: { RV: NaN, Myo: NaN, LV: NaN, avg: NaN } } };
        }
      }
    } catch (err) {
      throw outOfMemory(err, choice.backend, cfg) ?? err;
    }
    for (const [what, cache] of [["validation", valCache], ["training", trainCache]] as const) {
      if (!cache) continue;
      const mib = (cache.byteLength / 2 ** 20).toFixed(0);
      log(`${what} embeddings: ${cache.size} slices kept (${mib} MiB), ${cache.hits} encoder runs spared`);
    }
    const metrics = await testMetrics(model, data, dir, cfg.batchSize, log);
    await writeJson(`${dir}/${RUN_FILES.metrics}`, metrics);
    return { run: dir, test: { dice: metrics.test.dice } };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

/**
 * The wasm backend's heap is capped at 4 GiB, and a kernel that cannot allocate fails with a bare
 * "memory access out of bounds"; say what happened and what to change instead (a user error, exit 2).
 */
function outOfMemory(
  err: unknown,
  backend: string,
  cfg: TrainConfig,
): Error | undefined {
  const encoderSize = encoderSizeOf(cfg);
  const msg = err instanceof Error ? err.message : String(err);
  if (backend !== "wasm" || !/memory access out of bounds|out of memory/i.test(msg)) return undefined;
  return new ConfigError(
    `the wasm backend ran out of memory (its heap is capped at 4 GiB) training --preset ${cfg.preset} with the ` +
      `encoder at ${encoderSize} px and --batch-size ${cfg.batchSize}; use a GPU (--backend webgpu) or a smaller ` +
      `--encoder-size or --batch-size`,
  );
}

/** Test metrics of the final weights (the paper's choice) and of best/ (docs/methods.md 7, decision 9). */
export async function testMetrics(
  model: Segmenter,
  data: Dataset,
  dir: string,
  batchSize: number,
  log: (l: string) => void,
): Promise<{ test: EvalResult; test_best?: EvalResult & { epoch: number } }> {
  const test = await evaluate(model, data.evalPatients("test"), { batchSize, perFrame: true });
  log(
    `test Dice (final weights): RV ${test.dice.RV.toFixed(4)} Myo ${test.dice.Myo.toFixed(4)} LV ${
      test.dice.LV.toFixed(4)
    } avg ${test.dice.avg.toFixed(4)}`,
  );
  const bestPath = `${dir}/${RUN_FILES.best}/${RUN_FILES.trainable}`;
  const state = JSON.parse(await Deno.readTextFile(`${dir}/${RUN_FILES.state}`)) as TrainState;
  if (!state.best || state.best.epoch === state.epoch || !(await exists(bestPath))) return { test };
  const final = await model.exportTrainable();
  model.importTrainable((await loadTrainable(bestPath)).tensors, bestPath);
  const best = await evaluate(model, data.evalPatients("test"), { batchSize, perFrame: true });
  model.importTrainable(final, "final weights");
  log(`test Dice (best/, epoch ${state.best.epoch}): avg ${best.dice.avg.toFixed(4)}`);
  return { test, test_best: { ...best, epoch: state.best.epoch } };
}
