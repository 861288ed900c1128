import assert from "node:assert/strict";
import { writeSafetensors } from "../io/safetensors.ts";
import {
  appendLog,
  cleanStaged,
  loadCheckpoint,
  loadTrainable,
  RUN_FILES,
  runDirSink,
  saveBest,
  saveCheckpoint,
  truncateLog,
} from "./run_dir.ts";
import type { TrainState } from "../stages/train_sink.ts";

const state = (epoch: number): TrainState => ({
  epoch,
  step: epoch * 10,
  lr: 5e-4,
  schedule: { best: null, badEpochs: 0 },
  rng: [1, 2, 3, 4],
  best: null,
  elapsedS: 1,
});
const tensors = (v: number) =>
  new Map([["w", { dtype: "float32" as const, shape: [2], data: new Float32Array([v, v]) }]]);

Deno.test("checkpoint round-trip; state.json lagging one rename is repaired from the optimizer file", async () => {
  const dir = await Deno.makeTempDir();
  await saveCheckpoint(dir, { trainable: tensors(1), optimizer: tensors(2), state: state(3) });
  const ck = await loadCheckpoint(dir);
  assert.deepEqual(ck.state, state(3));
  assert.deepEqual(ck.trainable.get("w")!.data, new Float32Array([1, 1]));
  await Deno.writeTextFile(`${dir}/${RUN_FILES.state}`, JSON.stringify(state(2)));
  assert.equal((await loadCheckpoint(dir)).state.epoch, 3);
  assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/${RUN_FILES.state}`)).epoch, 3);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("checkpoint files from different epochs are refused, never mixed", async () => {
  const dir = await Deno.makeTempDir();
  await saveCheckpoint(dir, { trainable: tensors(1), optimizer: tensors(2), state: state(3) });
  await writeSafetensors(`${dir}/${RUN_FILES.trainable}`, tensors(9), { kind: "trainable", epoch: "4" });
  await assert.rejects(
    () => loadCheckpoint(dir),
    (e: Error) => e.name === "CheckpointError" && /epoch 4.*epoch 3/.test(e.message),
  );
  await assert.rejects(() => loadCheckpoint(`${dir}/nope`), /missing/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("log truncation keeps records up to the resumed epoch; staged leftovers are cleaned; best/ is written", async () => {
  const dir = await Deno.makeTempDir();
  for (const e of [1, 1, 2, 2, 3]) await appendLog(dir, { type: "step", epoch: e });
  await Deno.writeTextFile(`${dir}/${RUN_FILES.log}`, '{"type":"st', { append: true });
  await truncateLog(dir, 2);
  const lines = (await Deno.readTextFile(`${dir}/${RUN_FILES.log}`)).trim().split("\n").map((l) =>
    JSON.parse(l).epoch
  );
  assert.deepEqual(lines, [1, 1, 2, 2]);
  await Deno.writeTextFile(`${dir}/x.safetensors.staged`, "junk");
  await Deno.writeTextFile(`${dir}/y.json.abcd1234.tmp`, "junk");
  await cleanStaged(dir);
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [RUN_FILES.log]);
  await saveBest(dir, tensors(5), { epoch: 2, dice: 0.9 });
  assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/best/state.json`)), { epoch: 2, dice: 0.9 });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runDirSink: the training loop's records, best weights and checkpoints land as run files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sink = runDirSink(dir, { method: "loramednet" });
    await sink.log({ type: "step", epoch: 1, step: 1 });
    await sink.log({ type: "epoch", epoch: 1 });
    await sink.saveBest(tensors(1), { epoch: 1, dice: 0.5 });
    await sink.saveCheckpoint({ trainable: tensors(1), optimizer: tensors(2), state: state(1) });
    const log = (await Deno.readTextFile(`${dir}/${RUN_FILES.log}`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(log.map((r) => r.type), ["step", "epoch"]);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/${RUN_FILES.best}/${RUN_FILES.state}`)), {
      epoch: 1,
      dice: 0.5,
    });
    const ck = await loadCheckpoint(dir);
    assert.equal(ck.state.epoch, 1);
    const best = await loadTrainable(`${dir}/${RUN_FILES.best}/${RUN_FILES.trainable}`);
    assert.equal(best.metadata.method, "loramednet");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
