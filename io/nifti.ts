/** NIfTI-1/2 input and output: one import for readers, writers and geometry helpers. */
export { NiftiError } from "./nifti_error.ts";
export { bestAffine, geometryFromAffine, qformAffine } from "./nifti_affine.ts";
export type { NiftiGeometry } from "./nifti_affine.ts";
export { DATATYPES, MAX_VOXELS, parseNiftiHeader } from "./nifti_header.ts";
export type { NiftiHeader } from "./nifti_header.ts";
export {
  decodeNifti,
  decodeNiftiInfo,
  DEFAULT_MAX_BYTES,
  readNifti,
  readNiftiBytes,
  readNiftiInfo,
} from "./nifti_read.ts";
export type { NiftiInfo, NiftiStats, NiftiVolume, ReadNiftiOptions } from "./nifti_read.ts";
export { encodeNifti, writeNifti } from "./nifti_write.ts";
