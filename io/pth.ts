/**
 * PyTorch checkpoint reader (torch.save's zip format, and the legacy pre-1.6 stream format) that never runs
 * Python: the pickle is read by our restricted unpickler, and each tensor's bytes are then read straight from
 * the file into its own typed array, so loading costs about one copy of the weights.
 */
import { quoted } from "../errors.ts";
import { PickleError, unpickle } from "./pickle.ts";
import { looksLikeZip, readZipIndex } from "./zip_index.ts";
import { allocData, dataBytes, type HostTensor, ITEM_SIZE, LITTLE_ENDIAN } from "./host_tensor.ts";
import { readFully } from "./file_io.ts";
import { openInput } from "./safe_open.ts";
import { readLegacyPickles } from "./pth_legacy.ts";
import {
  isTensorRef,
  type PthStorage,
  type PthTensorRef,
  storageFromPid,
  torchGlobals,
} from "./torch_globals.ts";

export { isTensorRef };
export type { PthStorage, PthTensorRef };

export interface PthArchive {
  file: string;
  /** The unpickled object: Maps for dicts, arrays for lists/tuples, PthTensorRef for tensors. */
  root: unknown;
  /** Bytes of tensor data the file really holds (every storage the pickle names, each checked on disk). */
  storageBytes: number;
  /** Reads one tensor as a contiguous (row-major) array; name is only for messages. */
  load(ref: PthTensorRef, name?: string): Promise<HostTensor>;
  close(): void;
}

/**
 * A view that repeats its storage (stride 0, as torch's expand makes) is materialised only up to this many
 * bytes: a few bytes on disk can otherwise describe terabytes (zeros(1).expand(2**20, 2**20)).
 */
export const MAX_EXPANDED_VIEW_BYTES = 16 << 20;

/**
 * All tensors read from one file together may ask for at most this many times the bytes of data the file
 * holds (plus MAX_EXPANDED_VIEW_BYTES): tied weights share a storage, but thousands of keys viewing one big
 * storage would turn a small file into any amount of memory.
 */
export const MAX_SHARING = 4;

/** Opens a torch checkpoint: reads the index and the pickle (small), not the tensor data. */
export async function openPth(path: string): Promise<PthArchive> {
  if (!LITTLE_ENDIAN) throw new PickleError("reading .pth files needs a little-endian machine");
  const f = await openInput(path);
  try {
    const size = (await f.stat()).size;
    const head = new Uint8Array(Math.min(4, size));
    await readFully(f, 0, head, path, PickleError);
    const seen = new Map<string, PthStorage>();
    const globals = torchGlobals(path);
    const persistentLoad = (pid: unknown) => storageFromPid(pid, path, seen);
    let root: unknown;
    const where = new Map<string, { dataStart: number; size: number }>();
    if (looksLikeZip(head)) {
      const entries = await readZipIndex(f, size, path);
      const pkl = [...entries.values()].find((e) => /^[^/]+\/data\.pkl$/.test(e.name));
      if (!pkl) {
        throw new PickleError(`${path}: zip archive without <name>/data.pkl: not a torch.save checkpoint`);
      }
      const prefix = pkl.name.slice(0, -"data.pkl".length);
      for (const e of entries.values()) {
        if (e.method !== 0 && (e.name === pkl.name || e.name.startsWith(`${prefix}data/`))) {
          throw new PickleError(
            `${path}: zip entry ${quoted(e.name)} is compressed (method ${e.method}); torch.save ` +
              `writes uncompressed entries: re-save it with torch.save`,
          );
        }
      }
      const order = entries.get(`${prefix}byteorder`);
      if (order && order.size <= 16) {
        const b = new Uint8Array(order.size);
        await readFully(f, order.dataStart, b, path, PickleError);
        if (new TextDecoder().decode(b) !== "little") throw new PickleError(`${path}: big-endian checkpoint`);
      }
      const bytes = new Uint8Array(pkl.size);
      await readFully(f, pkl.dataStart, bytes, path, PickleError);
      root = unpickle(bytes, { globals, persistentLoad, file: path }).value;
      for (const s of seen.values()) {
        const e = entries.get(`${prefix}data/${s.key}`);
        if (!e) throw new PickleError(`${path}: storage ${quoted(s.key)} is missing from the archive`);
        where.set(s.key, e);
      }
    } else {
      const legacy = await readLegacyPickles(f, size, path, globals, persistentLoad, seen);
      root = legacy.root;
      for (const s of seen.values()) {
        const at = legacy.storages.get(s.key);
        if (!at) throw new PickleError(`${path}: storage ${quoted(s.key)} is missing from the file`);
        where.set(s.key, at);
      }
    }
    for (const s of seen.values()) {
      const have = where.get(s.key)!.size, want = s.numel * ITEM_SIZE[s.dtype];
      if (have !== want) {
        throw new PickleError(
          `${path}: storage ${quoted(s.key)} holds ${have} bytes, the pickle says ${s.numel} ` +
            `${s.dtype} elements (${want} bytes)`,
        );
      }
    }
    let storageBytes = 0;
    for (const s of seen.values()) storageBytes += where.get(s.key)!.size;
    return {
      file: path,
      root,
      storageBytes,
      load: (ref, name) => loadTensor(f, where.get(ref.storage.key)!.dataStart, ref, path, name),
      close: () => f.close(),
    };
  } catch (err) {
    f.close();
    throw err;
  }
}

/** Bytes a tensor view takes once materialised as a contiguous array. */
export function viewBytes(ref: PthTensorRef): number {
  return ref.shape.reduce((a, b) => a * b, 1) * ITEM_SIZE[ref.storage.dtype];
}

/** Refuses a view with more elements than its storage (an expanded one) past MAX_EXPANDED_VIEW_BYTES. */
function checkExpansion(ref: PthTensorRef, file: string, name: string): void {
  const n = ref.shape.reduce((a, b) => a * b, 1);
  if (n > ref.storage.numel && n * ITEM_SIZE[ref.storage.dtype] > MAX_EXPANDED_VIEW_BYTES) {
    throw new PickleError(
      `${file}: tensor ${
        quoted(name)
      } is a broadcast view of size [${ref.shape}] (${n} elements) over a storage ` +
        `of ${ref.storage.numel}; refusing to expand it past ${MAX_EXPANDED_VIEW_BYTES >> 20} MiB`,
    );
  }
}

/**
 * Reads a tensor; a view that is not row-major contiguous is gathered into a contiguous copy. A view with
 * more elements than its storage (an expanded one) is refused past MAX_EXPANDED_VIEW_BYTES, before any
 * allocation (the storage itself was checked against the file, so every other view is bounded by it).
 */
async function loadTensor(
  f: Deno.FsFile,
  dataStart: number,
  ref: PthTensorRef,
  file: string,
  name = "?",
): Promise<HostTensor> {
  const { dtype } = ref.storage;
  const { shape, stride, offset } = ref;
  const isz = ITEM_SIZE[dtype];
  checkExpansion(ref, file, name);
  let n = 1;
  for (const d of shape) n *= d;
  const out = allocData(dtype, n);
  if (n === 0) return { dtype, shape: shape.slice(), data: out };
  let contiguous = true;
  for (let i = shape.length - 1, want = 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== want) contiguous = false;
    want *= shape[i];
  }
  if (contiguous) {
    await readFully(f, dataStart + offset * isz, dataBytes(out), file, PickleError);
    return { dtype, shape: shape.slice(), data: out };
  }
  let span = 1;
  for (let i = 0; i < shape.length; i++) span += (shape[i] - 1) * stride[i];
  const src = allocData(dtype, span);
  await readFully(f, dataStart + offset * isz, dataBytes(src), file, PickleError);
  gather(src, out, shape, stride);
  return { dtype, shape: shape.slice(), data: out };
}

/** Copies a strided view of src into out in row-major order (an odometer over the indices). */
function gather(
  src: ArrayLike<unknown>,
  out: { [i: number]: unknown; length: number },
  shape: number[],
  stride: number[],
) {
  const nd = shape.length;
  const idx = new Array(nd).fill(0);
  const inner = shape[nd - 1], innerStride = stride[nd - 1];
  let base = 0;
  for (let o = 0; o < out.length; o += inner) {
    for (let j = 0, s = base; j < inner; j++, s += innerStride) out[o + j] = src[s];
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]++;
      base += stride[d];
      if (idx[d] < shape[d]) break;
      base -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
}

/**
 * Every tensor under value, keyed by its path joined with "." (nested dicts, and list indices); non-tensor
 * leaves (epoch counters, strings) are skipped. Depth and node count are bounded: a hostile pickle can make
 * cycles or a DAG that doubles at every level (memo references), which must not hang the loader.
 */
export function flattenTensors(value: unknown, file: string): Map<string, PthTensorRef> {
  const out = new Map<string, PthTensorRef>();
  let budget = 1_000_000;
  const walk = (v: unknown, path: string, depth: number) => {
    if (--budget < 0) throw new PickleError(`${file}: checkpoint structure has over a million entries`);
    if (depth > 64) {
      throw new PickleError(`${file}: checkpoint nests deeper than 64 levels at ${quoted(path)}`);
    }
    if (isTensorRef(v)) {
      out.set(path, v);
    } else if (v instanceof Map || Array.isArray(v)) {
      const items = v instanceof Map ? [...v] : v.map((x, i) => [i, x]);
      for (const [k, x] of items) walk(x, path ? `${path}.${k}` : String(k), depth + 1);
    }
  };
  walk(value, "", 0);
  return out;
}

/**
 * Loads the given tensors, in the map's order, closing the archive when done (or on error). Their total size
 * is checked against the data the file holds (MAX_SHARING) before the first is read.
 */
export async function loadTensors(archive: PthArchive, refs: Map<string, PthTensorRef>) {
  const out = new Map<string, HostTensor>();
  try {
    let total = 0;
    for (const [name, ref] of refs) {
      checkExpansion(ref, archive.file, name);
      total += viewBytes(ref);
    }
    const limit = MAX_SHARING * archive.storageBytes + MAX_EXPANDED_VIEW_BYTES;
    if (total > limit) {
      throw new PickleError(
        `${archive.file}: its ${refs.size} tensors would take ${total} bytes, over ${MAX_SHARING}x the ` +
          `${archive.storageBytes} bytes of data the file holds (views sharing storages); refusing`,
      );
    }
    for (const [name, ref] of refs) out.set(name, await archive.load(ref, name));
  } finally {
    archive.close();
  }
  return out;
}

/** Reads every tensor of a torch checkpoint, keyed by its dotted path (e.g. "model_state_dict.test"). */
export async function readPth(path: string): Promise<Map<string, HostTensor>> {
  const archive = await openPth(path);
  let refs: Map<string, PthTensorRef>;
  try {
    refs = flattenTensors(archive.root, path);
  } catch (err) {
    archive.close();
    throw err;
  }
  return loadTensors(archive, refs);
}
