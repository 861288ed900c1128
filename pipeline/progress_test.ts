import assert from "node:assert/strict";
import { formatDuration, ProgressReporter } from "./progress.ts";
import type { TrainEvent } from "../stages/train_events.ts";

const progress = (step: number): TrainEvent => ({
  type: "progress",
  epoch: 2,
  epochs: 5,
  step,
  steps: 25,
  global_step: 25 + step,
  loss: 0.51234,
  lr: 5e-4,
  elapsed_s: 75,
  eta_s: 3725,
});

Deno.test("formatDuration", () => {
  assert.deepEqual([0, 59.4, 75, 3725, -1, NaN].map(formatDuration), [
    "0s",
    "59s",
    "1m15s",
    "1h02m05s",
    "?",
    "?",
  ]);
});

Deno.test("off a terminal: plain lines every n steps and at each epoch's end, plus validation and done", () => {
  const lines: string[] = [];
  const r = new ProgressReporter({ tty: false, write: (l) => lines.push(l), every: 10 });
  for (let s = 1; s <= 25; s++) r.onEvent(progress(s));
  r.onEvent({ type: "validation", epoch: 2, dice: { RV: 0.5, Myo: 0.6, LV: 0.7, avg: 0.6 }, best: true });
  r.onEvent({ type: "checkpoint", epoch: 2 });
  r.onEvent({ type: "done", epoch: 5, elapsed_s: 100, cancelled: false });
  r.stop();
  assert.deepEqual(lines, [
    "epoch 2/5 step 10/25 loss 0.5123 lr 5.0e-4 elapsed 1m15s eta 1h02m05s",
    "epoch 2/5 step 20/25 loss 0.5123 lr 5.0e-4 elapsed 1m15s eta 1h02m05s",
    "epoch 2/5 step 25/25 loss 0.5123 lr 5.0e-4 elapsed 1m15s eta 1h02m05s",
    "epoch 2 validation Dice RV 0.500 Myo 0.600 LV 0.700 avg 0.600 (best)",
    "finished after epoch 5 in 1m40s",
  ]);
});
