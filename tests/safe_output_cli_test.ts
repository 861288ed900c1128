/**
 * End-to-end tests of the output side of every command that writes (issue 13, items 1-4 and 8): a finished
 * run is never trained over without --resume, an input is never overwritten by an output, a device node is
 * never replaced, and a read-only file system, a full disk, a missing folder or a folder given as a file is one
 * line and exit 2 with nothing left behind, for train --out, predict --output, sam-run --output,
 * data --dump-batch and data --preview. The read-only and full-disk cases mount small tmpfs file systems and
 * are ignored (reported as such) where mounting is not allowed.
 */
import { runScript } from "./run_script.ts";
import { canMount, mountTmpfs, umount } from "./tmpfs.ts";
import assert from "node:assert/strict";
import { generateAcdcPhantoms } from "../fixtures/phantom.ts";
import { TINY_CONFIG, TINY_IO, TINY_PTH } from "../model/sam/test_util.ts";

const tmp = await Deno.makeTempDir({ prefix: "safe_output_cli_" });
const data = `${tmp}/data`;
await generateAcdcPhantoms(data, { patients: 5, seed: 3, small: true });
const scan = `${data}/training/patient001/patient001_frame01.nii.gz`;

/** Tiny everything (as in train_cli_test.ts): a 1-epoch run takes about a second. */
const TINY = [
  ["--data", data],
  ["--preset", "tiny"],
  ["--image-size", "32"],
  ["--encoder-size", "32"],
  ["--head-top-channel", "2"],
  ["--train-patients", "1"],
  ["--batch-size", "4"],
  ["--lora-rank", "2"],
  ["--backend", "wasm"],
  ["--seed", "0"],
  ["--epochs", "1"],
].flat();

const cli = (script: string, args: string[]) => runScript(`cli/${script}.ts`, args);

/**
 * Exit 2, one `error:` line (the last) matching re and naming path, no stack trace; only says that the error
 * line is the whole of stderr when alone is set (a refusal before any work).
 */
function assertRefused(r: { code: number; stderr: string }, re: RegExp, path: string, alone = false) {
  const lines = r.stderr.trim().split("\n");
  assert.equal(r.code, 2, r.stderr);
  assert.ok(!lines.some((l) => /^\s+at /.test(l)), `stack trace: ${r.stderr}`);
  assert.equal(lines.filter((l) => l.startsWith("error:")).length, 1, r.stderr);
  assert.match(lines.at(-1)!, /^error: /);
  assert.match(lines.at(-1)!, re);
  assert.ok(lines.at(-1)!.includes(path), `${path} not named: ${r.stderr}`);
  if (alone) assert.equal(lines.length, 1, `more than the error line: ${r.stderr}`);
}

const listing = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
const bytes = (path: string) => Deno.readFileSync(path);

// One finished run to train over, predict with, and compare against.
const run = `${tmp}/run`;
{
  const r = await cli("train", [...TINY, "--out", run]);
  if (r.code !== 0) throw new Error(`setup: training failed: ${r.stderr}`);
}

/** Runs fn with a tmpfs of the given options mounted at a new folder; unmounts after. */
async function withTmpfs(options: string, fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ dir: tmp });
  assert.ok(await mountTmpfs(dir, options), `mount -o ${options}`);
  try {
    await fn(dir);
  } finally {
    await umount(dir);
    await Deno.remove(dir);
  }
}

Deno.test("train --out onto a finished run or a foreign folder without --resume is refused; nothing replaced", async () => {
  const before = listing(run);
  const weights = bytes(`${run}/trainable.safetensors`), config = bytes(`${run}/config.json`);
  const log = bytes(`${run}/log.jsonl`);
  const again = await cli("train", [...TINY, "--out", run]);
  assertRefused(
    again,
    /already holds a training run; add --resume to continue it, or choose another/,
    run,
    true,
  );
  assert.deepEqual(listing(run), before);
  assert.deepEqual(bytes(`${run}/trainable.safetensors`), weights);
  assert.deepEqual(bytes(`${run}/config.json`), config);
  assert.deepEqual(bytes(`${run}/log.jsonl`), log);

  const foreign = `${tmp}/foreign`;
  await Deno.mkdir(foreign);
  await Deno.writeTextFile(`${foreign}/notes.txt`, "mine");
  assertRefused(
    await cli("train", [...TINY, "--out", foreign]),
    /is not empty and holds no training run/,
    foreign,
    true,
  );
  assert.deepEqual(listing(foreign), ["notes.txt"]);

  const file = `${tmp}/a-file`;
  await Deno.writeTextFile(file, "keep");
  assertRefused(
    await cli("train", [...TINY, "--out", file]),
    /exists and is a file, not a folder/,
    file,
    true,
  );
  assert.equal(await Deno.readTextFile(file), "keep");
  const dev = await cli("train", [...TINY, "--out", "/dev/full"]);
  assertRefused(dev, /exists and is a character device, not a folder/, "/dev/full", true);
  assert.ok(Deno.statSync("/dev/full").isCharDevice);
});

Deno.test({
  name:
    "train --out on a read-only file system (before any work) and a full disk (at a checkpoint): one line",
  ignore: !canMount,
  fn: async () => {
    await withTmpfs("ro,size=64k", async (ro) => {
      assertRefused(
        await cli("train", [...TINY, "--out", `${ro}/run`]),
        /read-only file system \(EROFS\)/,
        ro,
        true,
      );
    });
    // Room for config.json and the log, not for the weights: the first save fails.
    await withTmpfs("size=160k", async (tiny) => {
      const r = await cli("train", [...TINY, "--out", `${tiny}/run`]);
      assertRefused(r, /cannot write: no space left on device \(ENOSPC\)/, `${tiny}/run/`);
      const left = listing(`${tiny}/run`).concat(
        await Deno.stat(`${tiny}/run/best`).then(() => listing(`${tiny}/run/best`), () => []),
      );
      assert.ok(!left.some((n) => /\.(staged|tmp)$/.test(n)), `partial files left: ${left}`);
    });
  },
});

Deno.test("predict never writes over its input: the same folder, the same file, a link, another spelling", async () => {
  const folder = `${tmp}/scans`;
  await Deno.mkdir(folder);
  await Deno.copyFile(scan, `${folder}/a.nii.gz`);
  await Deno.symlink(`${folder}/a.nii.gz`, `${tmp}/alias.nii.gz`);
  const original = bytes(`${folder}/a.nii.gz`);
  const cases: [string, string][] = [
    [folder, folder],
    [folder, `${folder}/../scans/`],
    [`${folder}/a.nii.gz`, `${folder}/a.nii.gz`],
    [`${folder}/a.nii.gz`, `${tmp}/alias.nii.gz`],
    [`${tmp}/alias.nii.gz`, `${folder}/./a.nii.gz`],
  ];
  for (const [input, output] of cases) {
    const r = await cli("predict", ["--run", run, "--input", input, "--output", output, "--backend", "wasm"]);
    assertRefused(r, /is the input .*; refusing to overwrite an input/, "--output", true);
  }
  assert.deepEqual(bytes(`${folder}/a.nii.gz`), original);
  assert.deepEqual(listing(folder), ["a.nii.gz"]);
});

Deno.test("predict --output: a missing folder, a folder, a device, fail before the model; /dev/full via a link is ENOSPC", async () => {
  // --run names no run: the output's error coming first shows it is checked before the model is opened.
  const noRun = `${tmp}/no-such-run`;
  const missing = `${tmp}/nowhere/out.nii.gz`;
  assertRefused(
    await cli("predict", ["--run", noRun, "--input", scan, "--output", missing]),
    /cannot write: folder .*nowhere does not exist/,
    missing,
    true,
  );
  const folderOut = `${tmp}/outdir.nii.gz`;
  await Deno.mkdir(folderOut);
  assertRefused(
    await cli("predict", ["--run", noRun, "--input", scan, "--output", folderOut]),
    /is a folder/,
    folderOut,
    true,
  );
  const notFolder = `${tmp}/plain-file`;
  await Deno.writeTextFile(notFolder, "keep");
  assertRefused(
    await cli("predict", ["--run", noRun, "--input", `${data}/training/patient001`, "--output", notFolder]),
    /is a file/,
    notFolder,
    true,
  );
  const full = `${tmp}/full.nii`;
  await Deno.symlink("/dev/full", full);
  const r = await cli("predict", ["--run", run, "--input", scan, "--output", full, "--backend", "wasm"]);
  assertRefused(r, /cannot write: no space left on device \(ENOSPC\)/, full);
  assert.ok(Deno.statSync("/dev/full").isCharDevice);
  assert.ok(Deno.lstatSync(full).isSymlink);
});

Deno.test({
  name:
    "predict --output on a read-only file system (before the model) and a full disk: one line, nothing left",
  ignore: !canMount,
  fn: async () => {
    await withTmpfs("ro,size=64k", async (ro) => {
      const r = await cli("predict", [
        "--run",
        `${tmp}/no-such-run`,
        "--input",
        scan,
        "--output",
        `${ro}/o.nii`,
      ]);
      assertRefused(r, /read-only file system \(EROFS\)/, `${ro}/o.nii`, true);
    });
    await withTmpfs("size=4k", async (tiny) => {
      const r = await cli("predict", [
        "--run",
        run,
        "--input",
        scan,
        "--output",
        `${tiny}/o.nii`,
        "--backend",
        "wasm",
      ]);
      assertRefused(r, /no space left on device \(ENOSPC\)/, `${tiny}/o.nii`);
      assert.deepEqual(listing(tiny), []);
    });
  },
});

/** The data command on the tiny set (its default --train-patients is more than 5 phantoms hold). */
const DATA = ["--data", data, "--train-patients", "1", "--image-size", "32"];

const samArgs = (output: string, input = TINY_IO) => [
  "--checkpoint",
  TINY_PTH,
  "--config",
  TINY_CONFIG,
  "--input",
  input,
  "--output",
  output,
  "--backend",
  "cpu",
];

Deno.test("sam-run --output: its own input, a folder, a pipe refused before the model; /dev/full is ENOSPC", async () => {
  const input = `${tmp}/io.safetensors`;
  await Deno.copyFile(TINY_IO, input);
  const original = bytes(input);
  assertRefused(await cli("sam_run", samArgs(input, input)), /is the input/, input, true);
  assert.deepEqual(bytes(input), original);
  assertRefused(await cli("sam_run", samArgs(tmp)), /exists and is a folder, not a regular file/, tmp, true);
  const fifo = `${tmp}/pipe.safetensors`;
  assert.ok((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
  assertRefused(await cli("sam_run", samArgs(fifo)), /exists and is a named pipe/, fifo, true);
  assert.ok(Deno.lstatSync(fifo).isFifo);
  const full = await cli("sam_run", samArgs("/dev/full"));
  assertRefused(full, /\/dev\/full: cannot write: no space left on device \(ENOSPC\)/, "/dev/full");
  assert.ok(Deno.statSync("/dev/full").isCharDevice);
});

Deno.test({
  name: "sam-run --output on a read-only file system and a full disk: one line, nothing left",
  ignore: !canMount,
  fn: async () => {
    await withTmpfs("ro,size=64k", async (ro) => {
      assertRefused(
        await cli("sam_run", samArgs(`${ro}/o.safetensors`)),
        /EROFS/,
        `${ro}/o.safetensors`,
        true,
      );
    });
    await withTmpfs("size=4k", async (tiny) => {
      assertRefused(
        await cli("sam_run", samArgs(`${tiny}/o.safetensors`)),
        /ENOSPC/,
        `${tiny}/o.safetensors`,
      );
      assert.deepEqual(listing(tiny), []);
    });
  },
});

Deno.test("data --dump-batch and --preview: /dev/full, an input scan, a missing folder, a folder: one line each", async () => {
  const before = Deno.statSync("/dev/full");
  const r = await cli("data", [...DATA, "--dump-batch", "/dev/full"]);
  assertRefused(r, /--dump-batch \/dev\/full: cannot write: no space left on device \(ENOSPC\)/, "/dev/full");
  assert.ok(Deno.statSync("/dev/full").isCharDevice);
  assert.equal(Deno.statSync("/dev/full").ino, before.ino);
  const original = bytes(scan);
  assertRefused(await cli("data", [...DATA, "--preview", scan]), /is the input/, scan);
  assert.deepEqual(bytes(scan), original);
  for (const flag of ["--dump-batch", "--preview"]) {
    const missing = `${tmp}/nowhere/x.out`;
    assertRefused(
      await cli("data", [...DATA, flag, missing]),
      /folder .*nowhere does not exist/,
      missing,
      true,
    );
    assertRefused(await cli("data", [...DATA, flag, tmp]), /exists and is a folder/, tmp, true);
  }
});

Deno.test({
  name: "data --dump-batch / --preview on a read-only file system and a full disk: one line, nothing left",
  ignore: !canMount,
  fn: async () => {
    await withTmpfs("ro,size=64k", async (ro) => {
      for (const flag of ["--dump-batch", "--preview"]) {
        assertRefused(await cli("data", [...DATA, flag, `${ro}/x`]), /EROFS/, `${ro}/x`, true);
      }
    });
    await withTmpfs("size=4k", async (tiny) => {
      for (const flag of ["--dump-batch", "--preview"]) {
        assertRefused(await cli("data", [...DATA, flag, `${tiny}/x`]), /ENOSPC/, `${tiny}/x`);
        assert.deepEqual(listing(tiny), []);
      }
    });
  },
});

Deno.test("cleanup", async () => {
  await Deno.remove(tmp, { recursive: true });
});
