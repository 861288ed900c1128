import assert from "node:assert/strict";
import { disposeBatch } from "../stages/batch.ts";
import type { SliceItem } from "../stages/volume.ts";
import { testVolume, writeCase, writeTestAcdc } from "../stages/test_volume.ts";
import { buildDataset } from "./dataset.ts";
import { collect } from "../stages/pipe.ts";
import { tf } from "../engine/tf.ts";

/** One 10-patient set (20 x 16 x 3 voxels) shared by the tests below. */
const root = await Deno.makeTempDir();
const patients = await writeTestAcdc(root, 10);
const base = { data: root, imageSize: 24 };

Deno.test("dataset: split covers every patient once; 5 labelled patients with both frames", async () => {
  const ds = await buildDataset(base);
  const { train, val, test } = ds.split;
  assert.deepEqual([train.length, val.length, test.length], [6, 2, 2]);
  assert.deepEqual([...train, ...val, ...test].sort(), patients);
  assert.deepEqual(ds.labelled.patients, train.slice(0, 5));
  assert.equal(ds.labelled.volumes.length, 10);
  assert.deepEqual(ds.labelled.volumes.slice(0, 2), [`${train[0]}_frame01`, `${train[0]}_frame12`]);
  assert.deepEqual(ds.sliceCounts, { train: 30, val: 12, test: 12 });
  assert.equal(ds.volumes.length, 20);
  const r = ds.report();
  assert.deepEqual(r.patients, { train, val, test });
  assert.deepEqual(r.volumes[0], {
    id: "patient001_frame01",
    patient: "patient001",
    phase: "ED",
    dims: [20, 16, 3],
    spacing: [1.5, 1.5, 10],
    label_voxels: ds.volumes[0].labelVoxels,
  });
  assert.equal(r.volumes[0].label_voxels.reduce((a, b) => a + b), 20 * 16 * 3);
  assert.deepEqual(ds.splitRecord().labelled, ds.labelled.patients);
});

Deno.test("dataset: splits are stable for a split seed, differ across split seeds and folds, not across seeds", async () => {
  const a = await buildDataset({ ...base, splitSeed: 7 });
  const b = await buildDataset({ ...base, splitSeed: 7, seed: 3 });
  const c = await buildDataset({ ...base, splitSeed: 8 });
  const d = await buildDataset({ ...base, splitSeed: 7, fold: 3 });
  assert.deepEqual(a.split, b.split, "training seed does not move the test patients");
  assert.notDeepEqual(a.epochRng(0).state(), b.epochRng(0).state(), "but it does change training randomness");
  assert.notDeepEqual(a.split.train, c.split.train);
  assert.notDeepEqual(a.split.train, d.split.train);
  const frames = await buildDataset({ ...base, splitSeed: 7, trainUnit: "frames", trainPatients: 3 });
  assert.deepEqual(frames.labelled.volumes, [
    `${a.split.train[0]}_frame01`,
    `${a.split.train[1]}_frame12`,
    `${a.split.train[2]}_frame01`,
  ]);
  await assert.rejects(buildDataset({ ...base, trainPatients: 7 }), /only 6 patients/);
});

Deno.test("dataset: train slices are seeded per epoch, augmented, and batch into NHWC tensors", async () => {
  await tf.setBackend("cpu");
  const ds = await buildDataset({ ...base, augment: { elastic: { sigma: [3, 3] } } });
  const e0 = await collect(ds.trainSlices(ds.epochRng(0)));
  const again = await collect(ds.trainSlices(ds.epochRng(0)));
  const e1 = await collect(ds.trainSlices(ds.epochRng(1)));
  assert.equal(e0.length, 30);
  assert.deepEqual(e0.map((s) => s.id), again.map((s) => s.id));
  assert.deepEqual(e0[0].image, again[0].image);
  assert.notDeepEqual(e0.map((s) => s.id), e1.map((s) => s.id));
  const pool = await ds.trainPool();
  assert.ok(pool.every((s) => s.channels === 1), "z-scored pool slices are kept as one channel");
  const unchanged = (s: SliceItem) =>
    s.image.every((v, i) => v === pool.find((p) => p.id === s.id)!.image[Math.floor(i / 3)]);
  assert.ok(e0.every((s) => s.channels === 3 && s.image.length === 24 * 24 * 3));
  assert.ok(e0.filter(unchanged).length < 30, "nothing was augmented");
  const start = tf.memory().numTensors;
  let batches = 0;
  for await (const b of ds.trainBatches(ds.epochRng(0), { batchSize: 4 })) {
    try {
      assert.deepEqual(b.image.shape.slice(1), [24, 24, 3]);
      assert.deepEqual(b.label.shape.slice(1), [24, 24]);
      batches++;
    } finally {
      disposeBatch(b);
    }
  }
  assert.equal(batches, 8);
  assert.equal(tf.memory().numTensors, start);
  const plain = await buildDataset({ ...base, augment: false });
  const p0 = await collect(plain.trainSlices(plain.epochRng(0)));
  const plainPool = await plain.trainPool();
  const unchangedPlain = (s: SliceItem) =>
    s.image.every((v, i) => v === plainPool.find((p) => p.id === s.id)!.image[Math.floor(i / 3)]);
  assert.ok(p0.every(unchangedPlain), "augment: false must pass pool slices through unchanged");
  const sam = await buildDataset({ ...base, normalization: "sam", augment: false });
  assert.ok((await sam.trainPool()).every((s) => s.channels === 3), "sam channels differ, so 3 are kept");
});

Deno.test("dataset: eval patients give ED then ES slices and map labels back to the original grid", async () => {
  const ds = await buildDataset(base);
  const seen: string[] = [];
  for await (const p of ds.evalPatients("test")) {
    seen.push(p.patient);
    assert.deepEqual(p.volumes.map((v) => v.volume.phase), ["ED", "ES"]);
    for (const v of p.volumes) {
      assert.equal(v.slices.length, 3);
      assert.deepEqual(v.volume.spacing, [1.5, 1.5, 10]);
      assert.deepEqual(v.toOriginal(v.slices.map((s) => s.label)), v.volume.label);
    }
  }
  assert.deepEqual(seen, ds.split.test);
});

Deno.test("dataset: a flat folder of X + X_gt pairs groups <p>_frameNN into patients", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const id of ["a_frame01", "a_frame07", "b_frame01", "b_frame09", "c_scan", "d_scan"]) {
      const v = testVolume(id, [8, 8, 2]);
      await writeCase(dir, id, v.image, v.label, [8, 8, 2]);
    }
    const ds = await buildDataset({ data: dir, trainPatients: 1, imageSize: 8 });
    assert.equal(ds.layout, "pairs");
    assert.deepEqual([...ds.split.train, ...ds.split.val, ...ds.split.test].sort(), [
      "a",
      "b",
      "c_scan",
      "d_scan",
    ]);
    assert.deepEqual(ds.volumes.map((v) => `${v.id}:${v.phase ?? "-"}`), [
      "a_frame01:ED",
      "a_frame07:ES",
      "b_frame01:ED",
      "b_frame09:ES",
      "c_scan:-",
      "d_scan:-",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "dataset: cleanup",
  fn: async () => await Deno.remove(root, { recursive: true }),
});
