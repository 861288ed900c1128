/**
 * What the API says about a run, read from its files each time (config.json, state.json, log.jsonl,
 * metrics.json), so runs started from the command line show up too and every answer is current.
 */
import { join } from "node:path";
import { RUN_FILES } from "../pipeline/run_dir.ts";
import type { DiceScores } from "../stages/train_events.ts";
import { lastRecords, type LogRecord } from "./run_log.ts";
import type { Job, JobStatus } from "./trainer.ts";

/**
 * training, done, cancelled, failed (what this server saw of a run it started), or, for any other run not
 * finished: incomplete (stopped, killed, or being trained by another process: its `updated` time tells).
 */
export type RunStatus = JobStatus | "incomplete";

export interface RunSummary {
  id: string;
  status: RunStatus;
  method: string | null;
  preset: string | null;
  /** Epochs asked for, and completed (the checkpoint's). */
  epochs: number | null;
  epoch: number;
  global_step: number;
  best: { epoch: number; dice: number } | null;
  /** Validation Dice of the last completed epoch. */
  val_dice: DiceScores | null;
  /** Test Dice of the final weights, once the run has finished. */
  test: DiceScores | null;
  last_step: { epoch: number; step: number; steps: number | null; loss: number; lr: number } | null;
  created: string | null;
  /** Last change to the log or the checkpoint. */
  updated: string | null;
  /** Weights a prediction can use. */
  weights: ("final" | "best")[];
  /** A checkpoint exists and the run has epochs left: `deno task train --out DIR --resume` continues it. */
  resumable: boolean;
  error?: string;
}

/** A JSON file's value, or null when it is missing or torn (a run's files are read while they change). */
export async function readJsonOrNull<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch {
    return null;
  }
}

const mtime = (path: string) => Deno.stat(path).then((s) => s.mtime, () => null);
const isFile = (path: string) => Deno.stat(path).then((s) => s.isFile, () => false);

interface ConfigJson {
  options?: { epochs?: number; preset?: string };
  method?: string;
  created?: string;
}

/** The summary of one run folder, with what this server knows of it (job) if it started it. */
export async function runSummary(id: string, dir: string, job?: Job): Promise<RunSummary> {
  const f = (name: string) => join(dir, name);
  const [config, state, metrics, log] = await Promise.all([
    readJsonOrNull<ConfigJson>(f(RUN_FILES.config)),
    readJsonOrNull<{ epoch?: number; step?: number; best?: RunSummary["best"] }>(f(RUN_FILES.state)),
    readJsonOrNull<{ test?: { dice?: DiceScores } }>(f(RUN_FILES.metrics)),
    lastRecords(f(RUN_FILES.log)),
  ]);
  const [hasFinal, hasBest, hasOptimizer] = await Promise.all([
    isFile(f(RUN_FILES.trainable)),
    isFile(join(dir, RUN_FILES.best, RUN_FILES.trainable)),
    isFile(f(RUN_FILES.optimizer)),
  ]);
  const times = (await Promise.all([mtime(f(RUN_FILES.log)), mtime(f(RUN_FILES.state))]))
    .filter((t): t is Date => t !== null);
  const epochs = config?.options?.epochs ?? null;
  const epoch = state?.epoch ?? 0;
  const test = metrics?.test?.dice ?? null;
  const finished = test !== null && epochs !== null && epoch >= epochs;
  const status: RunStatus = job ? job.status : finished ? "done" : "incomplete";
  return {
    id,
    status,
    method: config?.method ?? null,
    preset: config?.options?.preset ?? null,
    epochs,
    epoch,
    global_step: state?.step ?? 0,
    best: state?.best ?? null,
    val_dice: (log.epoch?.val_dice as unknown as DiceScores) ?? null,
    test,
    last_step: stepOf(log.step),
    created: config?.created ?? job?.started ?? null,
    updated: times.length ? new Date(Math.max(...times.map((t) => t.getTime()))).toISOString() : null,
    weights: [...(hasFinal ? ["final" as const] : []), ...(hasBest ? ["best" as const] : [])],
    resumable: status !== "training" && hasFinal && hasOptimizer && epochs !== null && epoch < epochs,
    ...(job?.error ? { error: job.error } : {}),
  };
}

function stepOf(r: LogRecord | null): RunSummary["last_step"] {
  if (!r) return null;
  return { epoch: r.epoch, step: r.step ?? 0, steps: r.steps ?? null, loss: r.loss ?? NaN, lr: r.lr ?? NaN };
}
