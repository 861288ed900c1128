/** The items that travel through the data stages: whole volumes from load, 2D slices after normalize. */

/** The foreground classes of ACDC, in label order (label 0 is background). */
export const CLASS_NAMES = ["RV", "Myo", "LV"] as const;
export type ClassName = typeof CLASS_NAMES[number];
/** Labels are 0..NUM_CLASSES-1: background, RV, Myo, LV. */
export const NUM_CLASSES = CLASS_NAMES.length + 1;

/** ED (end-diastole) or ES (end-systole); absent for generic pairs that do not say. */
export type Phase = "ED" | "ES";

/** One labelled 3D volume as read from disk, checked, on its original grid. */
export interface Volume {
  /** "patient001_frame01" (ACDC) or the file stem without .nii.gz (generic pairs). */
  id: string;
  /** Split unit: "patient001", or the stem before "_frame" for generic pairs. */
  patient: string;
  phase?: Phase;
  /** Dimensions as stored in the file (used dims, x fastest), as nibabel's shape. */
  dims: number[];
  /** [X, Y, Z]: dims padded with 1 to 3D. */
  shape: [number, number, number];
  /** Voxel size in mm along x, y, z. */
  spacing: [number, number, number];
  /** 4x4 voxel-to-world matrix of the image. */
  affine: number[][];
  image: Float32Array; // [Z, Y, X], scaled intensities
  label: Uint8Array; // [Z, Y, X], class indices
  /** Voxels per class 0..numClasses-1. */
  labelVoxels: number[];
  files: { image: string; label: string };
}

/** One 2D slice at model resolution, with what is needed to map predictions back to its volume. */
export interface SliceItem {
  /** "<volume id>_z<NN>". */
  id: string;
  volumeId: string;
  patient: string;
  phase?: Phase;
  /** Slice index in the volume (z). */
  z: number;
  /** Model grid. */
  height: number;
  width: number;
  channels: number;
  image: Float32Array; // [height, width, channels]
  label: Uint8Array; // [height, width]
  /** Original slice grid: rows = Y, columns = X of the volume. */
  originalHeight: number;
  originalWidth: number;
}

/** One evaluation volume: original grid (for per-frame metrics at full resolution) and model-grid slices. */
export interface EvalVolume {
  /** Image and label on the original grid, with spacing and affine. */
  volume: Volume;
  /** Every slice in z order at the model grid, unaugmented; `label` is the model-grid ground truth. */
  slices: SliceItem[];
  /** Model-grid predictions (one [S, S] map per slice, z order) back to the original grid: [Z, Y, X]. */
  toOriginal(labelMaps: Uint8Array[]): Uint8Array;
}

/** A patient's evaluation volumes, ED first then ES (docs/methods.md 5 stacks them into one pseudo-volume). */
export interface EvalPatient {
  patient: string;
  volumes: EvalVolume[];
}
