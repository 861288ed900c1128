/** Per-class volumes of a label map in millilitres: voxel counts times the voxel volume of the scan's grid. */
import type { NiftiVolume } from "../io/nifti.ts";
import { CLASS_NAMES } from "../stages/volume.ts";

/** NIfTI xyzt_units spatial codes (the low 3 bits) to millimetres; 0 (unknown) is taken as mm. */
const UNIT_MM: Record<number, number> = { 0: 1, 1: 1000, 2: 1, 3: 0.001 };

export interface LabelVolumes {
  /** Voxels per label 0..3. */
  voxels: number[];
  /** One voxel's volume in millilitres. */
  voxel_ml: number;
  /** Foreground classes in millilitres. */
  volumes_ml: Record<string, number>;
}

/**
 * A voxel's volume in mm^3: |det| of the voxel-to-world matrix (right for sheared or oblique grids, where
 * pixdim alone is not), falling back to the pixdim product for a 2D scan whose third axis has no extent.
 */
export function voxelMm3(scan: Pick<NiftiVolume, "affine" | "pixdim" | "geometry">): number {
  const [a, b, c] = scan.affine;
  const det = a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) +
    a[2] * (b[0] * c[1] - b[1] * c[0]);
  const unit = UNIT_MM[scan.geometry.xyztUnits & 7] ?? 1;
  const raw = Math.abs(det) > 0
    ? Math.abs(det)
    : Math.abs((scan.pixdim[0] ?? 1) * (scan.pixdim[1] ?? 1) * (scan.pixdim[2] || 1));
  return raw * unit ** 3;
}

/** Counts and millilitres per class of labels (values 0..CLASS_NAMES.length). */
export function labelVolumes(
  labels: Uint8Array,
  scan: Pick<NiftiVolume, "affine" | "pixdim" | "geometry">,
): LabelVolumes {
  const voxels = new Array<number>(CLASS_NAMES.length + 1).fill(0);
  for (const v of labels) voxels[v]++;
  const voxelMl = voxelMm3(scan) / 1000;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    voxels,
    voxel_ml: voxelMl,
    volumes_ml: Object.fromEntries(CLASS_NAMES.map((name, i) => [name, round(voxels[i + 1] * voxelMl)])),
  };
}
