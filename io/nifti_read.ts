/**
 * NIfTI-1/2 reading (.nii and .nii.gz, either byte order) into scaled float32 volumes, validating the header
 * before any voxel buffer exists and reading no more of the file than the header accounts for.
 */
import { bestAffine, geometryFromHeader, type NiftiGeometry } from "./nifti_affine.ts";
import { NiftiError } from "./nifti_error.ts";
import { type NiftiHeader, parseNiftiHeader } from "./nifti_header.ts";
import { gunzip } from "./gunzip.ts";
import { readInto } from "./file_io.ts";
import { InputError, openInput } from "./safe_open.ts";

/**
 * Computed in float64 from the scaled values (as nibabel's get_fdata) over the finite voxels only, so one
 * infinite voxel cannot turn min, max and mean into values JSON cannot hold; the NaN, +Infinity and -Infinity
 * voxels are counted instead. With no finite voxel, min, max and mean are NaN.
 */
export interface NiftiStats {
  min: number;
  max: number;
  mean: number;
  nonFinite: { nan: number; inf: number; negInf: number };
}

export interface NiftiVolume {
  file: string;
  format: "nifti1" | "nifti2";
  /** Used dims only, x fastest, e.g. [216, 256, 10]. */
  dims: number[];
  /** Used dims only. */
  pixdim: number[];
  /** "int16", "uint8", ... (the stored type, before scaling). */
  datatype: string;
  /** 4 x 4, as nibabel's img.affine. */
  affine: number[][];
  /** Effective scaling (1 and 0 when the file has none). */
  sclSlope: number;
  sclInter: number;
  /** Scaled values, x fastest, length prod(dims). */
  data: Float32Array;
  geometry: NiftiGeometry;
  stats: NiftiStats;
}

/** Everything but the voxels: what `info` prints, read without a float copy of the volume. */
export type NiftiInfo = Omit<NiftiVolume, "data">;

export interface ReadNiftiOptions {
  /** Largest decompressed file accepted (default 1 GiB). */
  maxBytes?: number;
}

export const DEFAULT_MAX_BYTES = 2 ** 30;

/** Bytes a file must hold for its header: vox_offset plus the voxel data (validates the header). */
export function niftiByteLength(prefix: Uint8Array, file: string): number {
  const h = parseNiftiHeader(prefix, file);
  return h.voxOffset + h.dataBytes;
}

/** Decodes an uncompressed NIfTI file held in memory. */
export function decodeNifti(bytes: Uint8Array, file: string): NiftiVolume {
  return decode(bytes, file, true) as NiftiVolume;
}

/** Like decodeNifti, but only the stats of the voxels: no float32 copy of the volume is made. */
export function decodeNiftiInfo(bytes: Uint8Array, file: string): NiftiInfo {
  return decode(bytes, file, false);
}

function decode(bytes: Uint8Array, file: string, withData: boolean): NiftiInfo & { data?: Float32Array } {
  const h = parseNiftiHeader(bytes, file);
  checkLength(h, bytes.length, file);
  const geometry = geometryFromHeader(h);
  const affine = bestAffine(geometry, h.dims, file);
  const { data, stats } = scaleVoxels(h, bytes, withData);
  return {
    file,
    format: h.format,
    dims: h.dims,
    pixdim: h.pixdim.slice(1, h.dims.length + 1),
    datatype: h.datatype,
    affine,
    sclSlope: h.sclSlope,
    sclInter: h.sclInter,
    ...(data ? { data } : {}),
    geometry,
    stats,
  };
}

/** Decodes NIfTI bytes that may be gzip-compressed (an upload, say). */
export async function readNiftiBytes(bytes: Uint8Array, file: string, opts: ReadNiftiOptions = {}) {
  return decodeNifti(await gunzipped(bytes, file, opts), file);
}

/** The bytes, decompressed into one buffer of the header's size when they are gzip. */
async function gunzipped(bytes: Uint8Array, file: string, opts: ReadNiftiOptions): Promise<Uint8Array> {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    bytes = await gunzip(bytes, file, {
      maxBytes,
      needed: (p) => niftiByteLength(p, file),
      prefixBytes: 540,
    });
  }
  return bytes;
}

/** Reads a .nii or .nii.gz file (gzip is detected from the content, not the name). */
export async function readNifti(path: string, opts: ReadNiftiOptions = {}): Promise<NiftiVolume> {
  return decodeNifti(await readDecompressed(path, opts), path);
}

/**
 * Reads a NIfTI file's header, geometry and voxel stats without the float32 volume, so memory stays near the
 * stored voxels' own size (`info` on a 1 GB uint8 volume needs about 1 GB, not 5).
 */
export async function readNiftiInfo(path: string, opts: ReadNiftiOptions = {}): Promise<NiftiInfo> {
  return decodeNiftiInfo(await readDecompressed(path, opts), path);
}

/** The file's bytes (decompressed), through the safe-open helper: a FIFO or device is refused, not opened. */
async function readDecompressed(path: string, opts: ReadNiftiOptions): Promise<Uint8Array> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  let f: Deno.FsFile;
  try {
    f = await openInput(path);
  } catch (err) {
    throw fileError(path, err);
  }
  try {
    const info = await f.stat(); // a regular file: openInput refused anything else
    const head = new Uint8Array(Math.min(info.size, 540));
    const prefix = head.subarray(0, await readInto(f, head));
    const gz = prefix.length >= 2 && prefix[0] === 0x1f && prefix[1] === 0x8b;
    let need = info.size;
    if (!gz) {
      const h = parseNiftiHeader(prefix, path);
      checkLength(h, info.size, path);
      need = h.voxOffset + h.dataBytes;
    }
    if (need > maxBytes) {
      throw new NiftiError(path, "file", `needs ${need} bytes, over the ${maxBytes}-byte limit`);
    }
    const bytes = new Uint8Array(need);
    bytes.set(prefix);
    if (prefix.length + await readInto(f, bytes.subarray(prefix.length)) < need) {
      throw new NiftiError(path, "file", "changed size while being read");
    }
    return await gunzipped(bytes, path, { maxBytes });
  } catch (err) {
    throw err instanceof NiftiError ? err : fileError(path, err);
  } finally {
    f.close();
  }
}

/** A file shorter than vox_offset plus the voxel bytes its header declares. */
function checkLength(h: NiftiHeader, length: number, file: string) {
  const available = length - h.voxOffset;
  if (available < h.dataBytes) {
    throw new NiftiError(
      file,
      "data",
      `${Math.max(available, 0)} bytes after vox_offset ${h.voxOffset}, but ` +
        `dims [${h.dims.join(", ")}] of ${h.datatype} need ${h.dataBytes} (truncated file?)`,
    );
  }
}

/** An InputError from the safe-open helper as a NiftiError (`<file>: file: <problem>`), the reader's one type. */
function fileError(path: string, err: unknown): Error {
  if (err instanceof InputError && err.message.startsWith(`${path}: `)) {
    return new NiftiError(path, "file", err.message.slice(path.length + 2));
  }
  return err as Error;
}

type RawArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array;

const VIEWS: Record<string, new (b: ArrayBuffer, o: number, n: number) => RawArray> = {
  uint8: Uint8Array,
  int8: Int8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
};

/** Raw voxels as a typed array in host (little-endian) order; copies only when unaligned or big-endian. */
function rawVoxels(h: NiftiHeader, bytes: Uint8Array): RawArray {
  const start = bytes.byteOffset + h.voxOffset;
  if (h.littleEndian && start % h.bytesPerVoxel === 0) {
    return new VIEWS[h.datatype](bytes.buffer as ArrayBuffer, start, h.voxelCount);
  }
  const copy = bytes.slice(h.voxOffset, h.voxOffset + h.dataBytes);
  const w = h.bytesPerVoxel;
  if (!h.littleEndian && w > 1) {
    for (let i = 0; i < copy.length; i += w) {
      for (let a = i, b = i + w - 1; a < b; a++, b--) [copy[a], copy[b]] = [copy[b], copy[a]];
    }
  }
  return new VIEWS[h.datatype](copy.buffer, 0, h.voxelCount);
}

/**
 * Applies scl_slope/scl_inter into float32 (when withData) and gathers float64 stats in the same pass,
 * reading the stored typed array directly so the stats alone cost no copy.
 */
function scaleVoxels(
  h: NiftiHeader,
  bytes: Uint8Array,
  withData: boolean,
): { data?: Float32Array; stats: NiftiStats } {
  const raw = rawVoxels(h, bytes);
  const n = h.voxelCount, slope = h.sclSlope, inter = h.sclInter;
  const data = withData ? new Float32Array(n) : undefined;
  let min = Infinity, max = -Infinity, total = 0, block = 0, count = 0;
  let nan = 0, inf = 0, negInf = 0;
  const big = raw instanceof BigInt64Array;
  for (let i = 0; i < n; i++) {
    const v = (big ? Number((raw as BigInt64Array)[i]) : (raw as Float64Array)[i]) * slope + inter;
    if (data) data[i] = v;
    if (v !== v) {
      nan++;
      continue;
    }
    if (v === Infinity || v === -Infinity) {
      if (v > 0) inf++;
      else negInf++;
      continue;
    }
    if (v < min) min = v;
    if (v > max) max = v;
    block += v;
    if (++count % 4096 === 0) {
      total += block; // blockwise sums keep the mean close to numpy's pairwise summation
      block = 0;
    }
  }
  total += block;
  const nonFinite = { nan, inf, negInf };
  const stats = count
    ? { min, max, mean: total / count, nonFinite }
    : { min: NaN, max: NaN, mean: NaN, nonFinite };
  return { data, stats };
}
