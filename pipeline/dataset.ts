/**
 * The whole data path from one DataOptions: every case is read and checked once up front (so a bad file stops
 * the run before training, and `data`, `train` and `eval` see the same patients), then split, and the train
 * and evaluation streams are built on demand.
 */
import { type BadCase, type CaseFiles, discoverLayout } from "../stages/acdc_layout.ts";
import { augment } from "../stages/augment.ts";
import { type Batch, batch, disposeBatch } from "../stages/batch.ts";
import { badCaseOf, handleBadCase, isBadCaseError, loadVolume } from "../stages/load.ts";
import { channelsAreCopies, expandChannels, toOriginalVolume, volumeSlices } from "../stages/normalize.ts";
import type { Phase, SliceItem, Volume } from "../stages/volume.ts";
import { type DataConfig, type DataOptions, resolveDataOptions } from "./data_options.ts";
import { map, pipe } from "./pipe.ts";
import { prefetch } from "./prefetch.ts";
import { Rng } from "./rng.ts";
import { type LabelledSubset, labelledSubset, type Split, splitPatients } from "./splits.ts";

/** What the up-front check learnt about a volume (its voxels are not kept). */
export interface VolumeInfo {
  id: string;
  patient: string;
  phase?: Phase;
  dims: number[];
  spacing: [number, number, number];
  labelVoxels: number[];
  /** Number of 2D slices (z). */
  slices: number;
  files: { image: string; label: string };
}

/** One evaluation volume: original grid (for per-frame metrics at full resolution) and model-grid slices. */
export interface EvalVolume {
  /** Image and label on the original grid, with spacing and affine. */
  volume: Volume;
  /** Every slice in z order at imageSize, unaugmented; `label` is the model-grid ground truth. */
  slices: SliceItem[];
  /** Model-grid predictions (one [S, S] map per slice, z order) back to the original grid: [Z, Y, X]. */
  toOriginal(labelMaps: Uint8Array[]): Uint8Array;
}

/** A patient's evaluation volumes, ED first then ES (REFERENCE 5 stacks them into one pseudo-volume). */
export interface EvalPatient {
  patient: string;
  volumes: EvalVolume[];
}

export type Part = "train" | "val" | "test";

/** What a run saves so its data can be rebuilt exactly. */
export interface SplitRecord {
  data: string;
  layout: "acdc" | "pairs";
  seed: number;
  fold: number;
  folds: number;
  trainPatients: number | "all";
  framesMode: DataOptions["framesMode"];
  train: string[];
  val: string[];
  test: string[];
  labelled: string[];
  labelledVolumes: string[];
  skipped: string[];
}

/** The `deno task data` JSON (DESIGN section 3), plus the layout and skipped cases. */
export interface DataReport {
  layout: "acdc" | "pairs";
  root: string;
  seed: number;
  fold: number;
  patients: { train: string[]; val: string[]; test: string[] };
  labelled: string[];
  labelled_volumes: string[];
  volumes: {
    id: string;
    patient: string;
    phase?: Phase;
    dims: number[];
    spacing: number[];
    label_voxels: number[];
  }[];
  slices: { train: number; val: number; test: number };
  skipped: { id: string; file: string; problem: string }[];
}

export interface Dataset {
  options: DataOptions;
  layout: "acdc" | "pairs";
  root: string;
  split: Split;
  labelled: LabelledSubset;
  /** Every usable volume, sorted by id. */
  volumes: VolumeInfo[];
  skipped: BadCase[];
  /** Slices per part; train counts the labelled volumes only. */
  sliceCounts: { train: number; val: number; test: number };
  /** The generator for epoch e (seed-derived, so a resumed run replays the same order and augmentation). */
  epochRng(epoch: number): Rng;
  /**
   * The labelled training slices at imageSize, normalised, unaugmented (loaded once, then cached); one channel
   * unless the normalisation differs per channel (sam); trainSlices expands them to 3.
   */
  trainPool(): Promise<SliceItem[]>;
  /** One epoch: the pool shuffled by rng and augmented per slice (each slice's draw keyed by its id). */
  trainSlices(rng: Rng): AsyncIterable<SliceItem>;
  /** One epoch of tensor batches, read ahead by `prefetch` (default 2); the consumer disposes each batch. */
  trainBatches(
    rng: Rng,
    opts: { batchSize: number; dropLast?: boolean; prefetch?: number },
  ): AsyncIterable<Batch>;
  /** Patients of a part with their volumes, loaded one patient at a time. */
  evalPatients(part: Part): AsyncIterable<EvalPatient>;
  report(): DataReport;
  splitRecord(): SplitRecord;
}

export interface BuildHooks {
  /** Where "skipped <case>: <file>: <problem>" lines go (default stderr). */
  onSkip?: (message: string) => void;
}

const PHASE_ORDER: Record<string, number> = { ED: 0, ES: 1 };

function byPhaseThenId(a: { id: string; phase?: Phase }, b: { id: string; phase?: Phase }): number {
  const pa = PHASE_ORDER[a.phase ?? ""] ?? 2;
  const pb = PHASE_ORDER[b.phase ?? ""] ?? 2;
  return pa - pb || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Reads and checks every case, splits the patients, and returns the data path for training and evaluation. */
export async function buildDataset(
  config: DataConfig | DataOptions,
  hooks: BuildHooks = {},
): Promise<Dataset> {
  const options = resolveDataOptions(config as DataConfig);
  const onSkip = hooks.onSkip ?? ((m: string) => console.error(m));
  const layout = await discoverLayout(options.data);
  const skipped: BadCase[] = [];
  for (const b of layout.bad) {
    handleBadCase(b, options.onBadCase, onSkip);
    skipped.push(b);
  }
  const infos: VolumeInfo[] = [];
  const caseById = new Map<string, CaseFiles>();
  for (const c of layout.cases) {
    let v: Volume;
    try {
      v = await loadVolume(c, options);
    } catch (err) {
      if (!isBadCaseError(err)) throw err;
      const b = badCaseOf(c, err);
      handleBadCase(b, options.onBadCase, onSkip);
      skipped.push(b);
      continue;
    }
    caseById.set(c.id, c);
    infos.push({
      id: v.id,
      patient: v.patient,
      ...(v.phase ? { phase: v.phase } : {}),
      dims: v.dims,
      spacing: v.spacing,
      labelVoxels: v.labelVoxels,
      slices: v.shape[2],
      files: v.files,
    });
  }
  infos.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const byPatient = new Map<string, VolumeInfo[]>();
  for (const v of infos) byPatient.set(v.patient, [...(byPatient.get(v.patient) ?? []), v]);
  for (const list of byPatient.values()) list.sort(byPhaseThenId);

  if (skipped.length > 0) {
    onSkip(
      `skipped ${skipped.length} bad case(s); using ${infos.length} volumes of ${byPatient.size} patients`,
    );
  }
  const split = splitPatients([...byPatient.keys()], options);
  const labelled = labelledSubset(
    split.train,
    options.trainPatients,
    options.framesMode,
    (p) => byPatient.get(p)!.map((v) => v.id),
  );
  const slicesById = new Map(infos.map((v) => [v.id, v.slices]));
  const slicesOf = (ids: string[]) => ids.reduce((n, id) => n + slicesById.get(id)!, 0);
  const volumeIdsOf = (patients: string[]) => patients.flatMap((p) => byPatient.get(p)!.map((v) => v.id));
  const sliceCounts = {
    train: slicesOf(labelled.volumes),
    val: slicesOf(volumeIdsOf(split.val)),
    test: slicesOf(volumeIdsOf(split.test)),
  };
  const norm = { imageSize: options.imageSize, normalization: options.normalization };
  const load = (id: string) => loadVolume(caseById.get(id)!, options);

  // The pool keeps one channel when the channels are copies (3x less memory for large labelled sets).
  const poolChannels = channelsAreCopies(options.normalization) ? 1 : 3;
  let pool: Promise<SliceItem[]> | undefined;
  const trainPool = () =>
    pool ??= (async () => {
      const out: SliceItem[] = [];
      for (const id of labelled.volumes) {
        out.push(
          ...volumeSlices(await load(id), { ...norm, channels: poolChannels }),
        );
      }
      return out;
    })();

  async function* trainSlices(rng: Rng): AsyncIterable<SliceItem> {
    const order = rng.fork("order").shuffle(await trainPool());
    const slices = pipe(order, map((s: SliceItem) => expandChannels(s, 3))); // lazily: one copy in flight
    if (!options.augment) return yield* slices;
    yield* augment(rng.fork("augment"), options.augment)(slices);
  }

  async function* evalPatients(part: Part): AsyncIterable<EvalPatient> {
    for (const patient of split[part]) {
      const volumes: EvalVolume[] = [];
      for (const info of byPatient.get(patient)!) {
        const volume = await load(info.id);
        const slices = volumeSlices(volume, norm);
        volumes.push({ volume, slices, toOriginal: (maps) => toOriginalVolume(maps, slices) });
      }
      yield { patient, volumes };
    }
  }

  return {
    options,
    layout: layout.kind,
    root: layout.root,
    split,
    labelled,
    volumes: infos,
    skipped,
    sliceCounts,
    epochRng: (epoch) => new Rng(options.seed).fork("train-data").fork(epoch),
    trainPool,
    trainSlices,
    trainBatches: (rng, o) =>
      pipe(
        trainSlices(rng),
        batch(o.batchSize, { dropLast: o.dropLast }),
        prefetch(o.prefetch ?? 2, { dispose: disposeBatch }),
      ),
    evalPatients,
    report: () => ({
      layout: layout.kind,
      root: layout.root,
      seed: options.seed,
      fold: options.fold,
      patients: { train: split.train, val: split.val, test: split.test },
      labelled: labelled.patients,
      labelled_volumes: labelled.volumes,
      volumes: infos.map((v) => ({
        id: v.id,
        patient: v.patient,
        ...(v.phase ? { phase: v.phase } : {}),
        dims: v.dims,
        spacing: v.spacing,
        label_voxels: v.labelVoxels,
      })),
      slices: sliceCounts,
      skipped: skipped.map((b) => ({ id: b.id, file: b.file, problem: b.problem })),
    }),
    splitRecord: () => ({
      data: options.data,
      layout: layout.kind,
      seed: options.seed,
      fold: options.fold,
      folds: options.folds,
      trainPatients: options.trainPatients,
      framesMode: options.framesMode,
      train: split.train,
      val: split.val,
      test: split.test,
      labelled: labelled.patients,
      labelledVolumes: labelled.volumes,
      skipped: skipped.map((b) => b.id),
    }),
  };
}
