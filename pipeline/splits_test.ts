import assert from "node:assert/strict";
import { labelledSubset, splitPatients } from "./splits.ts";

const ids = (n: number) => Array.from({ length: n }, (_, i) => `patient${String(i + 1).padStart(3, "0")}`);

Deno.test("splitPatients: 100 patients -> 70/15/15, disjoint, covering every patient once", () => {
  const s = splitPatients(ids(100), { seed: 1, fold: 0 });
  assert.deepEqual([s.train.length, s.val.length, s.test.length], [70, 15, 15]);
  const all = [...s.train, ...s.val, ...s.test];
  assert.equal(new Set(all).size, 100);
  assert.deepEqual([...all].sort(), ids(100));
});

Deno.test("splitPatients: stable for a seed and fold, different across seeds and folds, order-insensitive", () => {
  const a = splitPatients(ids(20), { seed: 3, fold: 1 });
  assert.deepEqual(splitPatients([...ids(20)].reverse(), { seed: 3, fold: 1 }), a);
  assert.notDeepEqual(splitPatients(ids(20), { seed: 4, fold: 1 }).train, a.train);
  assert.notDeepEqual(splitPatients(ids(20), { seed: 3, fold: 2 }).train, a.train);
});

Deno.test("splitPatients: rounding on small sets keeps val and test non-empty", () => {
  for (const n of [3, 4, 5, 7, 10, 13]) {
    const s = splitPatients(ids(n), { seed: 0, fold: 0 });
    assert.ok(s.val.length >= 1 && s.test.length >= 1 && s.train.length >= 1, `n=${n}`);
    assert.equal(s.train.length + s.val.length + s.test.length, n);
    assert.equal(s.val.length, Math.max(1, Math.round(0.15 * n)));
  }
  assert.throws(() => splitPatients(ids(2), { seed: 0, fold: 0 }), /at least 3 patients/);
  // Option values are checked where they are read (pipeline/config.ts); here a bad fold is a programming error.
  assert.throws(() => splitPatients(ids(10), { seed: 0, fold: 5 }), RangeError);
  assert.throws(() => splitPatients(ids(10), { seed: 0, fold: -1 }), RangeError);
});

Deno.test("labelledSubset: first N train patients with both frames, or N single frames alternating ED/ES", () => {
  const train = ["p7", "p2", "p9", "p4", "p5", "p1"];
  const frames = (p: string) => [`${p}_ED`, `${p}_ES`];
  const both = labelledSubset(train, 5, "patients", frames);
  assert.deepEqual(both.patients, ["p7", "p2", "p9", "p4", "p5"]);
  assert.equal(both.volumes.length, 10);
  assert.deepEqual(both.volumes.slice(0, 2), ["p7_ED", "p7_ES"]);
  const single = labelledSubset(train, 5, "frames", frames);
  assert.deepEqual(single.volumes, ["p7_ED", "p2_ES", "p9_ED", "p4_ES", "p5_ED"]);
  assert.deepEqual(labelledSubset(train, "all", "patients", frames).patients, train);
  assert.throws(() => labelledSubset(train, 7, "patients", frames), /only 6 patients/);
});
