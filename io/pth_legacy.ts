/**
 * The legacy (pre-1.6, or `_use_new_zipfile_serialization=False`) torch.save layout: five pickles back to
 * back (magic number, protocol, sys info, the object, the storage keys), then each storage as an int64
 * element count followed by its raw bytes. Only the pickles are read here; storages are located, not loaded.
 */
import { quoted } from "../errors.ts";
import { type GlobalHandler, PickleError, unpickle } from "./pickle.ts";
import { readFully } from "./file_io.ts";
import { ITEM_SIZE } from "./host_tensor.ts";
import type { PthStorage } from "./torch_globals.ts";

const MAGIC = 0x1950a86a20f9469cfc6cn;
const PROTOCOL = 1001;

/** Dictionaries and lists only: the header pickles never need a global. */
const NO_GLOBALS = new Map<string, GlobalHandler>();

export interface LegacyLayout {
  root: unknown;
  storages: Map<string, { dataStart: number; size: number }>;
}

/** Parses the pickles from the start of the file, reading more of it only while a pickle runs past the buffer. */
export async function readLegacyPickles(
  f: Deno.FsFile,
  size: number,
  file: string,
  globals: ReadonlyMap<string, GlobalHandler>,
  persistentLoad: (pid: unknown) => unknown,
  seen: Map<string, PthStorage>,
): Promise<LegacyLayout> {
  const notTorch = () =>
    new PickleError(`${file}: not a PyTorch checkpoint (neither a zip archive nor a legacy pickle)`);
  if (size < 2) throw notTorch();
  for (let chunk = Math.min(size, 1 << 20);; chunk = Math.min(size, chunk * 4)) {
    const bytes = new Uint8Array(chunk);
    await readFully(f, 0, bytes, file, PickleError);
    if (bytes[0] !== 0x80) throw notTorch();
    try {
      seen.clear();
      let at = 0;
      const next = (withTorch: boolean) => {
        const r = unpickle(bytes, {
          file,
          start: at,
          globals: withTorch ? globals : NO_GLOBALS,
          persistentLoad: withTorch ? persistentLoad : undefined,
        });
        at = r.end;
        return r.value;
      };
      if (next(false) !== MAGIC) throw notTorch();
      if (next(false) !== PROTOCOL) {
        throw new PickleError(`${file}: unsupported legacy torch protocol version`);
      }
      const info = next(false);
      if (info instanceof Map && info.get("little_endian") === false) {
        throw new PickleError(`${file}: big-endian checkpoint`);
      }
      const root = next(true);
      const keys = next(false);
      if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string" && seen.has(k))) {
        throw new PickleError(`${file}: legacy storage key list does not match the pickle`);
      }
      return { root, storages: await locate(f, size, file, at, keys as string[], seen) };
    } catch (err) {
      if (!(err instanceof PickleError && err.truncated && chunk < size)) throw err;
    }
  }
}

/** Walks the storage records after the pickles, checking each count against the pickle and the file size. */
async function locate(
  f: Deno.FsFile,
  size: number,
  file: string,
  pos: number,
  keys: string[],
  seen: Map<string, PthStorage>,
) {
  const storages = new Map<string, { dataStart: number; size: number }>();
  const head = new Uint8Array(8);
  for (const key of keys) {
    const s = seen.get(key)!;
    if (pos + 8 > size) {
      throw new PickleError(`${file}: storage ${quoted(key)} is missing (file ends at byte ${size})`);
    }
    await readFully(f, pos, head, file, PickleError);
    const n = new DataView(head.buffer).getBigInt64(0, true);
    if (n !== BigInt(s.numel)) {
      throw new PickleError(
        `${file}: storage ${quoted(key)} record holds ${n} elements, the pickle says ${s.numel}`,
      );
    }
    const bytes = s.numel * ITEM_SIZE[s.dtype];
    if (pos + 8 + bytes > size) {
      throw new PickleError(
        `${file}: storage ${quoted(key)} (${bytes} bytes at ${pos + 8}) runs past the end of the file`,
      );
    }
    storages.set(key, { dataStart: pos + 8, size: bytes });
    pos += 8 + bytes;
  }
  return storages;
}
