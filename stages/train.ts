/**
 * The training loop (the train stage): consumes each epoch's batches, steps the optimizer and yields progress
 * events; at each epoch's end it applies the learning-rate rule, validates, and hands the best weights and a
 * checkpoint to its sink so --resume continues exactly where the last complete epoch ended. The whole run
 * around it (backend, model, data, run directory, test scores) is pipeline/train_run.ts; the `deno task
 * train` command line is cli/train.ts.
 */
import { tf } from "../engine/tf.ts";
import { ceDiceLoss } from "../model/losses.ts";
import type { Segmenter } from "../model/segmenter.ts";
import type { Adam, LrSchedule } from "../engine/optimizer.ts";
import type { DiceScores, TrainEvent } from "./train_events.ts";
import type { Rng } from "../engine/rng.ts";
import type { TrainSink, TrainState } from "./train_sink.ts";
import { type Batch, disposeBatch } from "./batch.ts";
import { type EmbeddingCache, embeddingsOf } from "./embedding_cache.ts";

/** What training needs from the data path (pipeline/dataset.ts's Dataset satisfies it). */
export interface TrainData {
  /** Slices per epoch (labelled training slices). */
  sliceCounts: { train: number };
  /** The epoch's generator: seed-derived, so a resumed run replays the same order and augmentation. */
  epochRng(epoch: number): Rng;
  trainBatches(rng: Rng, opts: { batchSize: number }): AsyncIterable<Batch>;
}

export interface TrainOptions {
  model: Segmenter;
  data: TrainData;
  optimizer: Adam;
  schedule: LrSchedule;
  epochs: number;
  batchSize: number;
  /** Where log records, best weights and checkpoints go (a run directory in pipeline/run_dir.ts). */
  sink: TrainSink;
  /** Where to start: a fresh state, or the one loaded for --resume. */
  state: TrainState;
  logEvery: number;
  /** Validate every n-th epoch (and after the last one); default 1. */
  valEvery?: number;
  /** Validation Dice of the current weights (mean over val patients, paper protocol). */
  validate: () => Promise<DiceScores>;
  loss?: (logits: tf.Tensor, labels: tf.Tensor) => tf.Scalar;
  /** Stop after the current step; the last complete epoch's checkpoint is kept. */
  signal?: AbortSignal;
  /**
   * Embeddings of the training slices for a frozen encoder, reused across epochs: only sound when the slices
   * are the same every epoch (no augmentation), which the caller checks.
   */
  trainCache?: EmbeddingCache;
}

/**
 * One optimizer step; returns the loss. Every tensor it makes is freed before it returns. With `cache` and a
 * model whose encoder is frozen, the encoder's output comes from the cache where the batch's slices are in it
 * (embeddingsOf): the same loss and gradients, since the frozen encoder is off the tape anyway.
 */
export async function trainStep(
  model: Segmenter,
  optimizer: Adam,
  batch: Batch,
  loss: (logits: tf.Tensor, labels: tf.Tensor) => tf.Scalar = model.loss ?? ceDiceLoss,
  cache?: EmbeddingCache,
): Promise<number> {
  const vars = [...model.trainable.values()];
  const names = new Map([...model.trainable].map(([k, v]) => [v.name, k]));
  const { encode, decode } = model;
  const emb = cache && encode && decode
    ? await embeddingsOf({ encode }, batch.ids, batch.image, cache) // [B, g, g, C]
    : undefined;
  let result;
  try {
    result = tf.variableGrads(
      () => loss(emb ? decode!(batch.image, emb, true) : model.forward(batch.image, true), batch.label),
      vars,
    );
  } finally {
    emb?.dispose();
  }
  const { value, grads } = result;
  try {
    optimizer.step(new Map(Object.entries(grads).map(([vn, g]) => [names.get(vn)!, g])));
    return (await value.data())[0];
  } finally {
    tf.dispose([value, ...Object.values(grads)]);
  }
}

/** Trains from opts.state.epoch to opts.epochs, yielding events; checkpoints after every epoch. */
export async function* train(opts: TrainOptions): AsyncGenerator<TrainEvent> {
  const { model, data, optimizer, schedule, epochs, batchSize, sink } = opts;
  const loss = opts.loss ?? model.loss ?? ceDiceLoss;
  const state: TrainState = structuredClone(opts.state);
  const steps = Math.ceil(data.sliceCounts.train / batchSize);
  const t0 = performance.now(), before = state.elapsedS;
  const elapsed = () => before + (performance.now() - t0) / 1000;
  let sessionSteps = 0;
  optimizer.lr = state.lr;
  for (let epoch = state.epoch; epoch < epochs; epoch++) {
    const rng = data.epochRng(epoch);
    let step = 0, last = NaN;
    for await (const batch of data.trainBatches(rng, { batchSize })) {
      try {
        last = await trainStep(model, optimizer, batch, loss, opts.trainCache);
      } finally {
        disposeBatch(batch);
      }
      step++;
      sessionSteps++;
      state.step++;
      if (!Number.isFinite(last)) {
        throw new Error(`training diverged: loss ${last} at epoch ${epoch + 1} step ${step}`);
      }
      const perStep = (performance.now() - t0) / 1000 / sessionSteps;
      const ev: TrainEvent = {
        type: "progress",
        epoch: epoch + 1,
        epochs,
        step,
        steps,
        global_step: state.step,
        loss: last,
        lr: optimizer.lr,
        elapsed_s: elapsed(),
        eta_s: perStep * ((epochs - epoch - 1) * steps + Math.max(0, steps - step)),
      };
      if (step % opts.logEvery === 0 || step === steps) {
        await sink.log({
          type: "step",
          epoch: epoch + 1,
          step,
          steps,
          global_step: state.step,
          loss: last,
          lr: optimizer.lr,
          elapsed_s: ev.elapsed_s,
        });
      }
      yield ev;
      if (opts.signal?.aborted) {
        yield { type: "done", epoch: state.epoch, elapsed_s: elapsed(), cancelled: true };
        return;
      }
    }
    // Hu code: ReduceLROnPlateau fed the epoch's last training-batch loss, from epoch 10 on.
    const lr = schedule.step(epoch, last, optimizer.lr);
    optimizer.lr = lr;
    // Validation every valEvery epochs and always after the last: it runs the whole encoder over every
    // validation slice, which can cost more than the epoch itself.
    const every = opts.valEvery ?? 1;
    const dice = (epoch + 1) % every === 0 || epoch + 1 === epochs ? await opts.validate() : null;
    const isBest = dice !== null && (!state.best || dice.avg > state.best.dice);
    state.epoch = epoch + 1;
    state.lr = lr;
    state.schedule = schedule.state();
    state.rng = data.epochRng(state.epoch).state();
    state.elapsedS = elapsed();
    const trainable = await model.exportTrainable();
    if (isBest) {
      state.best = { epoch: epoch + 1, dice: dice!.avg };
      await sink.saveBest(trainable, state.best);
    }
    await sink.log({
      type: "epoch",
      epoch: epoch + 1,
      loss: last,
      lr,
      ...(dice ? { val_dice: dice } : {}),
      best: isBest,
      elapsed_s: state.elapsedS,
    });
    if (dice) yield { type: "validation", epoch: epoch + 1, dice, best: isBest };
    await sink.saveCheckpoint({
      trainable,
      optimizer: await optimizer.exportState(),
      state: { ...state, step: state.step },
    });
    yield { type: "checkpoint", epoch: epoch + 1 };
  }
  yield { type: "done", epoch: state.epoch, elapsed_s: elapsed(), cancelled: false };
}
