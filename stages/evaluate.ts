/**
 * Evaluation: the paper's protocol (per test patient, ED and ES slices stacked into one volume at the model
 * grid, 3D Dice per class with empty vs empty = 1, mean over patients, then over RV/Myo/LV) and, beyond it,
 * per-frame Dice and HD95 in millimetres on each volume's original grid.
 */
import { concatBytes } from "../io/concat_bytes.ts";
import type { Segmenter } from "../model/segmenter.ts";
import type { EmbeddingCache } from "./embedding_cache.ts";
import { dice, hd95 } from "./metrics.ts";
import { predictSlices } from "./predict_slices.ts";
import type { DiceScores } from "./train_events.ts";
import { CLASS_NAMES, type ClassName, type EvalPatient } from "./volume.ts";

type PerClass<T> = Record<ClassName, T>;

export interface FrameMetrics {
  id: string;
  patient: string;
  phase?: string;
  dice: PerClass<number>;
  /** mm; null where exactly one of prediction and truth is empty (undefined distance). */
  hd95: PerClass<number | null>;
}

export interface EvalResult {
  /** The paper's number: mean over patients of 3D Dice (ED+ES stacked, model grid), per class and averaged. */
  dice: DiceScores;
  patients: { patient: string; dice: PerClass<number> }[];
  /** Per frame at the original resolution (absent when not asked for). */
  frames?: FrameMetrics[];
  /** Means over frames; HD95 over the frames where it is defined, with how many were not. */
  frame_mean?: { dice: DiceScores; hd95: PerClass<number | null>; hd95_undefined: PerClass<number> };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function scores(per: PerClass<number>): DiceScores {
  return { ...per, avg: mean(CLASS_NAMES.map((c) => per[c])) };
}

export interface EvaluateOptions {
  batchSize: number;
  /** Also compute per-frame Dice and HD95 at the original resolution. */
  perFrame: boolean;
  /** Embeddings of a frozen encoder kept across calls (validation every epoch); see EmbeddingCache. */
  cache?: EmbeddingCache;
  /** Called after each patient (e.g. progress lines). */
  onPatient?: (patient: string, dice: PerClass<number>) => void;
}

/** Runs the model over every patient and scores it (the patients' volumes are consumed one at a time). */
export async function evaluate(
  model: Segmenter,
  patients: AsyncIterable<EvalPatient>,
  opts: EvaluateOptions,
): Promise<EvalResult> {
  const perPatient: EvalResult["patients"] = [];
  const frames: FrameMetrics[] = [];
  for await (const p of patients) {
    const preds: Uint8Array[] = [], truths: Uint8Array[] = [];
    for (const v of p.volumes) {
      const maps = await predictSlices(model, v.slices, opts.batchSize, opts.cache);
      preds.push(...maps);
      truths.push(...v.slices.map((s) => s.label));
      if (opts.perFrame) {
        const pred = v.toOriginal(maps); // [Z, Y, X] on the original grid
        const gt = v.volume.label;
        const vol = { dims: v.volume.shape };
        frames.push({
          id: v.volume.id,
          patient: p.patient,
          ...(v.volume.phase ? { phase: v.volume.phase } : {}),
          dice: Object.fromEntries(CLASS_NAMES.map((c, i) => [c, dice(pred, gt, i + 1)])) as PerClass<number>,
          hd95: Object.fromEntries(
            CLASS_NAMES.map((
              c,
              i,
            ) => [c, hd95({ ...vol, data: pred }, { ...vol, data: gt }, i + 1, v.volume.spacing)]),
          ) as PerClass<number | null>,
        });
      }
    }
    const pv = concatBytes(preds), gv = concatBytes(truths);
    const d = Object.fromEntries(CLASS_NAMES.map((c, i) => [c, dice(pv, gv, i + 1)])) as PerClass<number>;
    perPatient.push({ patient: p.patient, dice: d });
    opts.onPatient?.(p.patient, d);
  }
  if (perPatient.length === 0) throw new Error("evaluate: no patients to evaluate");
  const result: EvalResult = {
    dice: scores(
      Object.fromEntries(CLASS_NAMES.map((c) => [c, mean(perPatient.map((p) => p.dice[c]))])) as PerClass<
        number
      >,
    ),
    patients: perPatient,
  };
  if (opts.perFrame && frames.length) {
    const defined = (c: ClassName) => frames.map((f) => f.hd95[c]).filter((h): h is number => h !== null);
    result.frames = frames;
    result.frame_mean = {
      dice: scores(
        Object.fromEntries(CLASS_NAMES.map((c) => [c, mean(frames.map((f) => f.dice[c]))])) as PerClass<
          number
        >,
      ),
      hd95: Object.fromEntries(
        CLASS_NAMES.map((c) => [c, defined(c).length ? mean(defined(c)) : null]),
      ) as PerClass<number | null>,
      hd95_undefined: Object.fromEntries(
        CLASS_NAMES.map((c) => [c, frames.length - defined(c).length]),
      ) as PerClass<number>,
    };
  }
  return result;
}
