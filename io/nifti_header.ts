/**
 * NIfTI-1/2 header parsing and validation, done before any voxel buffer is allocated so that a hostile
 * header (absurd dims, bad offsets) fails fast with a NiftiError instead of exhausting memory.
 *
 * nifti-reader-js reads the plain fields of both formats correctly in either byte order, so it does that.
 * What it gets wrong or skips is hand-written here: it never checks magic, datatype, dims or vox_offset; it
 * drops srow_* of a NIfTI-1 file whenever it prefers the qform; it joins NIfTI-2 int64 halves with a signed
 * low word in big-endian files; and given the whole file it walks extension chains that a crafted esize can
 * send backwards forever. It is therefore only ever handed an exact-size copy of the header.
 */
import { NIFTI1, NIFTI2 } from "nifti-reader-js";
import type { NiftiGeometry } from "./nifti_affine.ts";
import { NiftiError } from "./nifti_error.ts";

/** Voxel types this reader decodes, by NIfTI datatype code. */
export const DATATYPES: Record<number, { name: string; bytes: number }> = {
  2: { name: "uint8", bytes: 1 },
  4: { name: "int16", bytes: 2 },
  8: { name: "int32", bytes: 4 },
  16: { name: "float32", bytes: 4 },
  64: { name: "float64", bytes: 8 },
  256: { name: "int8", bytes: 1 },
  512: { name: "uint16", bytes: 2 },
  768: { name: "uint32", bytes: 4 },
  1024: { name: "int64", bytes: 8 },
};

/** Known codes we refuse, so the message can say what the file holds. */
const UNSUPPORTED: Record<number, string> = {
  0: "unknown",
  1: "binary",
  32: "complex64",
  128: "rgb24",
  1280: "uint64",
  1536: "float128",
  1792: "complex128",
  2048: "complex256",
  2304: "rgba32",
};

/** More voxels than this is refused outright (4 GiB as float32), whatever the file size. */
export const MAX_VOXELS = 2 ** 30;

/**
 * Header fields after validation, with the fixes nibabel applies on load (see pixdim; xform codes outside
 * 0..5 become 0, as nibabel resets unknown codes). The geometry fields are NiftiGeometry's.
 */
export interface NiftiHeader extends NiftiGeometry {
  format: "nifti1" | "nifti2";
  littleEndian: boolean;
  headerSize: number;
  /** Used dims only (dim[1..dim[0]]), x fastest. */
  dims: number[];
  datatypeCode: number;
  datatype: string;
  bytesPerVoxel: number;
  /** All 8 entries; pixdim[1..3] made positive (0 -> 1) and qfac forced to +-1, as nibabel does on load. */
  pixdim: number[];
  voxOffset: number;
  /** Effective scaling: slope 0 or non-finite means none (1, 0). */
  sclSlope: number;
  sclInter: number;
  voxelCount: number;
  dataBytes: number;
}

/** Reads the header at the start of bytes (the whole file or at least its first 540 bytes). */
export function parseNiftiHeader(bytes: Uint8Array, file: string): NiftiHeader {
  if (bytes.length === 0) throw new NiftiError(file, "file", "is empty");
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    throw new NiftiError(file, "file", "is gzip-compressed data; decompress it first (readNifti does)");
  }
  if (bytes.length < 4) throw new NiftiError(file, "sizeof_hdr", `file has only ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = view.getInt32(0, true), be = view.getInt32(0, false);
  const size = le === 348 || le === 540 ? le : be === 348 || be === 540 ? be : 0;
  if (size === 0) {
    throw new NiftiError(
      file,
      "sizeof_hdr",
      `${le} is neither 348 (NIfTI-1) nor 540 (NIfTI-2): not a NIfTI file`,
    );
  }
  const format = size === 348 ? "nifti1" : "nifti2";
  if (bytes.length < size) {
    throw new NiftiError(
      file,
      "header",
      `file has ${bytes.length} bytes, a ${format} header needs ${size} (truncated)`,
    );
  }
  const littleEndian = size === le;
  checkMagic(bytes, file, format);
  // An exact-size copy: the library then cannot reach (or loop over) extension bytes.
  const copy = bytes.slice(0, size).buffer;
  const raw = format === "nifti1" ? new NIFTI1() : new NIFTI2();
  raw.readHeader(copy);
  let dim: number[], voxOffset: number, srow: number[][];
  if (format === "nifti1") {
    dim = raw.dims.slice(0, 8);
    voxOffset = raw.vox_offset;
    srow = [0, 1, 2].map((r) =>
      [0, 1, 2, 3].map((c) => view.getFloat32(280 + (r * 4 + c) * 4, littleEndian))
    );
  } else {
    dim = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => int64(view, 16 + i * 8, littleEndian));
    voxOffset = int64(view, 168, littleEndian);
    srow = raw.affine.slice(0, 3).map((row: number[]) => row.slice(0, 4));
  }
  const datatypeCode = raw.datatypeCode;
  const type = DATATYPES[datatypeCode];
  if (!type) {
    const known = UNSUPPORTED[datatypeCode];
    throw new NiftiError(
      file,
      "datatype",
      `code ${datatypeCode}${known ? ` (${known})` : ""} is not supported ` +
        `(supported: ${Object.values(DATATYPES).map((t) => t.name).join(", ")})`,
    );
  }
  const dims = checkDims(dim, file);
  const voxelCount = dims.reduce((a, b) => a * b, 1);
  const dataBytes = voxelCount * type.bytes;
  if (
    !Number.isInteger(voxOffset) || voxOffset < size + 4 || voxOffset > Number.MAX_SAFE_INTEGER - dataBytes
  ) {
    throw new NiftiError(
      file,
      "vox_offset",
      `${voxOffset} is not a valid data offset (at least ${size + 4})`,
    );
  }
  const pixdim = fixPixdim(raw.pixDims.slice(0, 8), dims.length, file);
  let sclSlope = raw.scl_slope, sclInter = raw.scl_inter;
  if (sclSlope === 0 || !Number.isFinite(sclSlope)) {
    sclSlope = 1;
    sclInter = 0;
  } else if (!Number.isFinite(sclInter)) {
    throw new NiftiError(file, "scl_inter", `${sclInter} is not finite (scl_slope is ${sclSlope})`);
  }
  return {
    format,
    littleEndian,
    headerSize: size,
    dims,
    datatypeCode,
    datatype: type.name,
    bytesPerVoxel: type.bytes,
    pixdim,
    voxOffset,
    sclSlope,
    sclInter,
    qformCode: xformCode(raw.qform_code),
    sformCode: xformCode(raw.sform_code),
    quatern: [raw.quatern_b, raw.quatern_c, raw.quatern_d],
    qoffset: [raw.qoffset_x, raw.qoffset_y, raw.qoffset_z],
    srow,
    xyztUnits: raw.xyzt_units,
    voxelCount,
    dataBytes,
  };
}

function checkMagic(bytes: Uint8Array, file: string, format: "nifti1" | "nifti2") {
  const at = format === "nifti1" ? 344 : 4;
  const magic = bytes.subarray(at, at + 4);
  const text = JSON.stringify(String.fromCharCode(...magic).replace(/\0+$/, ""));
  const want = format === "nifti1" ? "n+1" : "n+2";
  if (magic[0] === 0x6e && magic[1] === 0x69 && magic[2] === want.charCodeAt(2) && magic[3] === 0) {
    throw new NiftiError(
      file,
      "magic",
      `${text} marks a .hdr/.img pair, which is not supported; use a single .nii`,
    );
  }
  if (magic[0] !== 0x6e || magic[1] !== 0x2b || magic[2] !== want.charCodeAt(2) || magic[3] !== 0) {
    throw new NiftiError(file, "magic", `${text} is not "${want}"`);
  }
  if (format === "nifti2") {
    const eol = [...bytes.subarray(8, 12)].join(",");
    if (eol !== "13,10,26,10" && eol !== "0,0,0,0") {
      throw new NiftiError(
        file,
        "magic",
        `end-of-line check bytes are ${eol}, not 13,10,26,10: file was ` +
          "altered by a text-mode transfer",
      );
    }
  }
}

/** A NIfTI-2 int64 field, exactly (the library's conversion breaks above 2^31 in big-endian files). */
function int64(view: DataView, at: number, littleEndian: boolean): number {
  const v = view.getBigInt64(at, littleEndian);
  return v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(v);
}

function checkDims(dim: number[], file: string): number[] {
  const n = dim[0];
  if (!(Number.isInteger(n) && n >= 1 && n <= 7)) {
    throw new NiftiError(file, "dim[0]", `${n} is not a dimension count between 1 and 7`);
  }
  const dims = dim.slice(1, n + 1);
  let count = 1;
  for (const [i, d] of dims.entries()) {
    if (!(Number.isInteger(d) && d >= 1)) {
      throw new NiftiError(file, `dim[${i + 1}]`, `${d} is not a positive size`);
    }
    count *= d;
    if (count > MAX_VOXELS) {
      throw new NiftiError(file, "dim", `[${dims.join(", ")}] is more than ${MAX_VOXELS} voxels`);
    }
  }
  return dims;
}

/** nibabel's load-time fixes (zero spacing -> 1, negative -> abs, qfac -> +-1), plus a finiteness check. */
function fixPixdim(pixdim: number[], used: number, file: string): number[] {
  for (let i = 1; i <= Math.max(3, used); i++) {
    if (!Number.isFinite(pixdim[i])) throw new NiftiError(file, `pixdim[${i}]`, `${pixdim[i]} is not finite`);
  }
  const out = pixdim.map((p, i) => (i >= 1 && i <= 3 ? (p === 0 ? 1 : Math.abs(p)) : p));
  out[0] = out[0] === -1 ? -1 : 1;
  return out;
}

function xformCode(code: number): number {
  return Number.isInteger(code) && code >= 0 && code <= 5 ? code : 0;
}
