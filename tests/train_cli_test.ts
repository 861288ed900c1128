/**
 * End-to-end tests of `deno task train | eval | predict` on a tiny configuration: the dry-run count of the
 * paper's model, the JSON line, stop-and-resume giving exactly the weights of an uninterrupted run, a SIGKILL
 * mid-epoch leaving no torn file and resuming to completion, eval's metrics.json, and predicted masks that
 * nibabel reads with the input's shape, affine and dtype uint8.
 */
import { ROOT, runScript } from "./run_script.ts";
import assert from "node:assert/strict";
import { generateAcdcPhantoms } from "../fixtures/phantom.ts";
import { readSafetensorsWithMetadata } from "../io/safetensors.ts";
import { findNibabel } from "./nibabel_probe.ts";

const env = { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" };
const tmp = await Deno.makeTempDir({ prefix: "train_cli_" });
const data = `${tmp}/data`;
await generateAcdcPhantoms(data, { patients: 5, seed: 3, small: true });

/** Tiny everything: 32 px, 4x4 tokens, a 2-channel head, 1 labelled patient, wasm (deterministic). */
const TINY = [
  "--data",
  data,
  "--preset",
  "tiny",
  "--image-size",
  "32",
  "--encoder-size",
  "32",
  "--head-top-channel",
  "2",
  "--train-patients",
  "1",
  "--batch-size",
  "4",
  "--lora-rank",
  "2",
  "--lr",
  "1e-3",
  "--backend",
  "wasm",
  "--seed",
  "0",
  "--log-every",
  "1",
];

const cli = (script: string, args: string[]) => runScript(`cli/${script}.ts`, args);

const readState = async (dir: string) => JSON.parse(await Deno.readTextFile(`${dir}/state.json`));

/** Every file of a run directory is whole: JSON parses, safetensors decode, no temporary leftovers. */
async function assertNoTornFile(dir: string) {
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) {
      if (e.name === "best") await assertNoTornFile(path);
      continue;
    }
    if (e.name.endsWith(".json")) JSON.parse(await Deno.readTextFile(path));
    if (e.name.endsWith(".jsonl")) {
      for (const line of (await Deno.readTextFile(path)).split("\n").filter(Boolean)) JSON.parse(line);
    }
    if (e.name.endsWith(".safetensors")) await readSafetensorsWithMetadata(path);
  }
}

Deno.test("train --dry-run: the paper's vit_b LoRaMedNet has 20,833,796 trainable parameters", async () => {
  const r = await cli("train", ["--preset", "vit_b", "--dry-run"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim()), { trainable_params: 20_833_796, frozen_params: 89_670_912 });
});

Deno.test("train --dry-run: every method's vit_b counts; vit_b with --data wants --weights or 'random'", async () => {
  const expected: Record<string, number> = {
    "cnn-head": 20_686_340,
    "vit-head": 3_646_880,
    samed: 4_212_016,
  };
  for (const [method, trainable] of Object.entries(expected)) {
    const r = await cli("train", ["--preset", "vit_b", "--method", method, "--dry-run"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout.trim()).trainable_params, trainable, method);
  }
  const refused = await cli("train", ["--data", data, "--preset", "vit_b", "--dry-run"]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /--preset vit_b with --data needs --weights/);
  const random = await cli("train", [
    "--data",
    data,
    "--preset",
    "vit_b",
    "--weights",
    "random",
    "--dry-run",
  ]);
  assert.equal(random.code, 0, random.stderr);
  assert.match(random.stderr, /base weights: random/);
});

Deno.test("train: bad flags exit 2 with one line, no stack", async () => {
  for (const args of [["--epochs", "0"], ["--method", "nope"], ["--bogus"], ["--resume"]]) {
    const r = await cli("train", args);
    assert.equal(r.code, 2, `${args}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /^error: /);
  }
});

Deno.test("train: bad weights or data exit 2 naming the file and leave no run directory behind", async () => {
  const junk = `${tmp}/junk.pth`;
  await Deno.writeTextFile(junk, "not a checkpoint");
  for (
    const [args, file] of [[["--weights", junk], junk], [["--data", `${tmp}/nowhere`], `${tmp}/nowhere`]]
  ) {
    const out = `${tmp}/never`;
    const r = await cli("train", [...TINY, ...args, "--out", out]);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.trim().split("\n").at(-1)!.includes(file as string), r.stderr);
    assert.equal(await Deno.stat(out).then(() => true, () => false), false, `${out} was left behind`);
  }
});

Deno.test("train --train-cache-mib: frozen-encoder methods reuse training embeddings; others are refused", async () => {
  const reuse = ["--augment", "none", "--train-cache-mib", "64", "--epochs", "2"];
  const r = await cli("train", [...TINY, ...reuse, "--method", "cnn-head", "--out", `${tmp}/reuse`]);
  assert.equal(r.code, 0, r.stderr);
  // One labelled patient: its training slices are encoded in epoch 1 and read back in epoch 2.
  const m = r.stderr.match(/training embeddings: (\d+) slices kept \(\d+ MiB\), (\d+) encoder runs spared/);
  assert.ok(m && Number(m[1]) > 0 && Number(m[2]) === Number(m[1]), r.stderr);
  const lora = await cli("train", [...TINY, ...reuse, "--out", `${tmp}/never-lora`]);
  assert.equal(lora.code, 2, lora.stderr);
  assert.match(lora.stderr.trim().split("\n").at(-1)!, /--train-cache-mib: loramednet trains its encoder/);
  assert.equal(await Deno.stat(`${tmp}/never-lora`).then(() => true, () => false), false);
});

Deno.test("train: stopped after epoch 1 and resumed to 2 equals an uninterrupted 2-epoch run", async () => {
  const a = `${tmp}/a`, b = `${tmp}/b`;
  const full = await cli("train", [...TINY, "--epochs", "2", "--out", a]);
  assert.equal(full.code, 0, full.stderr);
  const line = JSON.parse(full.stdout.trim().split("\n").at(-1)!);
  assert.equal(line.run, a);
  for (const k of ["RV", "Myo", "LV", "avg"]) assert.ok(line.test.dice[k] >= 0 && line.test.dice[k] <= 1, k);
  assert.equal((await readState(a)).epoch, 2);

  const first = await cli("train", [...TINY, "--epochs", "1", "--out", b]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal((await readState(b)).epoch, 1);
  const resumed = await cli("train", ["--out", b, "--resume", "--epochs", "2"]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal((await readState(b)).epoch, 2);
  const [wa, wb] = [
    await Deno.readFile(`${a}/trainable.safetensors`),
    await Deno.readFile(`${b}/trainable.safetensors`),
  ];
  assert.deepEqual(wb, wa, "resumed weights differ from the uninterrupted run's");
  // The optimizer file's metadata holds the state (with wall-clock times); its moments must match exactly.
  const [oa, ob] = [
    await readSafetensorsWithMetadata(`${a}/optimizer.safetensors`),
    await readSafetensorsWithMetadata(`${b}/optimizer.safetensors`),
  ];
  assert.deepEqual(ob.tensors, oa.tensors);
  const [sa, sb] = [JSON.parse(oa.metadata!.state), JSON.parse(ob.metadata!.state)];
  assert.deepEqual({ ...sb, elapsedS: 0 }, { ...sa, elapsedS: 0 });
  const log = (await Deno.readTextFile(`${b}/log.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(log.filter((r) => r.type === "epoch").map((r) => r.epoch), [1, 2]);
  const changed = await cli("train", ["--out", b, "--resume", "--epochs", "3", "--lr", "0.5"]);
  assert.equal(changed.code, 2);
  assert.match(changed.stderr, /--lr: differs from the run being resumed/);
});

Deno.test("train: a run killed with SIGKILL mid-epoch leaves no torn file and resumes to completion", async () => {
  const dir = `${tmp}/killed`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}cli/train.ts`, ...TINY, "--epochs", "3", "--out", dir],
    cwd: ROOT,
    env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  // Kill once epoch 1 is checkpointed and epoch 2 has taken a step.
  const deadline = Date.now() + 120_000;
  for (;;) {
    const log = await Deno.readTextFile(`${dir}/log.jsonl`).catch(() => "");
    if (/"type":"step","epoch":2/.test(log)) break;
    if (Date.now() > deadline) throw new Error("training never reached epoch 2");
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGKILL");
  await child.status;
  await assertNoTornFile(dir);
  assert.equal((await readState(dir)).epoch, 1);
  const r = await cli("train", ["--out", dir, "--resume"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await readState(dir)).epoch, 3);
  await assertNoTornFile(dir);
  const left = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => /\.(tmp|staged)$/.test(n));
  assert.deepEqual(left, []);
});

Deno.test("eval writes metrics.json; predict writes uint8 masks on the input's grid (checked with nibabel)", async () => {
  const run = `${tmp}/a`;
  const ev = await cli("eval", ["--run", run, "--backend", "wasm"]);
  assert.equal(ev.code, 0, ev.stderr);
  const metrics = JSON.parse(await Deno.readTextFile(`${run}/metrics.json`));
  assert.ok(metrics.test.dice.avg >= 0 && metrics.test.frames.length > 0);
  assert.ok("hd95" in metrics.test.frames[0]);
  assert.deepEqual(JSON.parse(ev.stdout.trim()).test.dice, metrics.test.dice);

  const scan = `${data}/training/patient001/patient001_frame01.nii.gz`;
  const out = `${tmp}/pred.nii.gz`;
  const pr = await cli("predict", ["--run", run, "--input", scan, "--output", out, "--backend", "wasm"]);
  assert.equal(pr.code, 0, pr.stderr);
  const folder = await cli("predict", [
    "--run",
    run,
    "--input",
    `${data}/training/patient002`,
    "--output",
    `${tmp}/preds`,
  ]);
  assert.equal(folder.code, 0, folder.stderr);
  assert.deepEqual(
    [...Deno.readDirSync(`${tmp}/preds`)].map((e) => e.name).sort(),
    [
      ...[...Deno.readDirSync(`${data}/training/patient002`)].map((e) => e.name).filter((n) =>
        /frame\d\d\.nii\.gz$/.test(n)
      ),
    ].sort(),
  );
  const bad = await cli("predict", ["--run", run, "--input", `${tmp}/nope.nii.gz`, "--output", out]);
  assert.equal(bad.code, 2);

  const python = await findNibabel();
  if (!python) {
    console.log("train_cli_test: nibabel check of predicted masks skipped (no python3 with nibabel)");
    return;
  }
  const check = await new Deno.Command(python, {
    args: [
      "-c",
      `
import sys, json, numpy as np, nibabel as nib
a, b = nib.load(sys.argv[1]), nib.load(sys.argv[2])
print(json.dumps({"shape": [list(a.shape), list(b.shape)], "affine": bool(np.allclose(a.affine, b.affine, atol=1e-5)),
  "dtype": str(b.get_data_dtype()), "max": int(np.asarray(b.dataobj).max())}))
`,
      scan,
      out,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(check.success, new TextDecoder().decode(check.stderr));
  const r = JSON.parse(new TextDecoder().decode(check.stdout));
  assert.deepEqual(r.shape[1], r.shape[0]);
  assert.equal(r.affine, true);
  assert.equal(r.dtype, "uint8");
  assert.ok(r.max <= 3);
});

Deno.test("cleanup", async () => await Deno.remove(tmp, { recursive: true }));
