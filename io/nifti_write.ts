/**
 * NIfTI-1 writing for label maps and images, copying a reference geometry field for field (both transforms,
 * their codes, qfac, units) so a predicted mask overlays its scan exactly in ITK-SNAP, Slicer, niivue and
 * nibabel, whichever transform each of them prefers.
 */
import { NIFTI1 } from "nifti-reader-js";
import type { NiftiGeometry } from "./nifti_affine.ts";
import { NiftiError } from "./nifti_error.ts";
import { type OutputOptions, writeOutputBytes } from "./safe_output.ts";

/** The header block plus the 4 extension-flag bytes: where the voxels start. */
const VOX_OFFSET = 352;

function datatypeOf(data: Uint8Array | Int16Array | Float32Array): { code: number; bits: number } {
  if (data instanceof Uint8Array) return { code: NIFTI1.TYPE_UINT8, bits: 8 };
  if (data instanceof Int16Array) return { code: NIFTI1.TYPE_INT16, bits: 16 };
  if (data instanceof Float32Array) return { code: NIFTI1.TYPE_FLOAT32, bits: 32 };
  throw new TypeError("writeNifti: data must be a Uint8Array, Int16Array or Float32Array");
}

function checkInputs(file: string, data: ArrayLike<number>, dims: number[], g: NiftiGeometry) {
  if (dims.length < 1 || dims.length > 7 || !dims.every((d) => Number.isInteger(d) && d >= 1 && d <= 32767)) {
    throw new NiftiError(file, "dim", `[${dims.join(", ")}] must be 1 to 7 sizes in 1..32767`);
  }
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new NiftiError(
      file,
      "data",
      `has ${data.length} values but dims [${dims.join(", ")}] hold ${count}`,
    );
  }
  const numbers = [...g.pixdim, ...g.quatern, ...g.qoffset, ...g.srow.flat()];
  if (
    g.pixdim.length !== 8 || g.srow.length !== 3 || g.srow.some((r) => r.length !== 4) ||
    !numbers.every(Number.isFinite)
  ) {
    throw new NiftiError(file, "geometry", "needs 8 pixdim, 3 x 4 srow and finite numbers throughout");
  }
}

/** The file's bytes: a 352-byte little-endian NIfTI-1 header, then the voxels; gzip-compressed if asked. */
export async function encodeNifti(
  data: Uint8Array | Int16Array | Float32Array,
  dims: number[],
  geometry: NiftiGeometry,
  opts: { gzip?: boolean; file?: string } = {},
): Promise<Uint8Array> {
  const file = opts.file ?? "<output>";
  checkInputs(file, data, dims, geometry);
  const type = datatypeOf(data);
  const h = new NIFTI1();
  h.littleEndian = true;
  h.dims = [dims.length, ...dims, ...Array(7 - dims.length).fill(1)];
  h.datatypeCode = type.code;
  h.numBitsPerVoxel = type.bits;
  // Spacing beyond the written dims is meaningless here (a 3D mask of a 4D scan), so it becomes 1, as nibabel.
  h.pixDims = geometry.pixdim.map((p, i) => (i > Math.max(3, dims.length) ? 1 : p));
  h.pixDims[0] = geometry.pixdim[0] === -1 ? -1 : 1;
  h.vox_offset = VOX_OFFSET;
  h.scl_slope = 1;
  h.scl_inter = 0;
  h.xyzt_units = geometry.xyztUnits;
  h.qform_code = geometry.qformCode;
  h.sform_code = geometry.sformCode;
  [h.quatern_b, h.quatern_c, h.quatern_d] = geometry.quatern;
  [h.qoffset_x, h.qoffset_y, h.qoffset_z] = geometry.qoffset;
  h.affine = [...geometry.srow.map((r) => [...r]), [0, 0, 0, 1]]; // written as srow_x/y/z
  h.description = "sam-medseg";
  h.magic = "n+1";
  const header = new Uint8Array(h.toArrayBuffer(false));
  const voxels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength); // host order: little-endian
  const bytes = new Uint8Array(VOX_OFFSET + voxels.length);
  bytes.set(header.subarray(0, VOX_OFFSET));
  bytes.set(voxels, VOX_OFFSET);
  return opts.gzip ? await gzip(bytes) : bytes;
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Writes a NIfTI-1 file (.nii.gz when the path ends in .gz) through the safe-output helper: a temporary name in
 * the same directory, then a rename, so readers never see a partial file; a bad target or an I/O error is an
 * OutputError. out names the command's inputs (never overwritten) and the flag for messages.
 */
export async function writeNifti(
  path: string,
  data: Uint8Array | Int16Array | Float32Array,
  dims: number[],
  geometry: NiftiGeometry,
  out: OutputOptions = {},
): Promise<void> {
  const bytes = await encodeNifti(data, dims, geometry, { gzip: path.endsWith(".gz"), file: path });
  await writeOutputBytes(path, bytes, out);
}
