import assert from "node:assert/strict";
import { writeSafetensors } from "../io/safetensors.ts";
import {
  appendLog,
  loadCheckpoint,
  loadTrainable,
  prepareRunDir,
  recoverCheckpoint,
  RUN_FILES,
  runDirSink,
  saveBest,
  saveCheckpoint,
  stageBest,
  stageCheckpoint,
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
  await Deno.writeTextFile(`${dir}/${RUN_FILES.trainable}.staged`, "junk");
  await Deno.writeTextFile(`${dir}/.y.json.abcd1234.tmp`, "junk");
  await recoverCheckpoint(dir);
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

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test("resume recovers from a kill at every point of a checkpoint write, losing no complete epoch", async () => {
  const ck = (e: number) => ({ trainable: tensors(e), optimizer: tensors(10 + e), state: state(e) });
  // kill points: 0..3 staged files written (staging order), then 0..3 of the renames done.
  for (const first of [true, false]) {
    for (const [stagedCount, renames] of [[0, 0], [1, 0], [2, 0], [3, 0], [3, 1], [3, 2], [3, 3]]) {
      const what = `${first ? "first" : "second"} checkpoint, ${stagedCount} staged, ${renames} renamed`;
      const dir = await Deno.makeTempDir();
      try {
        if (!first) await saveCheckpoint(dir, ck(1));
        const moves = await stageCheckpoint(dir, ck(2));
        for (const [from] of moves.slice(stagedCount)) await Deno.remove(from);
        for (const [from, to] of moves.slice(0, renames)) await Deno.rename(from, to);
        await Deno.writeTextFile(`${dir}/.trainable.safetensors.1a2b3c4d.tmp`, "torn");
        await recoverCheckpoint(dir);
        assert.ok(!names(dir).some((n) => /\.(staged|tmp)$/.test(n)), `${what}: ${names(dir)}`);
        const expected = stagedCount === 3 ? 2 : first ? undefined : 1;
        if (expected === undefined) {
          await assert.rejects(() => loadCheckpoint(dir), /no complete epoch/, what);
          continue;
        }
        const got = await loadCheckpoint(dir);
        assert.equal(got.state.epoch, expected, what);
        assert.deepEqual(got.trainable.get("w")!.data, new Float32Array([expected, expected]), what);
        assert.deepEqual(
          got.optimizer.get("w")!.data,
          new Float32Array([10 + expected, 10 + expected]),
          what,
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
  }
});

Deno.test("resume recovers best/ from a kill at every point of its write", async () => {
  for (const [stagedCount, renames] of [[1, 0], [2, 0], [2, 1], [2, 2]]) {
    const what = `${stagedCount} staged, ${renames} renamed`;
    const dir = await Deno.makeTempDir();
    try {
      await saveBest(dir, tensors(1), { epoch: 1, dice: 0.5 });
      const moves = await stageBest(dir, tensors(3), { epoch: 3, dice: 0.7 });
      for (const [from] of moves.slice(stagedCount)) await Deno.remove(from);
      for (const [from, to] of moves.slice(0, renames)) await Deno.rename(from, to);
      await recoverCheckpoint(dir);
      assert.deepEqual(names(`${dir}/best`), [RUN_FILES.state, RUN_FILES.trainable], what);
      const epoch = stagedCount === 2 ? 3 : 1;
      const info = JSON.parse(await Deno.readTextFile(`${dir}/best/${RUN_FILES.state}`));
      assert.equal(info.epoch, epoch, what);
      const w = await loadTrainable(`${dir}/best/${RUN_FILES.trainable}`);
      assert.equal(w.metadata.epoch, String(epoch), what);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("a failed checkpoint write removes its staged files and keeps the previous checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await saveCheckpoint(dir, { trainable: tensors(1), optimizer: tensors(2), state: state(1) });
    // state.json.staged as a folder makes the third staged write fail after two files were staged.
    await Deno.mkdir(`${dir}/${RUN_FILES.state}.staged`);
    await assert.rejects(
      () => saveCheckpoint(dir, { trainable: tensors(5), optimizer: tensors(6), state: state(2) }),
      (e: Error) => e.name === "OutputError" && e.message.includes(`${RUN_FILES.state}.staged`),
    );
    assert.deepEqual(names(dir), [RUN_FILES.optimizer, RUN_FILES.state, RUN_FILES.trainable].sort());
    assert.equal((await loadCheckpoint(dir)).state.epoch, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareRunDir: a new or empty folder is fine; a run or a foreign folder is refused without --resume", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.deepEqual(await prepareRunDir(`${dir}/new/run`), { created: true });
    assert.deepEqual(await prepareRunDir(`${dir}/new/run`), { created: false }); // empty: fine
    await saveCheckpoint(`${dir}/new/run`, { trainable: tensors(1), optimizer: tensors(2), state: state(1) });
    await assert.rejects(() => prepareRunDir(`${dir}/new/run`), /already holds a training run; add --resume/);
    assert.deepEqual(await prepareRunDir(`${dir}/new/run`, { resume: true }), { created: false });
    await Deno.writeTextFile(`${dir}/new/run2`, "");
    await Deno.mkdir(`${dir}/other`);
    await Deno.writeTextFile(`${dir}/other/notes.txt`, "mine");
    await assert.rejects(() => prepareRunDir(`${dir}/other`), /is not empty and holds no training run/);
    await Deno.mkdir(`${dir}/started`);
    await Deno.writeTextFile(`${dir}/started/${RUN_FILES.config}`, "{}");
    await assert.rejects(() => prepareRunDir(`${dir}/started`), /stopped before its first checkpoint/);
    await assert.rejects(() => prepareRunDir(`${dir}/new/run2`), /exists and is a file, not a folder/);
    await assert.rejects(() => prepareRunDir(`${dir}/nothing`, { resume: true }), /no such run folder/);
    assert.equal(await Deno.readTextFile(`${dir}/other/notes.txt`), "mine");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
