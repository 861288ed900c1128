/**
 * Where the training loop's state, log records and weights go. The loop only calls this interface, so it runs
 * without a file system in tests (memorySink); pipeline/run_dir.ts implements it with a run directory.
 */
import type { HostTensor } from "../io/host_tensor.ts";
import type { ScheduleState } from "../engine/optimizer.ts";

/** What --resume needs besides the weights: the run continues as if never stopped. */
export interface TrainState {
  /** Completed epochs (the next epoch to run, 0-based). */
  epoch: number;
  /** Optimizer steps taken so far. */
  step: number;
  lr: number;
  schedule: ScheduleState;
  /** The run's root random generator state (data order and augmentation fork from it per epoch). */
  rng: number[];
  /** Best validation Dice so far and its epoch (1-based), kept in best/. */
  best: { epoch: number; dice: number } | null;
  /** Seconds spent training so far (for the ETA after a resume). */
  elapsedS: number;
}

/** One end-of-epoch checkpoint: trainable weights, optimizer moments and the loop's state. */
export interface Checkpoint {
  trainable: Map<string, HostTensor>;
  optimizer: Map<string, HostTensor>;
  state: TrainState;
}

export interface TrainSink {
  /** One log record: `{type: "step", ...}` every logEvery steps, `{type: "epoch", ...}` per epoch. */
  log(record: Record<string, unknown>): Promise<void>;
  /** Weights that just became the best by validation Dice. */
  saveBest(trainable: Map<string, HostTensor>, best: { epoch: number; dice: number }): Promise<void>;
  /** The checkpoint a resumed run continues from; called after every epoch. */
  saveCheckpoint(checkpoint: Checkpoint): Promise<void>;
}

/** A sink that keeps everything in memory (tests, and library callers that save weights themselves). */
export function memorySink(): TrainSink & {
  records: Record<string, unknown>[];
  best?: { trainable: Map<string, HostTensor>; epoch: number; dice: number };
  checkpoint?: Checkpoint;
} {
  const sink: ReturnType<typeof memorySink> = {
    records: [],
    log: (record) => {
      sink.records.push(record);
      return Promise.resolve();
    },
    saveBest: (trainable, best) => {
      sink.best = { trainable, ...best };
      return Promise.resolve();
    },
    saveCheckpoint: (checkpoint) => {
      sink.checkpoint = checkpoint;
      return Promise.resolve();
    },
  };
  return sink;
}
