/**
 * The whole data path from one set of data options, as the chain of stages load -> normalize -> augment ->
 * batch: every case is read and checked once up front (so a bad file stops the run before training, and
 * `data`, `train` and `eval` see the same patients), then split; the training and evaluation streams are
 * built from the same stages on demand.
 */
import { type BadCase, type CaseFiles, discoverLayout } from "../stages/acdc_layout.ts";
import { augment, resolveAugment } from "../stages/augment.ts";
import { type Batch, batch, disposeBatch } from "../stages/batch.ts";
import { handleBadCase, loadVolumes } from "../stages/load.ts";
import {
  channelsAreCopies,
  expandChannels,
  normalize,
  toOriginalVolume,
  volumeSlices,
} from "../stages/normalize.ts";
import { collect, map, pipe } from "../stages/pipe.ts";
import { prefetch } from "../stages/prefetch.ts";
import {
  type EvalPatient,
  type EvalVolume,
  NUM_CLASSES,
  type Phase,
  type SliceItem,
  type Volume,
} from "../stages/volume.ts";
import { Rng } from "../engine/rng.ts";
import { type DataOptions, dataOptions } from "./config.ts";
import { FOLDS, type LabelledSubset, labelledSubset, type Split, splitPatients } from "./splits.ts";

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

export type Part = "train" | "val" | "test";

/** What a run saves so its data can be rebuilt exactly. */
export interface SplitRecord {
  data: string;
  layout: "acdc" | "pairs";
  seed: number;
  splitSeed: number;
  fold: number;
  folds: number;
  trainPatients: number | "all";
  framesMode: DataOptions["trainUnit"];
  train: string[];
  val: string[];
  test: string[];
  labelled: string[];
  labelledVolumes: string[];
  skipped: string[];
}

/** The `deno task data` JSON (docs/cli.md), plus the layout and skipped cases. */
export interface DataReport {
  layout: "acdc" | "pairs";
  root: string;
  seed: number;
  split_seed: number;
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

const infoOf = (v: Volume): VolumeInfo => ({
  id: v.id,
  patient: v.patient,
  ...(v.phase ? { phase: v.phase } : {}),
  dims: v.dims,
  spacing: v.spacing,
  labelVoxels: v.labelVoxels,
  slices: v.shape[2],
  files: v.files,
});

/** Reads and checks every case, splits the patients, and returns the data path for training and evaluation. */
export async function buildDataset(
  given: Partial<DataOptions> & { data: string },
  hooks: BuildHooks = {},
): Promise<Dataset> {
  const options = dataOptions(given);
  const augmentation = options.augment === false ? null : resolveAugment(options.augment);
  const onSkip = hooks.onSkip ?? ((m: string) => console.error(m));
  const layout = await discoverLayout(options.data);
  const skipped: BadCase[] = [];
  for (const b of layout.bad) {
    handleBadCase(b, options.onBadCase, onSkip);
    skipped.push(b);
  }
  // The check pass: every case through the load stage once; bad ones fail or are skipped per the policy.
  const check = loadVolumes({ numClasses: NUM_CLASSES, onBadCase: options.onBadCase, onSkip, skipped });
  const infos: VolumeInfo[] = [];
  for await (const v of pipe(layout.cases, check)) infos.push(infoOf(v));
  infos.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const byPatient = new Map<string, VolumeInfo[]>();
  for (const v of infos) byPatient.set(v.patient, [...(byPatient.get(v.patient) ?? []), v]);
  for (const list of byPatient.values()) list.sort(byPhaseThenId);

  if (skipped.length > 0) {
    onSkip(
      `skipped ${skipped.length} bad case(s); using ${infos.length} volumes of ${byPatient.size} patients`,
    );
  }
  // The split depends on --split-seed and --fold only, so runs that differ in --seed share their test patients.
  const split = splitPatients([...byPatient.keys()], { seed: options.splitSeed, fold: options.fold });
  const labelled = labelledSubset(
    split.train,
    options.trainPatients,
    options.trainUnit,
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
  // Later passes read cases that passed the check: a failure now (a file changed underneath) stops the run.
  const caseById = new Map(layout.cases.map((c) => [c.id, c]));
  const load = () => loadVolumes({ numClasses: NUM_CLASSES, onBadCase: "fail" });
  const casesOf = (ids: string[]): CaseFiles[] => ids.map((id) => caseById.get(id)!);

  // The pool keeps one channel when the channels are copies (3x less memory for large labelled sets).
  const poolChannels = channelsAreCopies(options.normalization) ? 1 : 3;
  let pool: Promise<SliceItem[]> | undefined;
  const trainPool = () =>
    pool ??= collect(pipe(casesOf(labelled.volumes), load(), normalize({ ...norm, channels: poolChannels })));

  async function* trainSlices(rng: Rng): AsyncIterable<SliceItem> {
    const order = rng.fork("order").shuffle(await trainPool());
    const slices = pipe(order, map((s: SliceItem) => expandChannels(s, 3))); // lazily: one copy in flight
    yield* augmentation ? augment(rng.fork("augment"), augmentation)(slices) : slices;
  }

  async function* evalPatients(part: Part): AsyncIterable<EvalPatient> {
    for (const patient of split[part]) {
      const volumes: EvalVolume[] = [];
      for await (const volume of pipe(casesOf(byPatient.get(patient)!.map((v) => v.id)), load())) {
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
      split_seed: options.splitSeed,
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
      splitSeed: options.splitSeed,
      fold: options.fold,
      folds: FOLDS,
      trainPatients: options.trainPatients,
      framesMode: options.trainUnit,
      train: split.train,
      val: split.val,
      test: split.test,
      labelled: labelled.patients,
      labelledVolumes: labelled.volumes,
      skipped: skipped.map((b) => b.id),
    }),
  };
}
