/**
 * The paper's comparison as a grid of ordinary training runs: methods x weight sets (SAM, MedSAM) x seeds x
 * folds, one run directory per cell under the output folder. A finished cell (its metrics.json holds test
 * scores) is never trained again and an interrupted one resumes, so rerunning the command resumes the grid;
 * cells can also run one at a time (`--cell K`) on a scheduler and be collected afterwards.
 */
import { join } from "node:path";
import { ConfigError } from "../errors.ts";
import type { MethodName } from "../model/methods.ts";
import type { DiceScores } from "../stages/train_events.ts";
import { resolveConfig } from "./config.ts";
import { exists, readJson, RUN_FILES } from "./run_dir.ts";
import { type RunRecord, runTraining } from "./train_run.ts";

export const WEIGHT_SETS = ["SAM", "MedSAM"] as const;
export type WeightSet = typeof WEIGHT_SETS[number];

export interface GridOptions {
  data: string;
  /** Checkpoint per weight set, or "random" (smoke runs). */
  weights: Record<WeightSet, string>;
  methods: MethodName[];
  seeds: number[];
  folds: number[];
  preset: "vit_b" | "tiny";
  /** null: the preset's recipe. */
  epochs: number | null;
  backend: string;
  out: string;
  /** Further train options for every cell (flag names as keys), e.g. {"normalization": "medsam"}. */
  extra?: Record<string, string>;
}

export interface Cell {
  index: number;
  method: MethodName;
  weights: WeightSet;
  seed: number;
  fold: number;
  /** The cell's run directory. */
  run: string;
}

export interface CellResult extends Cell {
  status: "done" | "pending";
  dice?: DiceScores;
  trainable_params?: number;
  train_time_s?: number;
}

/** Every cell of the grid in a stable order (method, weight set, fold, seed): `--cell K` names the same run. */
export function gridCells(g: GridOptions): Cell[] {
  const cells: Cell[] = [];
  for (const method of g.methods) {
    for (const weights of WEIGHT_SETS) {
      for (const fold of g.folds) {
        for (const seed of g.seeds) {
          const run = join(g.out, "runs", `${method}-${weights.toLowerCase()}-fold${fold}-seed${seed}`);
          cells.push({ index: cells.length, method, weights, seed, fold, run });
        }
      }
    }
  }
  return cells;
}

/** The train flags of one cell: the grid's shared options, then the cell's own. */
function cellFlags(g: GridOptions, c: Cell): Record<string, string> {
  return {
    ...g.extra,
    data: g.data,
    preset: g.preset,
    backend: g.backend,
    method: c.method,
    weights: g.weights[c.weights],
    seed: String(c.seed),
    fold: String(c.fold),
    out: c.run,
    ...(g.epochs !== null ? { epochs: String(g.epochs) } : {}),
  };
}

/** What a cell's run directory says: finished (with its scores) or not. */
export async function cellResult(c: Cell): Promise<CellResult> {
  const metricsPath = join(c.run, RUN_FILES.metrics);
  if (!(await exists(metricsPath))) return { ...c, status: "pending" };
  const metrics = await readJson<{ test?: { dice?: DiceScores } }>(metricsPath);
  if (!metrics.test?.dice) return { ...c, status: "pending" };
  const record = await readJson<RunRecord>(join(c.run, RUN_FILES.config));
  const state = await readJson<{ elapsedS?: number }>(join(c.run, RUN_FILES.state)).catch(() => ({
    elapsedS: 0,
  }));
  return {
    ...c,
    status: "done",
    dice: metrics.test.dice,
    trainable_params: record.model?.trainable_params,
    train_time_s: state.elapsedS,
  };
}

/**
 * Runs one cell: skipped when finished, resumed when a previous attempt left a checkpoint, trained from the
 * start otherwise. log gets the cell's own progress lines.
 */
export async function runCell(g: GridOptions, c: Cell, log: (l: string) => void): Promise<CellResult> {
  const done = await cellResult(c);
  if (done.status === "done") return done;
  const resume = await exists(join(c.run, RUN_FILES.optimizer));
  if (!resume && (await exists(c.run))) {
    // The grid owns its cell folders: an attempt that saved no epoch has nothing to keep (train refuses it).
    log(`${c.run}: an earlier attempt saved no epoch; starting the cell again`);
    await Deno.remove(c.run, { recursive: true });
  }
  const cfg = await resolveConfig(cellFlags(g, c));
  await runTraining(cfg, { resume, log });
  const result = await cellResult(c);
  if (result.status !== "done") throw new ConfigError(`${c.run}: the cell's run ended without test scores`);
  return result;
}

/** Checks the cell index given to `--cell`. */
export function pickCell(cells: Cell[], k: number): Cell {
  if (!Number.isInteger(k) || k < 0 || k >= cells.length) {
    throw new ConfigError(`--cell: ${k} is not a cell of this grid (0..${cells.length - 1}; see --list)`);
  }
  return cells[k];
}
