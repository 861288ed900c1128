/**
 * Reopening a trained run for evaluation and prediction: its config.json rebuilds the model, the base
 * weights are re-read from their recorded path (and checked against the recorded sha256) or re-drawn from
 * the seed, the trained weights come from trainable.safetensors (or best/), and LoRA is merged for inference.
 */
import { sha256File } from "../model/checkpoint.ts";
import { createSegmenter } from "../model/methods.ts";
import type { Segmenter } from "../model/segmenter.ts";
import { type BackendName, selectBackend } from "../engine/backend.ts";
import { applyOptions, dataOf, PAPER_DEFAULTS, TRAIN_OPTIONS, type TrainConfig } from "./config.ts";
import { oneOf, path } from "./option_schema.ts";
import { buildDataset, type Dataset, type Part } from "./dataset.ts";
import { CheckpointError } from "../model/checkpoint.ts";
import { exists, loadTrainable, readJson, RUN_FILES, writeJson } from "./run_dir.ts";
import { methodOptions, type RunRecord } from "./train_run.ts";
import { type EvalResult, evaluate } from "../stages/evaluate.ts";

/** The options of every command that opens a trained run (eval, predict, and the server's predict). */
export const OPEN_RUN_OPTIONS = {
  run: path,
  /** The last epoch's weights (the paper's choice) or best/ (highest validation Dice). */
  weights: oneOf(["final", "best"]),
  /** Default: the backend the run trained with. */
  backend: TRAIN_OPTIONS.backend.optional(),
};

export interface OpenedRun {
  dir: string;
  record: RunRecord;
  config: TrainConfig;
  model: Segmenter;
  /** Which weights were loaded: the final epoch's or best/. */
  weights: "final" | "best";
}

/** Loads a run directory's model for inference (caller disposes model). */
export async function openRun(
  dir: string,
  opts: { backend?: BackendName; weights?: "final" | "best"; log?: (l: string) => void } = {},
): Promise<OpenedRun> {
  const log = opts.log ?? ((l: string) => console.error(l));
  const configPath = `${dir}/${RUN_FILES.config}`;
  if (!(await exists(configPath))) {
    throw new CheckpointError(`${dir}: not a run directory (no ${RUN_FILES.config})`);
  }
  const record = await readJson<RunRecord>(configPath);
  const options = record.options ?? {};
  // Runs from before --split-seed split their patients with --seed: keep their test patients.
  const legacy = "seed" in options && !("split-seed" in options) ? { "split-seed": options.seed } : {};
  const config = applyOptions(PAPER_DEFAULTS, { ...options, ...legacy }, configPath);
  const base = record.base_weights;
  if (base?.path) {
    if (!(await exists(base.path))) {
      throw new CheckpointError(
        `${configPath}: base weights ${base.path} are missing (runs reference them, never copy them)`,
      );
    }
    const sha = await sha256File(base.path);
    if (base.sha256 && sha !== base.sha256) {
      throw new CheckpointError(
        `${base.path}: sha256 ${sha.slice(0, 12)}... differs from the one the run trained on ` +
          `(${base.sha256.slice(0, 12)}...); the file changed`,
      );
    }
  }
  const choice = await selectBackend(opts.backend ?? config.backend, {}, log);
  const weights = opts.weights ?? "final";
  const path = weights === "best"
    ? `${dir}/${RUN_FILES.best}/${RUN_FILES.trainable}`
    : `${dir}/${RUN_FILES.trainable}`;
  const trained = await loadTrainable(path);
  const { model } = await createSegmenter({
    ...methodOptions(config, choice.maxBindingBytes),
    weights: base?.path ?? null,
    backboneWeights: null, // the trained backbone is in the run's own weights
  });
  try {
    model.importTrainable(trained.tensors, path);
  } catch (err) {
    model.dispose();
    throw err;
  }
  model.merge();
  return { dir, record, config, model, weights };
}

/** The run's data path, optionally on another data folder (same split rules and seed). */
export async function runDataset(run: OpenedRun, data?: string, log?: (l: string) => void): Promise<Dataset> {
  const c = run.config;
  return await buildDataset({ ...dataOf(c), data: data ?? c.data!, augment: false }, { onSkip: log });
}

/** Evaluates a split of a run and merges the result into its metrics.json under that split's name. */
export async function evaluateRun(
  run: OpenedRun,
  dataset: Dataset,
  split: Part,
  log: (l: string) => void,
): Promise<EvalResult> {
  const result = await evaluate(run.model, dataset.evalPatients(split), {
    batchSize: run.config.batchSize,
    perFrame: true,
    onPatient: (p, d) => log(`${p}: RV ${d.RV.toFixed(4)} Myo ${d.Myo.toFixed(4)} LV ${d.LV.toFixed(4)}`),
  });
  const path = `${run.dir}/${RUN_FILES.metrics}`;
  const metrics = (await exists(path)) ? await readJson<Record<string, unknown>>(path).catch(() => ({})) : {};
  const key = run.weights === "best" ? `${split}_best` : split;
  await writeJson(path, { ...metrics, [key]: result });
  return result;
}
