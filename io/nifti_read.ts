/**
 * NIfTI-1/2 reading (.nii and .nii.gz, either byte order) into scaled float32 volumes, validating the header
 * before any voxel buffer exists and reading no more of the file than the header accounts for.
 */
import { bestAffine, geometryFromHeader, type NiftiGeometry } from "./nifti_affine.ts";
import { NiftiError } from "./nifti_error.ts";
import { type NiftiHeader, parseNiftiHeader } from "./nifti_header.ts";
import { gunzip } from "./gunzip.ts";

/** Computed in float64 from the stored values (as nibabel's get_fdata), NaNs skipped. */
export interface NiftiStats {
  min: number;
  max: number;
  mean: number;
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
  const h = parseNiftiHeader(bytes, file);
  checkLength(h, bytes.length, file);
  const geometry = geometryFromHeader(h);
  const affine = bestAffine(geometry, h.dims, file);
  const { data, stats } = scaleVoxels(h, bytes);
  return {
    file,
    format: h.format,
    dims: h.dims,
    pixdim: h.pixdim.slice(1, h.dims.length + 1),
    datatype: h.datatype,
    affine,
    sclSlope: h.sclSlope,
    sclInter: h.sclInter,
    data,
    geometry,
    stats,
  };
}

/** Decodes NIfTI bytes that may be gzip-compressed (an upload, say). */
export async function readNiftiBytes(bytes: Uint8Array, file: string, opts: ReadNiftiOptions = {}) {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    bytes = await gunzip(bytes, file, {
      maxBytes,
      needed: (p) => niftiByteLength(p, file),
      prefixBytes: 540,
    });
  }
  return decodeNifti(bytes, file);
}

/** Reads a .nii or .nii.gz file (gzip is detected from the content, not the name). */
export async function readNifti(path: string, opts: ReadNiftiOptions = {}): Promise<NiftiVolume> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true });
  } catch (err) {
    throw fileError(path, err);
  }
  try {
    const info = await f.stat();
    if (!info.isFile) throw new NiftiError(path, "file", "is not a regular file");
    const prefix = await readUpTo(f, Math.min(info.size, 540));
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
    const rest = await readUpTo(f, need - prefix.length);
    bytes.set(rest, prefix.length);
    if (prefix.length + rest.length < need) {
      throw new NiftiError(path, "file", "changed size while being read");
    }
    return await readNiftiBytes(bytes, path, { maxBytes });
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

function fileError(path: string, err: unknown): Error {
  if (err instanceof Deno.errors.NotFound) return new NiftiError(path, "file", "not found");
  if (err instanceof Deno.errors.PermissionDenied) return new NiftiError(path, "file", "permission denied");
  if (err instanceof Deno.errors.IsADirectory) return new NiftiError(path, "file", "is a directory");
  return err as Error;
}

async function readUpTo(f: Deno.FsFile, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let at = 0;
  while (at < n) {
    const got = await f.read(buf.subarray(at));
    if (got === null) break;
    at += got;
  }
  return buf.subarray(0, at);
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

/** Applies scl_slope/scl_inter into float32 and gathers float64 stats in the same pass. */
function scaleVoxels(h: NiftiHeader, bytes: Uint8Array): { data: Float32Array; stats: NiftiStats } {
  const raw = rawVoxels(h, bytes);
  const n = h.voxelCount, slope = h.sclSlope, inter = h.sclInter;
  const data = new Float32Array(n);
  let min = Infinity, max = -Infinity, total = 0, block = 0, count = 0;
  const big = raw instanceof BigInt64Array;
  for (let i = 0; i < n; i++) {
    const v = (big ? Number((raw as BigInt64Array)[i]) : (raw as Float64Array)[i]) * slope + inter;
    data[i] = v;
    if (v !== v) continue;
    if (v < min) min = v;
    if (v > max) max = v;
    block += v;
    if (++count % 4096 === 0) {
      total += block; // blockwise sums keep the mean close to numpy's pairwise summation
      block = 0;
    }
  }
  total += block;
  const stats = count ? { min, max, mean: total / count } : { min: NaN, max: NaN, mean: NaN };
  return { data, stats };
}
