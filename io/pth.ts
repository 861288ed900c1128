/**
 * PyTorch checkpoint reader (torch.save's zip format, and the legacy pre-1.6 stream format) that never runs
 * Python: the pickle is read by our restricted unpickler, and each tensor's bytes are then read straight from
 * the file into its own typed array, so loading costs about one copy of the weights.
 */
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
  /** Reads one tensor as a contiguous (row-major) array. */
  load(ref: PthTensorRef): Promise<HostTensor>;
  close(): void;
}

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
            `${path}: zip entry "${e.name}" is compressed (method ${e.method}); torch.save ` +
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
        if (!e) throw new PickleError(`${path}: storage "${s.key}" is missing from the archive`);
        where.set(s.key, e);
      }
    } else {
      const legacy = await readLegacyPickles(f, size, path, globals, persistentLoad, seen);
      root = legacy.root;
      for (const s of seen.values()) {
        const at = legacy.storages.get(s.key);
        if (!at) throw new PickleError(`${path}: storage "${s.key}" is missing from the file`);
        where.set(s.key, at);
      }
    }
    for (const s of seen.values()) {
      const have = where.get(s.key)!.size, want = s.numel * ITEM_SIZE[s.dtype];
      if (have !== want) {
        throw new PickleError(
          `${path}: storage "${s.key}" holds ${have} bytes, the pickle says ${s.numel} ` +
            `${s.dtype} elements (${want} bytes)`,
        );
      }
    }
    return {
      file: path,
      root,
      load: (ref) => loadTensor(f, where.get(ref.storage.key)!.dataStart, ref, path),
      close: () => f.close(),
    };
  } catch (err) {
    f.close();
    throw err;
  }
}

/** Reads a tensor; a view that is not row-major contiguous is gathered into a contiguous copy. */
async function loadTensor(
  f: Deno.FsFile,
  dataStart: number,
  ref: PthTensorRef,
  file: string,
): Promise<HostTensor> {
  const { dtype } = ref.storage;
  const { shape, stride, offset } = ref;
  const isz = ITEM_SIZE[dtype];
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
export function flattenTensors(value: unknown, prefix = ""): Map<string, PthTensorRef> {
  const out = new Map<string, PthTensorRef>();
  let budget = 1_000_000;
  const walk = (v: unknown, path: string, depth: number) => {
    if (--budget < 0) throw new PickleError(`checkpoint structure has over a million entries`);
    if (depth > 64) throw new PickleError(`checkpoint nests deeper than 64 levels at "${path}"`);
    if (isTensorRef(v)) {
      out.set(path, v);
    } else if (v instanceof Map || Array.isArray(v)) {
      const items = v instanceof Map ? [...v] : v.map((x, i) => [i, x]);
      for (const [k, x] of items) walk(x, path ? `${path}.${k}` : String(k), depth + 1);
    }
  };
  walk(value, prefix, 0);
  return out;
}

/** Loads the given tensors, in the map's order, closing the archive when done (or on error). */
export async function loadTensors(archive: PthArchive, refs: Map<string, PthTensorRef>) {
  const out = new Map<string, HostTensor>();
  try {
    for (const [name, ref] of refs) out.set(name, await archive.load(ref));
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
    refs = flattenTensors(archive.root);
  } catch (err) {
    archive.close();
    throw err instanceof PickleError ? new PickleError(`${path}: ${err.message}`) : err;
  }
  return loadTensors(archive, refs);
}
