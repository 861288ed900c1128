/** Typed, validated options of the whole data path, shared by `train`, `eval` and `data`. */
import { type AugmentConfig, type AugmentOptions, resolveAugment } from "../stages/augment.ts";
import type { OnBadCase } from "../stages/load.ts";
import { type Normalization, NORMALIZATIONS } from "../stages/normalize.ts";
import { DataError } from "./data_error.ts";
import type { FramesMode } from "./splits.ts";

export interface DataOptions {
  /** ACDC root (holding training/), a folder of patient folders, or a folder of X + X_gt pairs. */
  data: string;
  seed: number;
  /** Which of `folds` seeded shuffles, 0-based. */
  fold: number;
  folds: number;
  /** Labelled training patients (REFERENCE 7.1: first N of the shuffled train list), or "all". */
  trainPatients: number | "all";
  framesMode: FramesMode;
  /** Side of the square model grid. */
  imageSize: number;
  normalization: Normalization;
  /** Training augmentation; null = none. */
  augment: AugmentOptions | null;
  onBadCase: OnBadCase;
  /** Labels must be in 0..numClasses-1 (ACDC: background, RV, Myo, LV). */
  numClasses: number;
}

/** What a config file or flags may give; everything but `data` has a default. */
export type DataConfig = Partial<Omit<DataOptions, "augment">> & {
  data: string;
  augment?: AugmentConfig | false | null;
};

export const DEFAULT_DATA_OPTIONS: Omit<DataOptions, "data" | "augment"> = {
  seed: 0,
  fold: 0,
  folds: 5,
  trainPatients: 5,
  framesMode: "patients",
  imageSize: 224,
  normalization: "zscore",
  onBadCase: "fail",
  numClasses: 4,
};

const KNOWN = new Set([...Object.keys(DEFAULT_DATA_OPTIONS), "data", "augment"]);

function int(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`;
    throw new DataError(`${name}: ${JSON.stringify(v)} is not an integer ${range}`);
  }
  return v;
}

function oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) {
    throw new DataError(`${name}: ${JSON.stringify(v)} is not one of ${allowed.join(", ")}`);
  }
  return v as T;
}

/** Defaults filled in and every field checked; unknown fields and bad values are DataErrors naming the field. */
export function resolveDataOptions(config: DataConfig): DataOptions {
  for (const key of Object.keys(config)) {
    if (!KNOWN.has(key)) throw new DataError(`data option ${key}: unknown`);
  }
  const given = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined));
  const c = { ...DEFAULT_DATA_OPTIONS, ...given } as typeof DEFAULT_DATA_OPTIONS & { data: unknown };
  if (typeof c.data !== "string" || c.data === "") throw new DataError(`--data: a data folder is required`);
  const folds = int("folds", c.folds, 1);
  const fold = int("--fold", c.fold, 0);
  if (fold >= folds) throw new DataError(`--fold: ${fold} is not in 0..${folds - 1}`);
  if (typeof c.seed !== "number" || !Number.isSafeInteger(c.seed)) {
    throw new DataError(`--seed: ${JSON.stringify(c.seed)} is not an integer`);
  }
  const trainPatients = c.trainPatients === "all" ? "all" : int("--train-patients", c.trainPatients, 1);
  return {
    data: c.data,
    seed: c.seed,
    fold,
    folds,
    trainPatients,
    framesMode: oneOf("framesMode", c.framesMode, ["patients", "frames"] as const),
    imageSize: int("--image-size", c.imageSize, 8),
    normalization: oneOf("normalization", c.normalization, NORMALIZATIONS),
    augment: config.augment === false || config.augment === null
      ? null
      : resolveAugment(config.augment ?? {}),
    onBadCase: oneOf("--on-bad-case", c.onBadCase, ["fail", "skip"] as const),
    numClasses: int("numClasses", c.numClasses, 2, 256), // labels are stored as uint8
  };
}
