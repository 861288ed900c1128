/**
 * Loads SAM/MedSAM weights from any of the forms users actually have (torch .pth, HF model.safetensors, a
 * training checkpoint wrapping the state dict, a DataParallel "module." state dict) into the official key
 * layout, and checks them strictly against a model so a wrong file fails with one complete explanation.
 */
import { printable, quoted, UserError } from "../errors.ts";
import { createHash } from "node:crypto";
import type { HostDtype, HostTensor } from "../io/host_tensor.ts";
import { readSafetensorsHeader, readSafetensorsWithMetadata } from "../io/safetensors.ts";
import { flattenTensors, isTensorRef, loadTensors, openPth, type PthTensorRef } from "../io/pth.ts";
import { InputError, openInput } from "../io/safe_open.ts";
import { readInto } from "../io/file_io.ts";
import { HF_SHARED_DUPLICATE, hfToOfficial, isHfSamKeys, officialToHf } from "./sam_key_map.ts";

export { hfToOfficial, officialToHf };

export class CheckpointError extends UserError {}

/** Keys under which training scripts nest the weights (MedSAM's "model", Lightning's "state_dict", ...). */
const NESTED = ["model", "state_dict", "model_state_dict"];
/** Non-persistent buffers some exports still carry; the model derives them from its preprocessing config. */
const DROPPED = new Set(["pixel_mean", "pixel_std"]);

export type CheckpointFormat = "pth-zip" | "pth-legacy" | "safetensors";

/** Tells the format from the first bytes (extensions lie: HF .bin files are torch zips). */
export async function detectFormat(path: string): Promise<CheckpointFormat> {
  let f: Deno.FsFile;
  try {
    // The safe-open helper refuses a FIFO, device or symlink loop before opening it (nothing blocks).
    f = await openInput(path);
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    const problem = err.message.slice(path.length + 2);
    if (problem === "not found") throw new CheckpointError(`${path}: no such file`);
    if (problem === "is a folder, not a file") {
      throw new CheckpointError(`${path}: is a directory, not a file`);
    }
    throw new CheckpointError(err.message);
  }
  const head = new Uint8Array(9);
  let n: number;
  try {
    n = await readInto(f, head);
  } finally {
    f.close();
  }
  if (n === 0) throw new CheckpointError(`${path}: empty file, not a checkpoint`);
  if (n >= 4 && head[0] === 0x50 && head[1] === 0x4b && (head[2] === 3 || head[2] === 5)) return "pth-zip";
  if (head[0] === 0x80 && head[1] >= 2 && head[1] <= 5) return "pth-legacy";
  if (n === 9 && head[8] === 0x7b && new DataView(head.buffer).getBigUint64(0, true) < 100_000_000n) {
    return "safetensors";
  }
  throw new CheckpointError(`${path}: not a checkpoint (expected a PyTorch .pth/.pt or a .safetensors file)`);
}

/** Picks the state dict inside a training checkpoint: a nested dict holding tensors, unless the top holds them. */
export function unwrapStateDict(root: unknown, path: string): unknown {
  for (let depth = 0; depth < 3 && root instanceof Map; depth++) {
    if ([...root.values()].some(isTensorRef)) return root;
    const key = NESTED.find((k) => root instanceof Map && root.get(k) instanceof Map);
    if (!key) return root;
    root = root.get(key);
  }
  if (!(root instanceof Map)) {
    throw new CheckpointError(`${path}: does not hold a state dict (a dict of tensors)`);
  }
  return root;
}

/**
 * Maps the file's tensor names to official names: strips "module.", undoes the HF renaming, drops the HF
 * duplicate of the positional matrix and the pixel mean/std buffers. Returns file name -> official name.
 */
export function planKeys(names: string[], path: string): Map<string, string> {
  const stripped = names.map((k) => (k.startsWith("module.") ? k.slice(7) : k));
  const hf = isHfSamKeys(stripped);
  const hasPe = stripped.includes("prompt_encoder.shared_embedding.positional_embedding");
  const plan = new Map<string, string>();
  const taken = new Map<string, string>();
  for (let i = 0; i < names.length; i++) {
    let k = stripped[i];
    if (DROPPED.has(k)) continue;
    if (hf) {
      if (k === HF_SHARED_DUPLICATE && hasPe) continue;
      k = hfToOfficial(k);
    }
    const prev = taken.get(k);
    if (prev !== undefined) {
      throw new CheckpointError(`${path}: ${quoted(prev)} and ${quoted(names[i])} both map to ${quoted(k)}`);
    }
    taken.set(k, names[i]);
    plan.set(names[i], k);
  }
  return plan;
}

/** One tensor of a state dict as its file describes it, before any of its data is read. */
export interface StateDictEntry {
  dtype: HostDtype;
  shape: number[];
}

/**
 * A checkpoint whose structure is known (from the safetensors header or the unpickled state dict) but whose
 * tensors are not read yet, so keys and shapes can be checked against a model before any memory is spent.
 */
export interface StateDictFile {
  file: string;
  format: CheckpointFormat;
  /** Official name -> dtype and shape, in file order. */
  entries: Map<string, StateDictEntry>;
  /** Reads the named entries (official names; every entry when omitted) and closes the file. */
  load(names?: Iterable<string>): Promise<Map<string, HostTensor>>;
  /** Closes the file without reading (load closes it too). */
  close(): void;
}

/**
 * Opens a .pth/.pt (zip or legacy pickle) or .safetensors checkpoint (detected by content, not extension):
 * unwraps a nested "model"/"state_dict"/"model_state_dict" entry, strips a "module." prefix, maps Hugging
 * Face SAM names (docs/methods.md 1.4) back to the official names, and describes the tensors without reading
 * them.
 */
export async function openStateDict(path: string): Promise<StateDictFile> {
  const format = await detectFormat(path);
  const entries = new Map<string, StateDictEntry>();
  const pick = (names: Iterable<string> | undefined) => {
    const keys = names ? [...names] : [...entries.keys()];
    const unknown = keys.filter((k) => !entries.has(k));
    if (unknown.length) {
      throw new CheckpointError(`${path}: has no tensor ${unknown.map(printable).join(", ")}`);
    }
    return new Set(keys);
  };
  if (format === "safetensors") {
    const header = await readSafetensorsHeader(path);
    if (!header.entries.size) throw new CheckpointError(`${path}: holds no tensors`);
    const plan = planKeys([...header.entries.keys()], path);
    for (const [name, official] of plan) {
      const e = header.entries.get(name)!;
      entries.set(official, { dtype: e.dtype, shape: e.shape });
    }
    return {
      file: path,
      format,
      entries,
      load: async (names) => {
        const want = pick(names);
        const { tensors } = await readSafetensorsWithMetadata(path, {
          filter: (n) => plan.has(n) && want.has(plan.get(n)!),
        });
        const out = new Map<string, HostTensor>();
        for (const [name, t] of tensors) out.set(plan.get(name)!, t);
        return out;
      },
      close: () => {},
    };
  }
  const archive = await openPth(path);
  const refs = new Map<string, PthTensorRef>();
  try {
    const found = flattenTensors(unwrapStateDict(archive.root, path), path);
    if (!found.size) throw new CheckpointError(`${path}: holds no tensors`);
    for (const [name, official] of planKeys([...found.keys()], path)) refs.set(official, found.get(name)!);
  } catch (err) {
    archive.close();
    throw err;
  }
  for (const [k, r] of refs) entries.set(k, { dtype: r.storage.dtype, shape: r.shape.slice() });
  return {
    file: path,
    format,
    entries,
    load: (names) => {
      let want: Set<string>;
      try {
        want = pick(names);
      } catch (err) {
        archive.close();
        throw err;
      }
      return loadTensors(archive, new Map([...refs].filter(([k]) => want.has(k))));
    },
    close: () => archive.close(),
  };
}

/** Reads every tensor of a checkpoint under its official name (see openStateDict). */
export async function readStateDict(path: string): Promise<Map<string, HostTensor>> {
  return await (await openStateDict(path)).load();
}

/**
 * Reads only the tensors a model expects, after checking the file's keys and shapes against it (checkStrict,
 * on the description alone): a wrong or hostile file fails before any tensor memory is allocated.
 */
export async function readCheckedStateDict(
  path: string,
  expected: Map<string, number[]>,
  opts: { ignore?: (key: string) => boolean } = {},
): Promise<Map<string, HostTensor>> {
  const sd = await openStateDict(path);
  const skip = opts.ignore ?? (() => false);
  try {
    checkStrict(expected, sd.entries, path, opts);
  } catch (err) {
    sd.close();
    throw err;
  }
  return await sd.load([...expected.keys()].filter((k) => !skip(k)));
}

/**
 * Strict check of a state dict against the shapes a model expects: one CheckpointError (naming the file)
 * listing every missing key, unexpected key and shape mismatch, so the user sees the whole problem at once.
 */
export function checkStrict(
  expected: ReadonlyMap<string, readonly number[]>,
  sd: ReadonlyMap<string, { shape: readonly number[] }>,
  file: string,
  opts: { ignore?: (key: string) => boolean } = {},
): void {
  const skip = opts.ignore ?? (() => false);
  const missing = [...expected.keys()].filter((k) => !sd.has(k) && !skip(k));
  const unexpected = [...sd.keys()].filter((k) => !expected.has(k) && !skip(k));
  const mismatched: string[] = [];
  for (const [k, shape] of expected) {
    const t = sd.get(k);
    if (!t || skip(k)) continue;
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      mismatched.push(`${printable(k)} (file [${t.shape}], model [${shape}])`);
    }
  }
  if (!missing.length && !unexpected.length && !mismatched.length) return;
  // A hostile file can hold a million keys: list the first few of each kind, count the rest.
  const list = (xs: string[]) =>
    xs.length > 50
      ? `${xs.slice(0, 50).map(printable).join(", ")}, ... (${xs.length - 50} more)`
      : xs.map(printable).join(", ");
  const parts: string[] = [];
  if (missing.length) parts.push(`${missing.length} missing: ${list(missing)}`);
  if (unexpected.length) parts.push(`${unexpected.length} unexpected: ${list(unexpected)}`);
  if (mismatched.length) parts.push(`${mismatched.length} shape mismatches: ${list(mismatched)}`);
  throw new CheckpointError(`${file}: weights do not fit the model; ${parts.join("; ")}`);
}

/** The file's sha256 (hex), streamed in 1 MiB chunks so big checkpoints are never held in memory. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  const f = await openInput(path);
  try {
    const buf = new Uint8Array(1 << 20);
    for (let n; (n = await f.read(buf)) !== null;) hash.update(buf.subarray(0, n));
  } finally {
    f.close();
  }
  return hash.digest("hex");
}
