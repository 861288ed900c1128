/**
 * `deno task data --data DIR [...]`: what the data stages see, as one JSON line (DESIGN section 3): the split,
 * the labelled patients, every volume's dims and per-class voxel counts, slice counts; optionally one
 * augmented batch as safetensors and a PNG grid of augmented slices with their labels.
 */
import { writeAll, writeAtomic } from "../io/file_io.ts";
import { encodePng } from "../io/png.ts";
import { writeSafetensors } from "../io/safetensors.ts";
import { buildDataset, type Dataset } from "../pipeline/dataset.ts";
import type { DataConfig } from "../pipeline/data_options.ts";
import { collect, pipe, take } from "../pipeline/pipe.ts";
import { tf } from "../pipeline/tf.ts";
import { disposeBatch } from "../stages/batch.ts";
import { previewGrid } from "../stages/preview.ts";
import { numberFlag, parseFlags } from "./flags.ts";
import { runCli, UserError } from "./user_error.ts";

const USAGE = `usage: deno task data --data DIR [--seed N] [--fold K] [--train-patients N|all]
  [--train-unit patients|frames] [--image-size 224] [--normalization zscore|sam|minmax] [--augment default|none]
  [--on-bad-case fail|skip] [--batch-size 4] [--dump-batch F.safetensors] [--preview F.png] [--preview-count 16]`;

const OPTIONS = {
  data: { type: "string" },
  seed: { type: "string" },
  fold: { type: "string" },
  "train-patients": { type: "string" },
  "train-unit": { type: "string" },
  "image-size": { type: "string" },
  normalization: { type: "string" },
  augment: { type: "string" },
  "on-bad-case": { type: "string" },
  "batch-size": { type: "string" },
  "dump-batch": { type: "string" },
  preview: { type: "string" },
  "preview-count": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Flags to a DataConfig; buildDataset validates the values it owns (choices, ranges) and names the flag. */
export function dataConfigFromFlags(v: Record<string, string | boolean | undefined>): DataConfig {
  if (typeof v.data !== "string") throw new UserError(`--data DIR is required\n${USAGE}`);
  const tp = v["train-patients"] as string | undefined;
  const augment = v.augment as string | undefined;
  if (augment !== undefined && augment !== "default" && augment !== "none") {
    throw new UserError(`--augment: "${augment}" is not one of default, none`);
  }
  return {
    data: v.data,
    seed: numberFlag("seed", v.seed as string | undefined, { integer: true }),
    fold: numberFlag("fold", v.fold as string | undefined, { integer: true, min: 0 }),
    trainPatients: tp === "all" ? "all" : numberFlag("train-patients", tp, { integer: true, min: 1 }),
    framesMode: v["train-unit"] as DataConfig["framesMode"],
    imageSize: numberFlag("image-size", v["image-size"] as string | undefined, { integer: true, min: 8 }),
    normalization: v.normalization as DataConfig["normalization"],
    augment: augment === "none" ? false : undefined,
    onBadCase: v["on-bad-case"] as DataConfig["onBadCase"],
  };
}

/** Runs `write` for an output path, turning a missing folder or permission problem into a user error. */
async function writeOutput(flag: string, path: string, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new UserError(`--${flag} ${path}: folder not found`);
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new UserError(`--${flag} ${path}: permission denied`);
    }
    throw err;
  }
}

/** Writes epoch 0's first training batch (augmented, as training sees it): image [B, H, W, 3], label [B, H, W]. */
async function dumpBatch(ds: Dataset, path: string, batchSize: number) {
  for await (const b of ds.trainBatches(ds.epochRng(0), { batchSize, prefetch: 1 })) {
    try {
      const image = await b.image.data() as Float32Array;
      const label = await b.label.data() as Int32Array;
      const tensors = {
        image: { dtype: "float32" as const, shape: b.image.shape.slice(), data: image },
        label: { dtype: "int32" as const, shape: b.label.shape.slice(), data: label },
      };
      await writeOutput(
        "dump-batch",
        path,
        () => writeSafetensors(path, tensors, { ids: JSON.stringify(b.ids) }),
      );
      return { file: path, ids: b.ids, image_shape: b.image.shape, label_shape: b.label.shape };
    } finally {
      disposeBatch(b);
    }
  }
  throw new UserError(`--dump-batch: the labelled training set has no slices`);
}

async function main(args: string[]) {
  const { values } = parseFlags(args, OPTIONS);
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const config = dataConfigFromFlags(values);
  const batchSize = numberFlag("batch-size", values["batch-size"], { integer: true, min: 1 }) ?? 4;
  const previewCount =
    numberFlag("preview-count", values["preview-count"], { integer: true, min: 1, max: 256 }) ?? 16;
  const ds = await buildDataset(config, { onSkip: (m) => console.error(m) });
  const out: Record<string, unknown> = { ...ds.report() };
  if (values["dump-batch"]) {
    await tf.setBackend("cpu"); // a few uploads: no reason to start a GPU device
    out.dump = await dumpBatch(ds, values["dump-batch"], batchSize);
  }
  if (values.preview) {
    const path = values.preview;
    const items = await collect(pipe(ds.trainSlices(ds.epochRng(0)), take(previewCount)));
    if (items.length === 0) throw new UserError(`--preview: the labelled training set has no slices`);
    const grid = previewGrid(items, Math.ceil(Math.sqrt(items.length)));
    const png = encodePng(grid.pixels, grid.width, grid.height, 3);
    await writeOutput("preview", path, () => writeAtomic(path, (f) => writeAll(f, png)));
    out.preview = { file: path, slices: items.map((s) => s.id) };
  }
  console.log(JSON.stringify(out));
}

if (import.meta.main) runCli(main);
