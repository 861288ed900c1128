/**
 * What the training stage tells the world: one event per optimizer step, per validation, per checkpoint and
 * at the end. The CLI renders them as a progress bar or lines (pipeline/progress.ts), the server streams them.
 */

/** Validation or test Dice per class and their mean (fractions 0..1). */
export interface DiceScores {
  RV: number;
  Myo: number;
  LV: number;
  avg: number;
}

/** One optimizer step (epoch and step 1-based). */
export interface ProgressEvent {
  type: "progress";
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  global_step: number;
  loss: number;
  lr: number;
  elapsed_s: number;
  eta_s: number;
}

/** End-of-epoch validation. */
export interface ValidationEvent {
  type: "validation";
  epoch: number;
  dice: DiceScores;
  /** Whether this epoch became best/. */
  best: boolean;
}

export interface CheckpointEvent {
  type: "checkpoint";
  epoch: number;
}

export interface DoneEvent {
  type: "done";
  epoch: number;
  elapsed_s: number;
  /** True when training stopped early on request (the last checkpoint is kept). */
  cancelled: boolean;
}

export type TrainEvent = ProgressEvent | ValidationEvent | CheckpointEvent | DoneEvent;
