/**
 * A whole training run from a resolved config: backend, model, data (the demo's phantoms when no data is
 * given), the run directory, the training loop (stages/train.ts) with resume, and the final test evaluation.
 * `deno task train` (cli/train.ts) and, next, the server's POST /api/runs both call runTraining.
 */
import { tf } from "../engine/tf.ts";
import { type BuildOptions, createLoraMedNet, LoraMedNet, loraMedNetSpec } from "../model/loramednet.ts";
import { cnnHeadParamCount } from "../model/heads/cnn_head.ts";
import { loraParamCount } from "../model/lora.ts";
import { ceDiceLoss } from "../model/losses.ts";
import { initSamParams, samParamShapes } from "../model/sam/params.ts";
import { type BackendChoice, selectBackend } from "../engine/backend.ts";
import { ConfigError } from "../errors.ts";
import { dataOf, type TrainConfig } from "./config.ts";
import { toOptionValues } from "./option_schema.ts";
import { NUM_CLASSES } from "../stages/volume.ts";
import { buildDataset, type Dataset } from "./dataset.ts";
import { Adam, LrSchedule } from "../engine/optimizer.ts";
import type { DiceScores, TrainEvent } from "../stages/train_events.ts";
import {
  cleanStaged,
  exists,
  loadCheckpoint,
  loadTrainable,
  RUN_FILES,
  runDirSink,
  truncateLog,
  writeJson,
} from "./run_dir.ts";
import { type EvalResult, evaluate } from "../stages/evaluate.ts";
import { train } from "../stages/train.ts";
import type { TrainState } from "../stages/train_sink.ts";
import { makeDemoData } from "./demo_data.ts";

/** Kernels one training step runs, found by profiling a micro model of the same method on the cpu backend. */
export async function trainingKernels(
  cfg: Pick<TrainConfig, "method" | "preset" | "loraRank">,
): Promise<string[]> {
  // (No tf.getBackend() here: with no backend set yet it would initialise webgpu just to report it.)
  await selectBackend("cpu", {}, () => {});
  const spec = loraMedNetSpec({
    method: cfg.method as "loramednet",
    preset: cfg.preset,
    weights: null,
    loraRank: cfg.loraRank,
    imageSize: 12,
    encoderSize: null,
    headTopChannel: 1,
    numClasses: NUM_CLASSES,
    seed: 0,
  });
  // Same ops at toy sizes: 2x2 tokens (plus window padding when the window is bigger), one image.
  spec.sam = {
    ...spec.sam,
    image_size: spec.sam.patch_size * 2,
    embed_dim: spec.sam.num_heads * 2,
    out_chans: 8,
  };
  spec.head.inChans = 8;
  const all = initSamParams(spec.sam, 0);
  const params = new Map([...all].filter(([k]) => k.startsWith("image_encoder.")));
  for (const [k, t] of all) if (!k.startsWith("image_encoder.")) t.dispose();
  const model = new LoraMedNet(spec, params, 0);
  const x = tf.zeros([1, 12, 12, 3]) as tf.Tensor4D;
  const y = tf.zeros([1, 12, 12], "int32");
  try {
    const info = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(() => ceDiceLoss(model.forward(x), y), [
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
  model: { spec: ReturnType<typeof loraMedNetSpec>; trainable_params: number; frozen_params: number };
  base_weights: { path: string | null; sha256: string | null; source: string };
  split: ReturnType<Dataset["splitRecord"]>;
  created: string;
}

/**
 * --dry-run: parameter counts. With --weights the model is really built (so the file is read and checked);
 * with random base weights the counts come from the architecture, without drawing ~90 M random numbers.
 */
async function dryRun(build: BuildOptions, backend: TrainConfig["backend"], log: (l: string) => void) {
  if (!build.weights) {
    const spec = loraMedNetSpec(build);
    const frozen = [...samParamShapes(spec.sam)].filter(([k]) => k.startsWith("image_encoder."))
      .reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0);
    return {
      trainable_params: cnnHeadParamCount(spec.head) + (spec.rank ? loraParamCount(spec.sam, spec.rank) : 0),
      frozen_params: frozen,
    };
  }
  await selectBackend(backend, {}, log);
  const { model } = await createLoraMedNet(build);
  const c = model.counts();
  model.dispose();
  return { trainable_params: c.trainable, frozen_params: c.frozen };
}

function defaultOut(cfg: TrainConfig): string {
  const stamp = new Date().toISOString().replace(/[:]/g, "-").replace(/\..*$/, "");
  return `runs/${stamp}-${cfg.method}`;
}

async function validationDice(model: LoraMedNet, data: Dataset, batchSize: number): Promise<DiceScores> {
  return (await evaluate(model, data.evalPatients("val"), { batchSize, perFrame: false })).dice;
}

/** Runs (or resumes, or dry-runs) training and evaluates the result on the test patients. */
export async function runTraining(
  cfg: TrainConfig,
  opts: RunOptions = {},
): Promise<RunResult | { trainable_params: number; frozen_params: number }> {
  const log = opts.log ?? ((l: string) => console.error(l));
  const build: BuildOptions = {
    ...cfg,
    method: cfg.method as "loramednet" | "cnn-head",
    numClasses: NUM_CLASSES,
  };
  if (opts.dryRun) return await dryRun(build, cfg.backend, log);
  const kernels = await trainingKernels(cfg);
  const choice: BackendChoice = await selectBackend(cfg.backend, { kernels }, log);
  build.maxBindingBytes = choice.maxBindingBytes;
  const dir = cfg.out ?? defaultOut(cfg);
  const fresh = !(await Deno.stat(dir).then(() => true, () => false));
  await Deno.mkdir(dir, { recursive: true });
  await cleanStaged(dir);
  // Bad data or weights found while setting up must not leave an empty run directory behind.
  const setup = async () => {
    const dataDir = cfg.data ?? await makeDemoData(`${dir}/phantoms`, cfg.demoPatients, cfg.seed, log);
    const data = await buildDataset({ ...dataOf(cfg), data: dataDir }, { onSkip: log });
    log(
      `data: ${data.root} (${data.layout}); train patients ${data.labelled.patients.join(", ")}; ` +
        `${data.sliceCounts.train} training slices, ${data.split.val.length} val and ${data.split.test.length} test patients`,
    );
    const { model, base } = await createLoraMedNet(build);
    return { dataDir, data, model, base };
  };
  const { dataDir, data, model, base } = await setup().catch(async (err) => {
    if (fresh) await Deno.remove(dir, { recursive: true }).catch(() => {});
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
      split: data.splitRecord(),
      created: new Date().toISOString(),
    };
    await writeJson(`${dir}/${RUN_FILES.config}`, record);
    const meta = { method: cfg.method, preset: cfg.preset, base_sha256: base.sha256 ?? "random" };
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
      signal: opts.signal,
      validate: () => validationDice(model, data, cfg.batchSize),
    });
    try {
      for await (const ev of events) {
        opts.onEvent?.(ev);
        if (ev.type === "done" && ev.cancelled) {
          return { run: dir, test: { dice: { RV: NaN, Myo: NaN, LV: NaN, avg: NaN } } };
        }
      }
    } catch (err) {
      throw outOfMemory(err, choice.backend, cfg, model.spec.sam.image_size) ?? err;
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
  encoderSize: number,
): Error | undefined {
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
  model: LoraMedNet,
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
