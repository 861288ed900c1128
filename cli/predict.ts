/**
 * `deno task predict --run DIR --input IN --output OUT [--weights final|best] [--backend B]`: a scan (or a
 * folder of scans) in, uint8 label maps out on each scan's own grid and geometry.
 */
import { join } from "node:path";
import { UserError } from "../errors.ts";
import { checkWritable, prepareOutputDir } from "../io/safe_output.ts";
import { predictScanToFile, readScan, scansIn } from "../stages/predict.ts";
import { OPEN_RUN_OPTIONS, openRun } from "../pipeline/eval_run.ts";
import { parseCommand, requireFlags } from "../pipeline/flags.ts";
import { oneOf, path } from "../pipeline/option_schema.ts";
import { runCli } from "../pipeline/run_cli.ts";

const USAGE = "usage: deno task predict --run DIR --input SCAN.nii.gz|FOLDER --output OUT.nii.gz|FOLDER " +
  "[--weights final|best] [--backend B] [--on-bad-case fail|skip]";

/** --on-bad-case as in train and data: fail stops at the first bad scan (exit 2), skip names it and goes on. */
const SHAPE = { ...OPEN_RUN_OPTIONS, input: path, output: path, onBadCase: oneOf(["fail", "skip"]) };

async function isDir(path: string): Promise<boolean | undefined> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return undefined;
  }
}

/**
 * Refuses, before the model is loaded, any output that is one of the input scans (the same folder given twice,
 * or the same file by another spelling or link), a device, pipe or folder, or unwritable: a bad --output
 * costs nothing and never replaces a scan with its label map.
 */
async function checkOutputs(jobs: [string, string][], folder?: string): Promise<void> {
  const out = { label: "--output", inputs: jobs.map(([src]) => src) };
  // A folder that exists is only probed; one that is created cannot hold an input.
  if (folder !== undefined) await prepareOutputDir(folder, { label: "--output" });
  for (const [, dst] of jobs) await checkWritable(dst, out);
}

async function main(args: string[]) {
  const { options, help } = parseCommand(args, SHAPE, { defaults: { weights: "final", onBadCase: "fail" } });
  if (help) return console.log(USAGE);
  requireFlags(options, ["run", "input", "output"], USAGE);
  const input = options.input!, output = options.output!;
  const inputIsDir = await isDir(input);
  if (inputIsDir === undefined) throw new UserError(`${input}: no such file or folder`);
  const jobs: [string, string][] = [];
  if (inputIsDir) {
    if ((await isDir(output)) === false) {
      throw new UserError(`${output}: is a file; a folder input needs a folder output`);
    }
    const names = await scansIn(input);
    if (!names.length) throw new UserError(`${input}: holds no .nii or .nii.gz scans`);
    for (const n of names) jobs.push([join(input, n), join(output, n)]);
    await checkOutputs(jobs, output);
  } else {
    if (await isDir(output)) {
      throw new UserError(`${output}: is a folder; give an output file name (.nii or .nii.gz)`);
    }
    if (!/\.nii(\.gz)?$/.test(output)) {
      throw new UserError(`${output}: output name must end in .nii or .nii.gz`);
    }
    jobs.push([input, output]);
    await checkOutputs(jobs);
  }
  const log = (l: string) => console.error(l);
  const run = await openRun(options.run!, { backend: options.backend, weights: options.weights, log });
  try {
    const opts = {
      imageSize: run.config.imageSize,
      normalization: run.config.normalization,
      batchSize: run.config.batchSize,
    };
    const skipped: string[] = [];
    for (const [src, dst] of jobs) {
      let scan;
      try {
        scan = await readScan(src);
      } catch (err) {
        if (!(err instanceof UserError) || options.onBadCase === "fail") throw err;
        log(`skipped ${err.message}`);
        skipped.push(src);
        continue;
      }
      const counts = await predictScanToFile(run.model, scan, dst, opts);
      log(`${src} -> ${dst} (voxels per class: ${counts.join(", ")})`);
      console.log(JSON.stringify({ input: src, output: dst, voxels: counts }));
    }
    if (skipped.length) {
      log(`skipped ${skipped.length} of ${jobs.length} scan(s): ${skipped.join(", ")}`);
      if (skipped.length === jobs.length) {
        throw new UserError(`${input}: no scan could be read; nothing predicted`);
      }
    }
  } finally {
    run.model.dispose();
  }
}

if (import.meta.main) runCli(main);
