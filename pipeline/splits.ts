/**
 * Patient-level splits as in the Hu/Xu/Shi code (independent seeded shuffles per fold, 70/15/15) and the
 * label-efficient subset (the first N training patients), so every run can report and save its patient IDs.
 */
import { DataError } from "../errors.ts";
import { Rng } from "../engine/rng.ts";

/** How many independent seeded shuffles of the patients `--fold` chooses from. */
export const FOLDS = 5;

/** How many labelled volumes "N" means: N patients with both frames (default, docs/methods.md 7, decision 1) or N frames. */
export type FramesMode = "patients" | "frames";

export interface SplitOptions {
  seed: number;
  /** Which of the FOLDS independent shuffles to use, 0-based (checked where options are read). */
  fold: number;
  /** Fractions of patients for val and test; train gets the rest. */
  valFraction?: number;
  testFraction?: number;
}

export interface Split {
  seed: number;
  fold: number;
  train: string[];
  val: string[];
  test: string[];
}

/**
 * Shuffles the (sorted, de-duplicated) patient IDs with a generator keyed by seed and fold and cuts them into
 * train/val/test; val and test get round(fraction * n) patients each (at least 1), train the rest, so every
 * patient lands in exactly one part. Folds are independent shuffles, as create_acdc_folds does, not k-fold CV.
 */
export function splitPatients(patients: readonly string[], opts: SplitOptions): Split {
  const valFraction = opts.valFraction ?? 0.15;
  const testFraction = opts.testFraction ?? 0.15;
  if (!Number.isInteger(opts.fold) || opts.fold < 0 || opts.fold >= FOLDS) {
    throw new RangeError(`fold ${opts.fold} is not in 0..${FOLDS - 1}`);
  }
  if (!(valFraction > 0 && testFraction > 0 && valFraction + testFraction < 1)) {
    throw new DataError(
      `split fractions val ${valFraction}, test ${testFraction} must be > 0 and sum below 1`,
    );
  }
  const ids = [...new Set(patients)].sort();
  const n = ids.length;
  if (n < 3) {
    throw new DataError(`need at least 3 patients for a train/val/test split, found ${n}`);
  }
  const nVal = Math.max(1, Math.round(valFraction * n));
  const nTest = Math.max(1, Math.round(testFraction * n));
  const nTrain = n - nVal - nTest;
  if (nTrain < 1) throw new DataError(`${n} patients leave none for training`);
  const order = new Rng(opts.seed).fork("split").fork(`fold${opts.fold}`).shuffle(ids);
  return {
    seed: opts.seed,
    fold: opts.fold,
    train: order.slice(0, nTrain),
    val: order.slice(nTrain, nTrain + nVal),
    test: order.slice(nTrain + nVal),
  };
}

export interface LabelledSubset {
  /** Training patients whose labels are used, in split order. */
  patients: string[];
  /** The labelled volume IDs (patient + frame), in the same order. */
  volumes: string[];
}

/**
 * The label-efficient subset: the first `count` training patients. In "patients" mode every volume (ED and ES)
 * of each; in "frames" mode one volume each, alternating ED/ES (patient 1 ED, patient 2 ES, ...), so N frames
 * come from N patients with both phases represented. `count` "all" keeps the whole training list.
 * volumesOf returns a patient's volume IDs ordered ED then ES.
 */
export function labelledSubset(
  train: readonly string[],
  count: number | "all",
  mode: FramesMode,
  volumesOf: (patient: string) => string[],
): LabelledSubset {
  const n = count === "all" ? train.length : count;
  if (n > train.length) {
    throw new DataError(`--train-patients ${n}: the training split has only ${train.length} patients`);
  }
  const patients = train.slice(0, n);
  const volumes = patients.flatMap((patient, i) => {
    const own = volumesOf(patient);
    if (mode === "patients" || own.length <= 1) return own;
    return [own[i % 2 === 0 ? 0 : 1]];
  });
  return { patients, volumes };
}
