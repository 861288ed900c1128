import assert from "node:assert/strict";
import { collect, pipe } from "./pipe.ts";
import { discoverLayout, parseInfoCfg } from "./acdc_layout.ts";
import type { BadCase } from "./acdc_layout.ts";
import { loadVolume, loadVolumes } from "./load.ts";
import { testVolume, writeCase, writeTestAcdc } from "./test_volume.ts";

Deno.test("parseInfoCfg: reads ACDC's file and names the problem in garbage", () => {
  const cfg = parseInfoCfg("ED: 1\nES: 12\nGroup: DCM\nHeight: 184.0\nNbFrame: 30\nWeight: 95.0\n", "I.cfg");
  assert.deepEqual([cfg.ED, cfg.ES, cfg.nbFrame, cfg.group], [1, 12, 30, "DCM"]);
  assert.throws(
    () => parseInfoCfg("\x00\x17garbage\n", "x/Info.cfg"),
    /x\/Info.cfg: line 1: expected "key: value"/,
  );
  assert.throws(() => parseInfoCfg("ES: 12\n", "f"), /f: ED: missing/);
  assert.throws(() => parseInfoCfg("ED: one\nES: 12\n", "f"), /f: ED: "one" is not a frame number/);
  assert.throws(() => parseInfoCfg("ED: 1\nES: 40\nNbFrame: 30\n", "f"), /beyond NbFrame 30/);
  assert.throws(() => parseInfoCfg("ED: 1\nED: 2\nES: 3\n", "f"), /ED given twice/);
  assert.throws(() => parseInfoCfg("ED: 4\nES: 4\n", "f"), (e: Error) => e.name === "DataError");
});

Deno.test("discoverLayout: ACDC root, training folder, frames from file names, and flat pairs", async () => {
  const root = await Deno.makeTempDir();
  try {
    await writeTestAcdc(root, 2, { esFrame: 9, shape: [6, 5, 2] });
    // patient 3 has no Info.cfg: ED/ES come from the frame numbers (earlier = ED)
    const p3 = `${root}/training/patient003`;
    await Deno.mkdir(p3);
    for (const id of ["patient003_frame10", "patient003_frame01"]) {
      const v = testVolume(id, [6, 5, 2]);
      await writeCase(p3, id, v.image, v.label, [6, 5, 2]);
    }
    await Deno.writeFile(`${p3}/patient003_4d.nii.gz`, new Uint8Array([1, 2, 3])); // never read
    for (const dir of [root, `${root}/training`]) {
      const l = await discoverLayout(dir);
      assert.equal(l.kind, "acdc");
      assert.deepEqual(l.bad, []);
      assert.deepEqual(l.cases.map((c) => `${c.id}:${c.phase}`), [
        "patient001_frame01:ED",
        "patient001_frame09:ES",
        "patient002_frame01:ED",
        "patient002_frame09:ES",
        "patient003_frame01:ED",
        "patient003_frame10:ES",
      ]);
      assert.ok(l.cases[0].label.endsWith("training/patient001/patient001_frame01_gt.nii.gz"));
    }
    const flat = await discoverLayout(p3);
    assert.equal(flat.kind, "pairs");
    assert.deepEqual(
      flat.cases.map((c) => [c.id, c.patient, c.phase]),
      [
        ["patient003_4d", "patient003_4d", undefined],
        ["patient003_frame01", "patient003", "ED"],
        ["patient003_frame10", "patient003", "ES"],
      ].filter(([id]) => id !== "patient003_4d"),
    );
    assert.deepEqual(flat.bad.map((b) => [b.id, b.problem]), [["patient003_4d", "label file missing"]]);
    await assert.rejects(discoverLayout(`${root}/nope`), /data folder not found/);
    const empty = await Deno.makeTempDir();
    await assert.rejects(discoverLayout(empty), /no ACDC patient folders/);
    await Deno.remove(empty);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("loadVolume: dims, spacing, affine and per-class counts of a written case", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const v = testVolume("case_frame01", [9, 7, 3]);
    await writeCase(dir, "case_frame01", v.image, v.label, [9, 7, 3]);
    const c = {
      id: "case_frame01",
      patient: "case",
      image: `${dir}/case_frame01.nii.gz`,
      label: `${dir}/case_frame01_gt.nii.gz`,
    };
    const got = await loadVolume(c, { numClasses: 4 });
    assert.deepEqual(got.dims, [9, 7, 3]);
    assert.deepEqual(got.shape, [9, 7, 3]);
    assert.deepEqual(got.spacing, [1.5, 1.5, 10]);
    assert.deepEqual(got.labelVoxels, v.labelVoxels);
    assert.deepEqual(got.label, v.label);
    assert.equal(got.affine[2][3], -30);
    assert.ok(Math.abs(got.image[10] - v.image[10]) < 1e-3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Writes one good case and the named broken one into dir (flat pairs). */
async function brokenSet(dir: string): Promise<void> {
  const shape: [number, number, number] = [8, 6, 2];
  const good = testVolume("good", shape);
  await writeCase(dir, "good", good.image, good.label, shape);
  const seven = good.label.slice();
  seven[13] = 7;
  await writeCase(dir, "label7", good.image, seven, shape);
  await writeCase(dir, "mismatch", good.image, new Uint8Array(8 * 6 * 3), shape, [8, 6, 3]);
  const nan = good.image.slice();
  nan[5] = NaN;
  await writeCase(dir, "nan", nan, good.label, shape);
  await writeCase(dir, "nolabel", good.image, good.label, shape);
  await Deno.remove(`${dir}/nolabel_gt.nii.gz`);
  await writeCase(dir, "truncated", good.image, good.label, shape);
  const bytes = await Deno.readFile(`${dir}/truncated.nii.gz`);
  await Deno.writeFile(`${dir}/truncated.nii.gz`, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await writeCase(dir, "fourd", new Float32Array(8 * 6 * 2 * 2), new Uint8Array(8 * 6 * 2 * 2), [8, 6, 2, 2]);
}

Deno.test("loadVolume: each broken case fails naming its file and problem", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await brokenSet(dir);
    const layout = await discoverLayout(dir);
    assert.deepEqual(layout.bad.map((b) => b.id), ["nolabel"]);
    const expect: Record<string, RegExp> = {
      label7: /label7_gt\.nii\.gz: label value 7 at voxel \(5, 1, 0\) is not a class 0\.\.3/,
      mismatch: /mismatch_gt\.nii\.gz: dims \[8, 6, 3\] differ from the image's \[8, 6, 2\]/,
      nan: /nan\.nii\.gz: 1 voxel\(s\) are NaN or infinite, first at \(5, 0, 0\)/,
      truncated: /truncated\.nii\.gz: /,
      fourd: /fourd\.nii\.gz: dims \[8, 6, 2, 2\]: expected one 3D frame/,
    };
    for (const c of layout.cases) {
      if (c.id === "good") {
        await loadVolume(c, { numClasses: 4 });
        continue;
      }
      await assert.rejects(loadVolume(c, { numClasses: 4 }), (err: Error) => {
        assert.match(err.message, expect[c.id], c.id);
        assert.ok(err.name === "DataError" || err.name === "NiftiError", err.name);
        return true;
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadVolumes stage: fail stops at the first bad case; skip names each and goes on", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await brokenSet(dir);
    const { cases } = await discoverLayout(dir);
    await assert.rejects(
      collect(pipe(cases, loadVolumes({ numClasses: 4, onBadCase: "fail" }))),
      (e: Error) => e.name === "DataError" && /^fourd: .*fourd\.nii\.gz: dims/.test(e.message),
    );
    const messages: string[] = [];
    const skipped: BadCase[] = [];
    const vols = await collect(
      pipe(
        cases,
        loadVolumes({ numClasses: 4, onBadCase: "skip", onSkip: (m) => messages.push(m), skipped }),
      ),
    );
    assert.deepEqual(vols.map((v) => v.id), ["good"]);
    assert.deepEqual(skipped.map((b) => b.id), ["fourd", "label7", "mismatch", "nan", "truncated"]);
    assert.equal(messages.length, 5);
    assert.ok(
      messages.every((m, i) => m.startsWith(`skipped ${skipped[i].id}: ${dir}/`)),
      messages.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("discoverLayout: a symlinked patient folder is followed; one that cannot be followed is a named bad case", async () => {
  const root = await Deno.makeTempDir();
  try {
    const real = `${root}/elsewhere/patient001`;
    await Deno.mkdir(real, { recursive: true });
    await Deno.mkdir(`${root}/data/training`, { recursive: true });
    for (const n of ["patient001_frame01.nii.gz", "patient001_frame01_gt.nii.gz"]) {
      await Deno.writeFile(`${real}/${n}`, new Uint8Array(1));
    }
    await Deno.symlink(real, `${root}/data/training/patient001`);
    await Deno.symlink(`${root}/data/training/loop`, `${root}/data/training/loop`);
    const layout = await discoverLayout(`${root}/data`);
    assert.deepEqual(layout.cases.map((c) => c.id), ["patient001_frame01"]);
    assert.deepEqual(layout.bad.map((b) => [b.id, b.file, b.problem]), [[
      "loop",
      `${root}/data/training/loop`,
      "symlink that cannot be followed: symlink loop (too many levels of symbolic links)",
    ]]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
