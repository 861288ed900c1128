/**
 * `deno task data --data DIR [...]`: what the data stages see, as one JSON line (docs/cli.md): the split,
 * the labelled patients, every volume's dims and per-class voxel counts, slice counts; optionally one
 * augmented batch as safetensors and a PNG grid of augmented slices with their labels.
 */
import { checkWritable, type OutputOptions, writeOutputBytes } from "../io/safe_output.ts";
import { encodePng } from "../io/png.ts";
import { writeSafetensors } from "../io/safetensors.ts";
import { tf } from "../engine/tf.ts";
import { disposeBatch } from "../stages/batch.ts";
import { collect, pipe, take } from "../stages/pipe.ts";
import { previewGrid } from "../stages/preview.ts";
import { DATA_OPTIONS, TRAIN_OPTIONS } from "../pipeline/config.ts";
import { buildDataset, type Dataset } from "../pipeline/dataset.ts";
import { parseCommand, requireFlags } from "../pipeline/flags.ts";
import { int, path } from "../pipeline/option_schema.ts";
import { runCli } from "../pipeline/run_cli.ts";
import { UserError } from "../errors.ts";

const USAGE = `usage: deno task data --data DIR [--seed N] [--fold K] [--train-patients N|all]
  [--train-unit patients|frames] [--image-size 224] [--normalization zscore|sam|minmax] [--augment default|none]
  [--on-bad-case fail|skip] [--batch-size 4] [--dump-batch F.safetensors] [--preview F.png] [--preview-count 16]`;

/** The data options of training, and what only this command has. */
const SHAPE = {
  ...DATA_OPTIONS,
  batchSize: TRAIN_OPTIONS.batchSize,
  dumpBatch: path.optional(),
  preview: path.optional(),
  previewCount: int(1, 256),
};

/** The data set's files, which no output may replace. */
function inputsOf(ds: Dataset): string[] {
  return ds.volumes.flatMap((v) => [v.files.image, v.files.label]);
}

/** Writes epoch 0's first training batch (augmented, as training sees it): image [B, H, W, 3], label [B, H, W]. */
async function dumpBatch(ds: Dataset, path: string, batchSize: number, out: OutputOptions) {
  for await (const b of ds.trainBatches(ds.epochRng(0), { batchSize, prefetch: 1 })) {
    try {
      const image = await b.image.data() as Float32Array;
      const label = await b.label.data() as Int32Array;
      const tensors = {
        image: { dtype: "float32" as const, shape: b.image.shape.slice(), data: image },
        label: { dtype: "int32" as const, shape: b.label.shape.slice(), data: label },
      };
      await writeSafetensors(path, tensors, { ids: JSON.stringify(b.ids) }, out);
      return { file: path, ids: b.ids, image_shape: b.image.shape, label_shape: b.label.shape };
    } finally {
      disposeBatch(b);
    }
  }
  throw new UserError(`--dump-batch: the labelled training set has no slices`);
}

async function main(args: string[]) {
  const { options, help } = parseCommand(args, SHAPE, { defaults: { batchSize: 4, previewCount: 16 } });
  if (help) return console.log(USAGE);
  requireFlags(options, ["data"], USAGE);
  const { batchSize, dumpBatch: dump, preview, previewCount, ...config } = options;
  // Unwritable outputs fail before the data set is read.
  if (dump) await checkWritable(dump, { label: "--dump-batch" });
  if (preview) await checkWritable(preview, { label: "--preview" });
  const ds = await buildDataset({ ...config, data: config.data! }, { onSkip: (m) => console.error(m) });
  const out: Record<string, unknown> = { ...ds.report() };
  if (dump) {
    await tf.setBackend("cpu"); // a few uploads: no reason to start a GPU device
    out.dump = await dumpBatch(ds, dump, batchSize!, { label: "--dump-batch", inputs: inputsOf(ds) });
  }
  if (preview) {
    const path = preview;
    const items = await collect(pipe(ds.trainSlices(ds.epochRng(0)), take(previewCount!)));
    if (items.length === 0) throw new UserError(`--preview: the labelled training set has no slices`);
    const grid = previewGrid(items, Math.ceil(Math.sqrt(items.length)));
    const png = encodePng(grid.pixels, grid.width, grid.height, 3);
    await writeOutputBytes(path, png, { label: "--preview", inputs: inputsOf(ds) });
    out.preview = { file: path, slices: items.map((s) => s.id) };
  }
  console.log(JSON.stringify(out));
}

if (import.meta.main) runCli(main);
