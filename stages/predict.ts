/**
 * Prediction on whole volumes: a NIfTI scan in, a uint8 label map out on the scan's own grid with its
 * geometry copied, so it overlays the scan in ITK-SNAP, 3D Slicer or niivue.
 */
import { type NiftiVolume, readNifti, writeNifti } from "../io/nifti.ts";
import { readInputDir } from "../io/safe_open.ts";
import type { Segmenter } from "../model/segmenter.ts";
import { DataError } from "../errors.ts";
import { predictSlices } from "./predict_slices.ts";
import { type Normalization, toOriginalVolume, volumeSlices } from "./normalize.ts";
import type { Volume } from "./volume.ts";

export interface PredictOptions {
  imageSize: number;
  normalization: Normalization;
  batchSize: number;
}

/** Label map [Z, Y, X] (x fastest, as the scan) for a 2D or 3D scan; a 4D series is refused. */
export async function predictVolume(
  model: Segmenter,
  scan: NiftiVolume,
  opts: PredictOptions,
): Promise<Uint8Array> {
  const d = scan.dims;
  if (d.length > 3 && d.slice(3).some((n) => n !== 1)) {
    throw new DataError(
      `${scan.file}: dims [${d.join(", ")}]: a ${d.length}D series; predict takes one 2D or 3D volume`,
    );
  }
  const shape: [number, number, number] = [d[0], d[1] ?? 1, d[2] ?? 1];
  const volume: Volume = {
    id: scan.file,
    patient: scan.file,
    dims: d,
    shape,
    spacing: [scan.pixdim[0] ?? 1, scan.pixdim[1] ?? 1, scan.pixdim[2] ?? 1],
    affine: scan.affine,
    image: scan.data,
    label: new Uint8Array(scan.data.length),
    labelVoxels: [],
    files: { image: scan.file, label: "" },
  };
  const slices = volumeSlices(volume, { imageSize: opts.imageSize, normalization: opts.normalization });
  const maps = await predictSlices(model, slices, opts.batchSize);
  return toOriginalVolume(maps, slices);
}

/**
 * Reads a scan to predict on and refuses one the model cannot segment honestly: a NaN or infinite voxel
 * (all-NaN scans used to come back as an all-background map with exit 0) or a 4D series. Throws NiftiError or
 * DataError naming the file, so a caller can skip it under --on-bad-case skip.
 */
export async function readScan(input: string): Promise<NiftiVolume> {
  const scan = await readNifti(input);
  const { nan, inf, negInf } = scan.stats.nonFinite;
  const bad = nan + inf + negInf;
  if (bad === scan.data.length) {
    throw new DataError(`${input}: every voxel is NaN or infinite; there is nothing to segment`);
  }
  if (bad > 0) {
    throw new DataError(
      `${input}: ${bad} of ${scan.data.length} voxel(s) are NaN or infinite (${nan} NaN, ${inf} +inf, ` +
        `${negInf} -inf); the model needs finite intensities`,
    );
  }
  return scan;
}

/** Reads input, predicts, writes output (atomically) with the input's dims and geometry; returns label counts. */
export async function predictFile(
  model: Segmenter,
  input: string,
  output: string,
  opts: PredictOptions,
): Promise<number[]> {
  return await predictScanToFile(model, await readScan(input), output, opts);
}

/** Predicts a scan already read (readScan) and writes its label map to output; returns label counts. */
export async function predictScanToFile(
  model: Segmenter,
  scan: NiftiVolume,
  output: string,
  opts: PredictOptions,
): Promise<number[]> {
  const labels = await predictVolume(model, scan, opts);
  await writeNifti(output, labels, scan.dims.slice(0, 3), scan.geometry);
  const counts = new Array<number>(model.numClasses).fill(0);
  for (const v of labels) counts[v]++;
  return counts;
}

/**
 * NIfTI scans of a folder (not recursive), leaving out label files (X_gt.nii.gz), sorted by name. Every entry
 * with a scan's name but a folder is listed, links and non-regular files included, so the reader names what is
 * wrong with each (a FIFO, a dangling link) instead of it vanishing from the run.
 */
export async function scansIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readInputDir(dir)) {
    if (e.isDirectory || !/\.nii(\.gz)?$/.test(e.name) || /_gt\.nii(\.gz)?$/.test(e.name)) continue;
    out.push(e.name);
  }
  return out.sort();
}
