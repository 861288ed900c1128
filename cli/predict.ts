/**
 * `deno task predict --run DIR --input IN --output OUT [--weights final|best] [--backend B]`: a scan (or a
 * folder of scans) in, uint8 label maps out on each scan's own grid and geometry.
 */
import { parseFlags } from "./flags.ts";
import { runCli, UserError } from "./user_error.ts";
import { BACKEND_NAMES, type BackendName } from "../pipeline/backend.ts";
import { openRun } from "../pipeline/eval_run.ts";
import { predictFile, scansIn } from "../stages/predict.ts";
import { join } from "node:path";

const USAGE = "usage: deno task predict --run DIR --input SCAN.nii.gz|FOLDER --output OUT.nii.gz|FOLDER " +
  "[--weights final|best] [--backend B]";

async function isDir(path: string): Promise<boolean | undefined> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return undefined;
  }
}

async function main(args: string[]) {
  const { values } = parseFlags(args, {
    run: { type: "string" },
    input: { type: "string" },
    output: { type: "string" },
    weights: { type: "string", default: "final" },
    backend: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return console.log(USAGE);
  for (const k of ["run", "input", "output"] as const) {
    if (!values[k]) throw new UserError(`--${k} is required\n${USAGE}`);
  }
  if (values.weights !== "final" && values.weights !== "best") {
    throw new UserError(`--weights: "${values.weights}" is not one of final, best`);
  }
  if (values.backend && !BACKEND_NAMES.includes(values.backend as BackendName)) {
    throw new UserError(`--backend: "${values.backend}" is not one of ${BACKEND_NAMES.join(", ")}`);
  }
  const input = values.input!, output = values.output!;
  const inputIsDir = await isDir(input);
  if (inputIsDir === undefined) throw new UserError(`${input}: no such file or folder`);
  const jobs: [string, string][] = [];
  if (inputIsDir) {
    if ((await isDir(output)) === false) {
      throw new UserError(`${output}: is a file; a folder input needs a folder output`);
    }
    const names = await scansIn(input);
    if (!names.length) throw new UserError(`${input}: holds no .nii or .nii.gz scans`);
    await Deno.mkdir(output, { recursive: true });
    for (const n of names) jobs.push([join(input, n), join(output, n)]);
  } else {
    if (await isDir(output)) {
      throw new UserError(`${output}: is a folder; give an output file name (.nii or .nii.gz)`);
    }
    if (!/\.nii(\.gz)?$/.test(output)) {
      throw new UserError(`${output}: output name must end in .nii or .nii.gz`);
    }
    jobs.push([input, output]);
  }
  const log = (l: string) => console.error(l);
  const run = await openRun(values.run!, {
    backend: values.backend as BackendName | undefined,
    weights: values.weights,
    log,
  });
  try {
    const opts = {
      imageSize: run.config.imageSize,
      normalization: run.config.normalization,
      batchSize: run.config.batchSize,
    };
    for (const [src, dst] of jobs) {
      const counts = await predictFile(run.model, src, dst, opts);
      log(`${src} -> ${dst} (voxels per class: ${counts.join(", ")})`);
      console.log(JSON.stringify({ input: src, output: dst, voxels: counts }));
    }
  } finally {
    run.model.dispose();
  }
}

if (import.meta.main) {
  runCli(main);
}
