/**
 * The run directory of docs/run_directory.md: config.json, trainable.safetensors, optimizer.safetensors, state.json,
 * log.jsonl, metrics.json and best/; every file is written through the safe-output helper (a temporary name
 * renamed into place; an I/O error is one line naming the file), and a checkpoint's files are all staged before
 * any is renamed, so a crash never leaves a torn or mixed checkpoint, and resume can finish or undo every point.
 */
import { readSafetensorsHeader, readSafetensorsWithMetadata, writeSafetensors } from "../io/safetensors.ts";
import {
  appendOutput,
  OutputError,
  prepareOutputDir,
  renameOutput,
  withOutputErrors,
  writeOutputText,
} from "../io/safe_output.ts";
import type { HostTensor } from "../io/host_tensor.ts";
import { CheckpointError } from "../model/checkpoint.ts";
import { readInputText } from "../io/safe_open.ts";
import { UserError } from "../errors.ts";
import type { Checkpoint, TrainSink, TrainState } from "../stages/train_sink.ts";

export const RUN_FILES = {
  config: "config.json",
  trainable: "trainable.safetensors",
  optimizer: "optimizer.safetensors",
  state: "state.json",
  log: "log.jsonl",
  metrics: "metrics.json",
  best: "best",
} as const;

const enc = new TextEncoder();

/** Writes JSON (pretty, newline-terminated) atomically. */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeOutputText(path, JSON.stringify(value, null, 2) + "\n");
}

/** A run's JSON files are small; a bigger one is not ours (and is not read into memory). */
const JSON_MAX_BYTES = 64 << 20;

/** A read failure as a CheckpointError naming path once (the safe-open helper's errors already name it). */
function again(path: string, err: unknown): Error {
  const msg = (err as Error).message;
  if (!(err instanceof UserError)) return new CheckpointError(`${path}: cannot read (${msg})`);
  return new CheckpointError(msg.startsWith(`${path}: `) ? msg : `${path}: ${msg}`);
}

/** Reads a JSON file, wrapping failures in CheckpointError naming the file. */
export async function readJson<T>(path: string): Promise<T> {
  let text: string;
  try {
    text = await readInputText(path, { maxBytes: JSON_MAX_BYTES, what: "run JSON file" });
  } catch (err) {
    throw again(path, err);
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new CheckpointError(`${path}: not valid JSON`);
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Staged name: written in full (itself atomically), renamed to its real name only when all are staged. */
const staged = (path: string) => `${path}.staged`;

/** The checkpoint files in the order saveCheckpoint renames them. */
const CHECKPOINT_FILES = [RUN_FILES.optimizer, RUN_FILES.trainable, RUN_FILES.state] as const;
/** best/'s files in the order saveBest renames them. */
const BEST_FILES = [RUN_FILES.trainable, RUN_FILES.state] as const;

/**
 * Saves a checkpoint: both safetensors (each stamped with the epoch; the optimizer file also carries the full
 * state) and state.json are staged first, then renamed optimizer, trainable, state. A failure while staging
 * removes what was staged (the previous checkpoint stays whole); a kill at any point is finished or undone by
 * recoverCheckpoint.
 */
export async function saveCheckpoint(
  dir: string,
  ck: Checkpoint,
  trainableMeta: Record<string, string> = {},
) {
  for (const [from, to] of await stageCheckpoint(dir, ck, trainableMeta)) await renameOutput(from, to);
}

/**
 * The first half of saveCheckpoint: writes the three staged files and returns the renames still to do, in
 * order (exported so tests can stop the write between any two of them).
 */
export async function stageCheckpoint(
  dir: string,
  ck: Checkpoint,
  trainableMeta: Record<string, string> = {},
): Promise<[string, string][]> {
  const epoch = String(ck.state.epoch);
  const state = JSON.stringify(ck.state);
  const paths = CHECKPOINT_FILES.map((f) => `${dir}/${f}`);
  await stageAll(paths, [
    (p) => writeSafetensors(p, ck.optimizer, { kind: "optimizer", epoch, state }),
    (p) => writeSafetensors(p, ck.trainable, { ...trainableMeta, kind: "trainable", epoch }),
    (p) => writeJson(p, ck.state),
  ]);
  return paths.map((p) => [staged(p), p]);
}

/** Writes each file under its staged name; on a failure removes the staged files already written. */
async function stageAll(paths: string[], writers: ((path: string) => Promise<void>)[]): Promise<void> {
  try {
    for (let i = 0; i < paths.length; i++) await writers[i](staged(paths[i]));
  } catch (err) {
    for (const p of paths) await Deno.remove(staged(p)).catch(() => {});
    throw err;
  }
}

/** The epoch a checkpoint file carries (safetensors metadata or state.json), or undefined if unreadable. */
async function epochOf(path: string): Promise<number | undefined> {
  try {
    if (/\.json(\.staged)?$/.test(path)) {
      const e = (JSON.parse(await Deno.readTextFile(path)) as { epoch?: unknown }).epoch;
      return typeof e === "number" ? e : undefined;
    }
    const e = Number((await readSafetensorsHeader(path)).metadata.epoch);
    return Number.isInteger(e) ? e : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Finishes or undoes an interrupted staged write of files (in rename order) in their folder. The renames are
 * finished when every file is either staged or already renamed, and all carry the same epoch as the staged
 * ones (so a kill between two renames loses nothing); otherwise the write never completed its staging, the
 * previous files are untouched, and the staged ones are removed. Returns what it did, for the log.
 */
async function recoverStaged(paths: string[]): Promise<string | undefined> {
  const stagedNow = await Promise.all(paths.map((p) => exists(staged(p))));
  if (!stagedNow.some(Boolean)) return undefined;
  const epochs = await Promise.all(paths.map((p, i) => epochOf(stagedNow[i] ? staged(p) : p)));
  const stagedEpochs = epochs.filter((_, i) => stagedNow[i]);
  const complete = epochs.every((e) => e !== undefined && e === stagedEpochs[0]);
  if (complete) {
    for (let i = 0; i < paths.length; i++) if (stagedNow[i]) await renameOutput(staged(paths[i]), paths[i]);
    return `finished the interrupted save of epoch ${stagedEpochs[0]}`;
  }
  for (let i = 0; i < paths.length; i++) {
    if (stagedNow[i]) await withOutputErrors(staged(paths[i]), () => Deno.remove(staged(paths[i])));
  }
  return `dropped an incomplete save (staged files of epoch ${stagedEpochs.join("/")})`;
}

/**
 * Repairs a run directory after a kill at any point of a write, before it is resumed: an interrupted
 * checkpoint or best/ save is finished when all of its files were staged, else undone (the previous checkpoint
 * is whole); temporary files of interrupted atomic writes are removed. Returns a line per repair.
 */
export async function recoverCheckpoint(dir: string): Promise<string[]> {
  const done: string[] = [];
  for (const folder of [dir, `${dir}/${RUN_FILES.best}`]) {
    if (!(await exists(folder))) continue;
    for await (const e of Deno.readDir(folder)) {
      if (e.isFile && e.name.endsWith(".tmp")) {
        await withOutputErrors(`${folder}/${e.name}`, () => Deno.remove(`${folder}/${e.name}`));
      }
    }
  }
  const ck = await recoverStaged(CHECKPOINT_FILES.map((f) => `${dir}/${f}`));
  if (ck) done.push(`${dir}: ${ck}`);
  const best = await recoverStaged(BEST_FILES.map((f) => `${dir}/${RUN_FILES.best}/${f}`));
  if (best) done.push(`${dir}/${RUN_FILES.best}: ${best}`);
  return done;
}

/**
 * Makes dir ready for a training run before anything is trained. A new path or an empty folder is fine.
 * Without resume, a folder holding a run (config.json or a checkpoint) is refused, so a finished run is never
 * silently replaced, and so is any other non-empty folder. With resume the folder must exist. The folder is
 * probed with a temporary file, so an unwritable --out fails now, not at the first checkpoint. Returns whether
 * the folder was created (a run that fails while setting up removes only a folder it made).
 */
export async function prepareRunDir(
  dir: string,
  opts: { resume?: boolean } = {},
): Promise<{ created: boolean }> {
  const info = await Deno.stat(dir).catch(() => undefined);
  if (info?.isDirectory) {
    const names = await withOutputErrors(
      dir,
      async () => (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name),
      "--out",
    );
    const isRun = [RUN_FILES.config, RUN_FILES.trainable, RUN_FILES.optimizer, RUN_FILES.state]
      .some((f) => names.includes(f) || names.includes(`${f}.staged`));
    if (!opts.resume && isRun) {
      const saved = [RUN_FILES.optimizer, RUN_FILES.optimizer + ".staged"].some((f) => names.includes(f));
      throw new OutputError(
        saved
          ? `--out ${dir}: already holds a training run; add --resume to continue it, or choose another --out folder`
          : `--out ${dir}: holds a run stopped before its first checkpoint; remove it or choose another --out folder`,
      );
    }
    if (!opts.resume && names.length > 0) {
      throw new OutputError(
        `--out ${dir}: is not empty and holds no training run; choose a new or empty --out folder`,
      );
    }
  } else if (opts.resume && !info) {
    throw new OutputError(`--out ${dir}: no such run folder to resume`);
  }
  return await prepareOutputDir(dir, { label: "--out" });
}

/** Loads the checkpoint of a run directory, checking that its three files belong to the same epoch. */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  const tPath = `${dir}/${RUN_FILES.trainable}`, oPath = `${dir}/${RUN_FILES.optimizer}`;
  for (const p of [tPath, oPath]) {
    if (!(await exists(p))) {
      throw new CheckpointError(`${p}: missing; the run has no complete epoch to resume from`);
    }
  }
  const read = async (p: string) => {
    try {
      return await readSafetensorsWithMetadata(p);
    } catch (err) {
      throw again(p, err);
    }
  };
  const t = await read(tPath), o = await read(oPath);
  const tEpoch = Number(t.metadata?.epoch), oEpoch = Number(o.metadata?.epoch);
  if (tEpoch !== oEpoch || !o.metadata?.state) {
    throw new CheckpointError(
      `${dir}: trainable.safetensors is from epoch ${tEpoch} but optimizer.safetensors from epoch ${oEpoch}; ` +
        `the run was stopped while renaming its checkpoint and cannot be resumed exactly`,
    );
  }
  // The optimizer file's copy of the state is authoritative: state.json may lag it by one rename.
  const state = JSON.parse(o.metadata.state) as TrainState;
  const sPath = `${dir}/${RUN_FILES.state}`;
  const onDisk = (await exists(sPath)) ? await readJson<TrainState>(sPath).catch(() => undefined) : undefined;
  if (onDisk?.epoch !== state.epoch) await writeJson(sPath, state);
  return { trainable: t.tensors, optimizer: o.tensors, state };
}

/** Appends one JSON record per line to log.jsonl (a single write per line, so no line is ever half there). */
export async function appendLog(dir: string, record: Record<string, unknown>): Promise<void> {
  await appendOutput(`${dir}/${RUN_FILES.log}`, enc.encode(JSON.stringify(record) + "\n"));
}

/**
 * Rewrites log.jsonl (atomically) keeping only records up to the resumed epoch, so a resumed run's log reads
 * as if it had never stopped; a torn last line (impossible with single writes, but cheap to guard) is dropped.
 */
export async function truncateLog(dir: string, epochsDone: number): Promise<void> {
  const path = `${dir}/${RUN_FILES.log}`;
  if (!(await exists(path))) return;
  const keep: string[] = [];
  for (const line of (await Deno.readTextFile(path)).split("\n")) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as { epoch?: number };
      if (typeof r.epoch !== "number" || r.epoch <= epochsDone) keep.push(line);
    } catch {
      // a torn line: drop it
    }
  }
  await writeOutputText(path, keep.map((l) => l + "\n").join(""));
}

/** Saves best/ (trainable weights + which epoch and Dice), staged then renamed like a checkpoint. */
export async function saveBest(
  dir: string,
  trainable: Map<string, HostTensor>,
  info: { epoch: number; dice: number },
  meta: Record<string, string> = {},
): Promise<void> {
  for (const [from, to] of await stageBest(dir, trainable, info, meta)) await renameOutput(from, to);
}

/** The first half of saveBest: writes best/'s staged files and returns the renames still to do, in order. */
export async function stageBest(
  dir: string,
  trainable: Map<string, HostTensor>,
  info: { epoch: number; dice: number },
  meta: Record<string, string> = {},
): Promise<[string, string][]> {
  const best = `${dir}/${RUN_FILES.best}`;
  await withOutputErrors(best, () => Deno.mkdir(best, { recursive: true }));
  const paths = BEST_FILES.map((f) => `${best}/${f}`);
  await stageAll(paths, [
    (p) => writeSafetensors(p, trainable, { ...meta, kind: "trainable", epoch: String(info.epoch) }),
    (p) => writeJson(p, info),
  ]);
  return paths.map((p) => [staged(p), p]);
}

/** Reads trainable weights (run dir or best/), wrapping failures in CheckpointError. */
export async function loadTrainable(
  path: string,
): Promise<{ tensors: Map<string, HostTensor>; metadata: Record<string, string> }> {
  if (!(await exists(path))) throw new CheckpointError(`${path}: missing (was the run trained?)`);
  try {
    const r = await readSafetensorsWithMetadata(path);
    return { tensors: r.tensors, metadata: r.metadata ?? {} };
  } catch (err) {
    throw again(path, err);
  }
}

/** The training loop's sink for a run directory; meta is stamped into every trainable.safetensors. */
export function runDirSink(dir: string, meta: Record<string, string> = {}): TrainSink {
  return {
    log: (record) => appendLog(dir, record),
    saveBest: (trainable, best) => saveBest(dir, trainable, best, meta),
    saveCheckpoint: (ck) => saveCheckpoint(dir, ck, meta),
  };
}
