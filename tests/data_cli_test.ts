/**
 * End-to-end tests of `deno task data` on ACDC-layout sets written by nibabel (not by our writer): dims and
 * per-class voxel counts match nibabel's, splits behave, the dumped batch is what training gets, and every
 * kind of broken case exits 2 naming the case, or is skipped and named with --on-bad-case skip.
 */
import assert from "node:assert/strict";
import { readSafetensors } from "../io/safetensors.ts";
import { findNibabel } from "./nibabel_probe.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const python = await findNibabel();
const ignore = python === null;
if (ignore) {
  console.log("data_cli_test: skipped, no python3 with nibabel + numpy (apt install python3-nibabel)");
}

/**
 * Writes <root>/training/patientNNN/ like the ACDC release: Info.cfg, the ED/ES frames (int16 with scl_slope,
 * some oblique, varied sizes and ES frame numbers), their _gt labels (uint8 or int16) and a 4D cine file;
 * then breaks the patients named in argv[3] (JSON {patient: kind}). Prints nibabel's dims and class counts.
 */
const WRITER = `
import json, os, sys, gzip, numpy as np, nibabel as nib
root, n, broken = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
rng = np.random.default_rng(int(sys.argv[4]))
expected = {}
for p in range(1, n + 1):
    pid = 'patient%03d' % p
    d = os.path.join(root, 'training', pid)
    os.makedirs(d, exist_ok=True)
    es = int(rng.integers(8, 16))
    kind = broken.get(pid)
    with open(os.path.join(d, 'Info.cfg'), 'w') as f:
        f.write('ED: 1\\nES: %d\\nGroup: MINF\\nHeight: 170.0\\nNbFrame: 30\\nWeight: 70.0\\n' % es)
    X, Y, Z = int(rng.integers(18, 30)), int(rng.integers(14, 26)), int(rng.integers(2, 5))
    a = np.diag([1.4, 1.6, 8.0, 1.0]); a[:3, 3] = [-20, 15, 5]
    if p % 3 == 0:
        c, s = np.cos(0.3), np.sin(0.3)
        a[:2, :2] = np.array([[c, -s], [s, c]]) @ np.diag([1.4, 1.6])
    nib.save(nib.Nifti1Image(rng.integers(0, 50, (X, Y, Z, 3)).astype(np.int16), a), os.path.join(d, pid + '_4d.nii.gz'))
    for fr in (1, es):
        fid = '%s_frame%02d' % (pid, fr)
        img = (rng.normal(300, 80, (X, Y, Z))).astype(np.int16)
        yy, xx = np.meshgrid(np.arange(Y), np.arange(X))
        r = np.hypot(xx - X / 2, yy - Y / 2)
        lab = np.zeros((X, Y, Z), np.uint8)
        for z in range(Z):
            k = 1 + rng.random() * 2
            lab[:, :, z] = np.where(r < 2 * k, 3, np.where(r < 3 * k, 2, np.where((r < 4 * k) & (xx < X / 2), 1, 0)))
        if p % 2 == 0:
            lab = lab.astype(np.int16)
        im = nib.Nifti1Image(img, a)
        im.header.set_slope_inter(0.5, 10.0)
        im.header.set_data_dtype(np.int16)
        if kind == 'nan' and fr == 1:
            fimg = img.astype(np.float32); fimg[1, 2, 0] = np.nan
            im = nib.Nifti1Image(fimg, a)
        nib.save(im, os.path.join(d, fid + '.nii.gz'))
        if kind == 'label7' and fr == es:
            lab[3, 4, Z - 1] = 7
        if kind == 'mismatch' and fr == 1:
            lab = np.zeros((X, Y + 1, Z), np.uint8)
        nib.save(nib.Nifti1Image(lab, a), os.path.join(d, fid + '_gt.nii.gz'))
        if kind == 'nolabel' and fr == es:
            os.remove(os.path.join(d, fid + '_gt.nii.gz'))
        if kind == 'truncated' and fr == 1:
            path = os.path.join(d, fid + '.nii.gz')
            data = open(path, 'rb').read()
            open(path, 'wb').write(data[: len(data) // 2])
        g = nib.load(os.path.join(d, fid + '_gt.nii.gz')) if os.path.exists(os.path.join(d, fid + '_gt.nii.gz')) else None
        if kind is None and g is not None:
            v = np.asarray(g.get_fdata())
            expected[fid] = dict(dims=list(map(int, g.shape)), label_voxels=[int((v == c).sum()) for c in range(4)])
    if kind == 'garbage_cfg':
        open(os.path.join(d, 'Info.cfg'), 'wb').write(bytes(rng.integers(0, 256, 64, dtype=np.uint8)))
print(json.dumps(expected))
`;

async function writeSet(root: string, patients: number, broken: Record<string, string> = {}, seed = 1) {
  const out = await new Deno.Command(python!, {
    args: ["-c", WRITER, root, String(patients), JSON.stringify(broken), String(seed)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout)) as Record<
    string,
    { dims: number[]; label_voxels: number[] }
  >;
}

async function data(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "data", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: dec(out.stdout), stderr: dec(out.stderr) };
}

type Report = {
  patients: { train: string[]; val: string[]; test: string[] };
  labelled: string[];
  labelled_volumes: string[];
  volumes: { id: string; dims: number[]; label_voxels: number[] }[];
  slices: { train: number; val: number; test: number };
  skipped: { id: string; file: string; problem: string }[];
  dump?: { image_shape: number[] };
};

Deno.test({
  name: "data CLI: nibabel's dims and class counts, splits, labelled subset, dumped batch",
  ignore,
}, async () => {
  const root = await Deno.makeTempDir();
  try {
    const expected = await writeSet(root, 12);
    const dump = `${root}/batch.safetensors`;
    const r1 = await data([
      "--data",
      root,
      "--seed",
      "1",
      "--dump-batch",
      dump,
      "--preview",
      `${root}/p.png`,
    ]);
    assert.equal(r1.code, 0, r1.stderr);
    const rep = JSON.parse(r1.stdout) as Report;
    assert.equal(rep.volumes.length, 24);
    for (const v of rep.volumes) {
      assert.deepEqual({ dims: v.dims, label_voxels: v.label_voxels }, expected[v.id], v.id);
    }
    const { train, val, test } = rep.patients;
    const all = [...train, ...val, ...test];
    assert.equal(new Set(all).size, 12, "a patient is in two parts");
    assert.deepEqual(
      [...all].sort(),
      Object.keys(expected).filter((k) => k.endsWith("_frame01")).map((k) => k.slice(0, 10)),
    );
    assert.deepEqual(rep.labelled, train.slice(0, 5));
    assert.equal(rep.labelled_volumes.length, 10);
    assert.ok(rep.labelled_volumes.every((id) => rep.labelled.includes(id.slice(0, 10))));
    const slicesOf = (ids: string[]) => ids.reduce((n, id) => n + expected[id].dims[2], 0);
    assert.equal(rep.slices.train, slicesOf(rep.labelled_volumes));
    assert.equal(
      rep.slices.test,
      slicesOf(Object.keys(expected).filter((id) => test.includes(id.slice(0, 10)))),
    );

    const t = await readSafetensors(dump);
    const image = t.get("image")!;
    const label = t.get("label")!;
    assert.deepEqual(image.shape, [4, 224, 224, 3]);
    assert.equal(image.dtype, "float32");
    assert.ok((image.data as Float32Array).every(Number.isFinite));
    assert.deepEqual(label.shape, [4, 224, 224]);
    assert.ok((label.data as Int32Array).every((k) => k >= 0 && k <= 3));
    assert.ok((label.data as Int32Array).some((k) => k === 3));
    const png = await Deno.readFile(`${root}/p.png`);
    assert.deepEqual(Array.from(png.subarray(1, 4)), [80, 78, 71]);

    const again = JSON.parse((await data(["--data", root, "--seed", "1"])).stdout) as Report;
    assert.deepEqual(again.patients, rep.patients, "same seed, same split");
    const sameSplit = JSON.parse((await data(["--data", root, "--seed", "7"])).stdout) as Report;
    assert.deepEqual(sameSplit.patients, rep.patients, "the training seed leaves the split alone");
    const other = JSON.parse(
      (await data(["--data", root, "--split-seed", "2", "--train-patients", "3"])).stdout,
    ) as Report;
    assert.notDeepEqual(other.patients.train, rep.patients.train, "another split seed, another split");
    assert.deepEqual(other.labelled, other.patients.train.slice(0, 3));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

const BROKEN: Record<string, [string, RegExp]> = {
  patient002: ["label7", /patient002_frame\d\d_gt\.nii\.gz: label value 7/],
  patient003: ["mismatch", /patient003_frame01_gt\.nii\.gz: dims \[\d+, \d+, \d+\] differ from the image's/],
  patient004: ["nan", /patient004_frame01\.nii\.gz: 1 voxel\(s\) are NaN/],
  patient005: ["nolabel", /patient005_frame\d\d_gt\.nii\.gz: label file missing/],
  patient006: ["garbage_cfg", /patient006\/Info\.cfg: line 1/],
  patient007: ["truncated", /patient007_frame01\.nii\.gz: .*truncated/],
};

Deno.test({ name: "data CLI: each broken case exits 2 with one line naming it", ignore }, async () => {
  const root = await Deno.makeTempDir();
  try {
    for (const [patient, [kind, message]] of Object.entries(BROKEN)) {
      const dir = `${root}/${kind}`;
      const n = Number(patient.slice(-3));
      await writeSet(dir, n + 2, { [patient]: kind });
      const r = await data(["--data", dir]);
      assert.equal(r.code, 2, `${kind}: ${r.stderr}`);
      assert.equal(r.stdout, "", `${kind}: no JSON on failure`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `${kind}: ${r.stderr}`);
      assert.match(lines[0], /^error: /);
      assert.match(lines[0], message, kind);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test(
  { name: "data CLI: --on-bad-case skip names and counts every broken case and goes on", ignore },
  async () => {
    const root = await Deno.makeTempDir();
    try {
      const broken = Object.fromEntries(Object.entries(BROKEN).map(([p, [kind]]) => [p, kind]));
      const expected = await writeSet(root, 10, broken);
      const r = await data(["--data", root, "--on-bad-case", "skip", "--train-patients", "2"]);
      assert.equal(r.code, 0, r.stderr);
      const rep = JSON.parse(r.stdout) as Report;
      for (const [patient, [kind, message]] of Object.entries(BROKEN)) {
        assert.ok(
          r.stderr.split("\n").some((l) => l.startsWith(`skipped ${patient}`) && message.test(l)),
          `${kind}: ${r.stderr}`,
        );
        assert.ok(rep.skipped.some((s) => s.id.startsWith(patient)), kind);
      }
      assert.match(r.stderr, /skipped 6 bad case\(s\); using 13 volumes of 9 patients/);
      assert.equal(rep.skipped.length, 6);
      // the good frames of partly broken patients stay; the patients whose Info.cfg is garbage do not
      const ids = rep.volumes.map((v) => v.id);
      assert.deepEqual(ids.filter((id) => expected[id]), Object.keys(expected).sort());
      assert.ok(!ids.some((id) => id.startsWith("patient006")));
      for (const v of rep.volumes) {
        if (expected[v.id]) {
          assert.deepEqual(v.label_voxels, expected[v.id].label_voxels);
        }
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test("data CLI: flag errors are one line and exit 2", async () => {
  for (
    const [args, message] of [
      [[], /missing --data/],
      [["--data", "/nonexistent/acdc"], /\/nonexistent\/acdc: data folder not found/],
      [["--data", ROOT, "--fold", "7"], /--fold: "7" is not an integer in 0..4/],
      [["--data", ROOT, "--on-bad-case", "ignore"], /--on-bad-case/],
      [["--data", ROOT, "--bogus"], /bogus/],
    ] as [string[], RegExp][]
  ) {
    const r = await data(args);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});
