/**
 * The run directory of docs/run_directory.md: config.json, trainable.safetensors, optimizer.safetensors, state.json,
 * log.jsonl, metrics.json and best/; every file is written under a temporary name and renamed into place, and
 * a checkpoint's files are all staged before any is renamed, so a crash never leaves a torn or mixed checkpoint.
 */
import { UserError } from "../errors.ts";
import { readSafetensorsWithMetadata, writeSafetensors } from "../io/safetensors.ts";
import { writeAll, writeAtomic } from "../io/file_io.ts";
import type { HostTensor } from "../io/host_tensor.ts";
import { CheckpointError } from "../model/checkpoint.ts";
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
  await writeAtomic(path, (f) => writeAll(f, enc.encode(JSON.stringify(value, null, 2) + "\n")));
}

/** Reads a JSON file, wrapping failures in CheckpointError naming the file. */
export async function readJson<T>(path: string): Promise<T> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    // Deno's message ends with the path again ("...: readfile '/x/config.json'"): name it once.
    throw new CheckpointError(`${path}: cannot read (${(err as Error).message.replace(/: \w+ '.*'$/, "")})`);
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

/** Removes leftovers of an interrupted write (staged and temporary files) from dir. */
export async function cleanStaged(dir: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && (e.name.endsWith(".staged") || e.name.endsWith(".tmp"))) {
      await Deno.remove(`${dir}/${e.name}`).catch(() => {});
    }
  }
}

/**
 * Saves a checkpoint: both safetensors (each stamped with the epoch; the optimizer file also carries the full
 * state) and state.json are staged first, then renamed optimizer, trainable, state, so the renames are the
 * only window, and loadCheckpoint can tell and repair every point of it but one (reported, never silent).
 */
export async function saveCheckpoint(
  dir: string,
  ck: Checkpoint,
  trainableMeta: Record<string, string> = {},
) {
  const epoch = String(ck.state.epoch);
  const state = JSON.stringify(ck.state);
  const paths = [RUN_FILES.optimizer, RUN_FILES.trainable, RUN_FILES.state].map((f) => `${dir}/${f}`);
  await writeSafetensors(staged(paths[0]), ck.optimizer, { kind: "optimizer", epoch, state });
  await writeSafetensors(staged(paths[1]), ck.trainable, { ...trainableMeta, kind: "trainable", epoch });
  await writeJson(staged(paths[2]), ck.state);
  for (const p of paths) await Deno.rename(staged(p), p);
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
      // The readers' errors already begin with the path; only a bare I/O error needs it.
      throw new CheckpointError(err instanceof UserError ? err.message : `${p}: ${(err as Error).message}`);
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
  const f = await Deno.open(`${dir}/${RUN_FILES.log}`, { append: true, create: true });
  try {
    await writeAll(f, enc.encode(JSON.stringify(record) + "\n"));
  } finally {
    f.close();
  }
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
  await writeAtomic(path, (f) => writeAll(f, enc.encode(keep.map((l) => l + "\n").join(""))));
}

/** Saves best/ (trainable weights + which epoch and Dice), staged then renamed like a checkpoint. */
export async function saveBest(
  dir: string,
  trainable: Map<string, HostTensor>,
  info: { epoch: number; dice: number },
  meta: Record<string, string> = {},
): Promise<void> {
  const best = `${dir}/${RUN_FILES.best}`;
  await Deno.mkdir(best, { recursive: true });
  const wPath = `${best}/${RUN_FILES.trainable}`, sPath = `${best}/${RUN_FILES.state}`;
  await writeSafetensors(staged(wPath), trainable, { ...meta, kind: "trainable", epoch: String(info.epoch) });
  await writeJson(staged(sPath), info);
  await Deno.rename(staged(wPath), wPath);
  await Deno.rename(staged(sPath), sPath);
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
    throw new CheckpointError(err instanceof UserError ? err.message : `${path}: ${(err as Error).message}`);
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
