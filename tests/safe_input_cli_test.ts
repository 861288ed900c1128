/**
 * Issue 13, the input side, end to end: a FIFO, a symlink loop, an unreadable file or folder, a scan with
 * non-finite voxels or bytes after its gzip stream, given to info, data, train, checkpoint-info and predict.
 * Each must finish in seconds with exit 2 and one line naming the file (or, under --on-bad-case skip, a
 * named skip), never hang and never print a stack. Permission cases run the command as nobody (setpriv),
 * since root reads a chmod 000 file.
 */
import { runScript, type ScriptResult } from "./run_script.ts";
import { nobodyCannotRead } from "./as_nobody.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { generateAcdcPhantoms } from "../fixtures/phantom.ts";
import { encodeNifti, geometryFromAffine } from "../io/nifti.ts";

/** Per command, including Deno's start-up on a loaded 2-core machine; a refusal itself takes milliseconds. */
const QUICK_MS = 15_000;
const IDENTITY = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];

const tmp = await Deno.makeTempDir({ prefix: "safe_input_cli_" });
await Deno.chmod(tmp, 0o755); // nobody must reach the files the permission cases put here
const data = join(tmp, "data");
await generateAcdcPhantoms(data, { patients: 5, seed: 3, small: true });
const frame = (p: number, f: string) =>
  join(data, "training", `patient00${p}`, `patient00${p}_frame${f}.nii.gz`);

/** Runs cli/<script>.ts; as nobody (via setpriv) when asked and we are root. A hang fails at QUICK_MS. */
function cli(script: string, args: string[], opts: { nobody?: boolean } = {}): Promise<ScriptResult> {
  const drop = opts.nobody && Deno.uid() === 0;
  // nobody cannot read root's DENO_DIR: --cached-only resolves from the worktree's node_modules, offline.
  return runScript(`cli/${script}.ts`, args, {
    killAfterMs: QUICK_MS,
    ...(drop
      ? {
        prefix: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
        denoFlags: ["-A", "--cached-only"],
        env: { DENO_DIR: join(tmp, "deno_dir_nobody"), HOME: tmp },
      }
      : {}),
  });
}

/**
 * Exit 2, in time, ending in exactly one `error: ...` line matching pattern, with no stack; progress lines
 * before it (`backend: wasm`) are the command's normal log.
 */
function refused(r: ScriptResult, pattern: RegExp, what: string) {
  assert.ok(r.ms < QUICK_MS, `${what}: took ${r.ms.toFixed(0)} ms (blocked?)`);
  assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.filter((l) => /^error/.test(l)).length, 1, `${what}: not one error line\n${r.stderr}`);
  assert.match(lines.at(-1)!, /^error: /, what);
  assert.match(lines.at(-1)!, pattern, `${what}: ${lines.at(-1)}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: a stack trace`);
}

async function mkfifo(path: string) {
  assert.equal((await new Deno.Command("mkfifo", { args: [path] }).output()).code, 0, "mkfifo");
}

async function hasSetpriv(): Promise<boolean> {
  return (await new Deno.Command("sh", { args: ["-c", "command -v setpriv"] }).output()).code === 0;
}

/** A copy of the phantom data set, for a case to break without touching the others' data. */
async function dataCopy(name: string): Promise<string> {
  const dir = join(tmp, name);
  assert.equal((await new Deno.Command("cp", { args: ["-r", data, dir] }).output()).code, 0);
  assert.equal((await new Deno.Command("chmod", { args: ["-R", "a+rX", dir] }).output()).code, 0);
  return dir;
}

const patientsOf = (r: ScriptResult) => {
  const p = JSON.parse(r.stdout).patients;
  return [...p.train, ...p.val, ...p.test].sort();
};

Deno.test("item 5/6: info on a FIFO or a symlink loop exits 2 at once naming it", async () => {
  const fifo = join(tmp, "f.nii.gz");
  await mkfifo(fifo);
  refused(await cli("info", [fifo]), /f\.nii\.gz: file: is a named pipe \(FIFO\)/, "info FIFO");
  const loop = join(tmp, "loop.nii.gz");
  await Deno.symlink(loop, loop);
  refused(await cli("info", [loop]), /loop\.nii\.gz: file: symlink loop/, "info loop");
  refused(await cli("info", ["/dev/zero"]), /\/dev\/zero: file: is a character device/, "info /dev/zero");
});

Deno.test("item 12: info counts infinite and NaN voxels and reads a .nii.gz with bytes after its gzip stream", async () => {
  const f = join(tmp, "inf.nii");
  const vox = Float32Array.from([1, 2, Infinity, -Infinity, NaN, 3, 4, 5]);
  await Deno.writeFile(f, await encodeNifti(vox, [2, 2, 2], geometryFromAffine(IDENTITY, [2, 2, 2])));
  const r = await cli("info", [f]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).stats, {
    min: 1,
    max: 5,
    mean: 3,
    non_finite: { nan: 1, inf: 1, "-inf": 1 },
  });
  const gz = await Deno.readFile(frame(1, "01"));
  const junk = join(tmp, "junk.nii.gz");
  await Deno.writeFile(junk, new Uint8Array([...gz, ...new TextEncoder().encode("trailing bytes\n")]));
  const a = await cli("info", [frame(1, "01")]), b = await cli("info", [junk]);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout, a.stdout);
});

Deno.test("item 5/6: data --data with a FIFO case: fail exits 2 naming it, skip names it and goes on", async () => {
  const dir = await dataCopy("fifo_case");
  const victim = join(dir, "training", "patient002", "patient002_frame01.nii.gz");
  await Deno.remove(victim);
  await mkfifo(victim);
  const args = ["--data", dir, "--train-patients", "1"];
  refused(await cli("data", args), /patient002_frame01\.nii\.gz: file: is a named pipe \(FIFO\)/, "fail");
  const skip = await cli("data", [...args, "--on-bad-case", "skip"]);
  assert.equal(skip.code, 0, skip.stderr);
  assert.match(
    skip.stderr,
    /skipped patient002_frame01: .*patient002_frame01\.nii\.gz: file: is a named pipe/,
  );
  const loopRoot = join(tmp, "loop_root");
  await Deno.symlink(loopRoot, loopRoot);
  refused(await cli("data", ["--data", loopRoot]), /loop_root: symlink loop/, "data --data loop");
});

Deno.test("item 6/13: data --data follows a symlinked patient folder and names a looping one", async () => {
  const dir = await dataCopy("links");
  const training = join(dir, "training");
  await Deno.rename(join(training, "patient005"), join(tmp, "patient005_elsewhere"));
  await Deno.symlink(join(tmp, "patient005_elsewhere"), join(training, "patient005"));
  const linked = await cli("data", ["--data", dir, "--train-patients", "1"]);
  assert.equal(linked.code, 0, linked.stderr);
  assert.deepEqual(patientsOf(linked), [
    "patient001",
    "patient002",
    "patient003",
    "patient004",
    "patient005",
  ]);
  await Deno.symlink(join(training, "patient006"), join(training, "patient006"));
  refused(
    await cli("data", ["--data", dir]),
    /patient006: .*patient006: symlink that cannot be followed: symlink loop/,
    "loop",
  );
  const skip = await cli("data", ["--data", dir, "--train-patients", "1", "--on-bad-case", "skip"]);
  assert.equal(skip.code, 0, skip.stderr);
  assert.match(skip.stderr, /skipped patient006: .*symlink loop/);
  assert.equal(patientsOf(skip).length, 5);
});

Deno.test({
  name: "item 13: an unreadable patient folder is named (as nobody): fail exits 2, skip says so",
  ignore: !!nobodyCannotRead,
  fn: async () => {
    if (Deno.uid() === 0) assert.ok(await hasSetpriv(), "as root this test needs setpriv (util-linux)");
    const dir = await dataCopy("unreadable");
    const locked = join(dir, "training", "patient003");
    await Deno.chmod(locked, 0o000);
    const args = ["--data", dir, "--train-patients", "1"];
    refused(
      await cli("data", args, { nobody: true }),
      /patient003: .*patient003: permission denied$/,
      "fail",
    );
    const skip = await cli("data", [...args, "--on-bad-case", "skip"], { nobody: true });
    assert.equal(skip.code, 0, skip.stderr);
    assert.match(skip.stderr, /skipped patient003: .*training\/patient003: permission denied/);
    assert.ok(!patientsOf(skip).includes("patient003"));
  },
});

Deno.test("item 5/6: train --weights FIFO or symlink loop exits 2 at once and leaves no run folder", async () => {
  const fifo = join(tmp, "w.pth");
  await mkfifo(fifo);
  const loop = join(tmp, "wloop.pth");
  await Deno.symlink(loop, loop);
  for (
    const [w, pattern] of [[fifo, /w\.pth: is a named pipe/], [loop, /wloop\.pth: symlink loop/]] as const
  ) {
    const out = join(tmp, "never");
    const r = await cli("train", [
      "--data",
      data,
      "--preset",
      "tiny",
      "--train-patients",
      "1",
      "--weights",
      w,
      "--out",
      out,
    ]);
    refused(r, pattern, `--weights ${w}`);
    assert.equal(await Deno.stat(out).then(() => true, () => false), false, "a run folder was left");
  }
});

Deno.test({
  name: "item 7: checkpoint-info on an unreadable checkpoint (as nobody) is one line, not a stack",
  ignore: !!nobodyCannotRead,
  fn: async () => {
    if (Deno.uid() === 0) assert.ok(await hasSetpriv(), "as root this test needs setpriv (util-linux)");
    const f = join(tmp, "locked.pth");
    await Deno.writeFile(f, new Uint8Array([0x80, 2, 0x7d, 0x71, 0, 0x2e]));
    await Deno.chmod(f, 0o000);
    refused(await cli("checkpoint_info", [f], { nobody: true }), /locked\.pth: permission denied$/, "locked");
    const fifo = join(tmp, "ck.safetensors");
    await mkfifo(fifo);
    refused(await cli("checkpoint_info", [fifo]), /ck\.safetensors: is a named pipe/, "FIFO");
  },
});

/** A tiny trained run for the predict cases (wasm, 1 epoch, 32 px: seconds). */
async function tinyRun(): Promise<string> {
  const run = join(tmp, "run");
  const r = await cli("train", [
    ...["--data", data, "--preset", "tiny", "--image-size", "32", "--encoder-size", "32"],
    ...["--head-top-channel", "2", "--train-patients", "1", "--batch-size", "4", "--lora-rank", "2"],
    ...["--backend", "wasm", "--seed", "0", "--epochs", "1", "--out", run],
  ]);
  assert.equal(r.code, 0, r.stderr);
  return run;
}

Deno.test("items 5/12/15: predict refuses a FIFO in its run and bad scans; --on-bad-case skip names them", async () => {
  const run = await tinyRun();
  const broken = join(tmp, "run_fifo");
  await Deno.mkdir(broken);
  for (const name of ["config.json", "optimizer.safetensors", "state.json"]) {
    await Deno.copyFile(join(run, name), join(broken, name));
  }
  await mkfifo(join(broken, "trainable.safetensors"));
  const out = join(tmp, "p.nii.gz");
  const base = ["--backend", "wasm"];
  refused(
    await cli("predict", ["--run", broken, "--input", frame(1, "01"), "--output", out, ...base]),
    /run_fifo\/trainable\.safetensors: is a named pipe/,
    "FIFO trainable",
  );

  const scans = join(tmp, "scans");
  await Deno.mkdir(scans);
  await Deno.copyFile(frame(1, "01"), join(scans, "a.nii.gz"));
  await mkfifo(join(scans, "b.nii.gz"));
  const nan = new Float32Array(8 * 8 * 2).fill(NaN);
  await Deno.writeFile(
    join(scans, "c.nii"),
    await encodeNifti(nan, [8, 8, 2], geometryFromAffine(IDENTITY, [8, 8, 2])),
  );
  refused(
    await cli("predict", ["--run", run, "--input", join(scans, "c.nii"), "--output", out, ...base]),
    /c\.nii: every voxel is NaN or infinite/,
    "all-NaN scan",
  );
  const preds = join(tmp, "preds");
  const args = ["--run", run, "--input", scans, "--output", preds, ...base];
  refused(await cli("predict", args), /b\.nii\.gz: file: is a named pipe/, "folder, fail");
  const skip = await cli("predict", [...args, "--on-bad-case", "skip"]);
  assert.equal(skip.code, 0, skip.stderr);
  assert.match(skip.stderr, /skipped .*b\.nii\.gz: file: is a named pipe/);
  assert.match(skip.stderr, /skipped .*c\.nii: every voxel is NaN or infinite/);
  assert.match(skip.stderr, /skipped 2 of 3 scan\(s\): .*b\.nii\.gz, .*c\.nii/);
  assert.deepEqual([...Deno.readDirSync(preds)].map((e) => e.name), ["a.nii.gz"]);
  assert.equal(skip.stdout.trim().split("\n").length, 1);
});

Deno.test("cleanup", async () => {
  await new Deno.Command("chmod", { args: ["-R", "u+rwX", tmp] }).output();
  await Deno.remove(tmp, { recursive: true });
});
