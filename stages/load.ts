/**
 * Reads one case's image and label NIfTI files and checks them (same grid, integer labels within the classes,
 * finite voxels) before anything trains on them; the --on-bad-case policy decides whether a failure stops the
 * run (exit 2 naming the file) or skips the case with a message.
 */
import { readNifti } from "../io/nifti.ts";
import { NiftiError, type NiftiVolume } from "../io/nifti.ts";
import { DataError } from "../errors.ts";
import type { Stage } from "./pipe.ts";
import type { BadCase, CaseFiles } from "./acdc_layout.ts";
import type { Volume } from "./volume.ts";

export type OnBadCase = "fail" | "skip";

export interface LoadOptions {
  /** Labels must be integers in 0..numClasses-1 (ACDC: 4). */
  numClasses: number;
}

/** Padded to 3 dims; more than 3 used dims (unless the extra ones are 1) is not a single frame. */
function shape3(v: NiftiVolume): [number, number, number] {
  const d = v.dims;
  if (d.length > 3 && d.slice(3).some((n) => n !== 1)) {
    throw new DataError(
      `${v.file}: dims [${d.join(", ")}]: expected one 3D frame, not a ${d.length}D series`,
    );
  }
  return [d[0] ?? 1, d[1] ?? 1, d[2] ?? 1];
}

function voxel(i: number, [X, Y]: number[]): string {
  return `(${i % X}, ${Math.floor(i / X) % Y}, ${Math.floor(i / (X * Y))})`;
}

/** Same grid: dims exactly; voxel size and affine up to float32 rounding of what other tools write. */
function checkSameGrid(img: NiftiVolume, lab: NiftiVolume, shape: number[], labShape: number[]): void {
  if (shape.join() !== labShape.join()) {
    throw new DataError(
      `${lab.file}: dims [${lab.dims.join(", ")}] differ from the image's [${img.dims.join(", ")}]`,
    );
  }
  for (let k = 0; k < Math.min(3, img.pixdim.length, lab.pixdim.length); k++) {
    const a = img.pixdim[k];
    const b = lab.pixdim[k];
    if (Math.abs(a - b) > 1e-4 * Math.max(1, Math.abs(a))) {
      throw new DataError(
        `${lab.file}: voxel size [${lab.pixdim.slice(0, 3).join(", ")}] differs from the ` +
          `image's [${img.pixdim.slice(0, 3).join(", ")}]`,
      );
    }
  }
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 4; c++) {
      const a = img.affine[r][c];
      const b = lab.affine[r][c];
      if (Math.abs(a - b) > 1e-3 * Math.max(1, Math.abs(a))) {
        throw new DataError(
          `${lab.file}: affine differs from the image's (row ${r}, column ${c}: ${b} vs ${a}); ` +
            `the label is not on the image's grid`,
        );
      }
    }
  }
}

/** Reads and checks one case; throws DataError or NiftiError (both name the file) for a bad case. */
export async function loadVolume(c: CaseFiles, opts: LoadOptions): Promise<Volume> {
  const img = await readNifti(c.image);
  const shape = shape3(img);
  const lab = await readNifti(c.label);
  checkSameGrid(img, lab, shape, shape3(lab));
  const n = img.data.length;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(img.data[i])) {
      let bad = 0;
      for (let j = i; j < n; j++) if (!Number.isFinite(img.data[j])) bad++;
      throw new DataError(`${c.image}: ${bad} voxel(s) are NaN or infinite, first at ${voxel(i, shape)}`);
    }
  }
  const label = new Uint8Array(n); // [Z, Y, X]
  const counts = new Array<number>(opts.numClasses).fill(0);
  for (let i = 0; i < n; i++) {
    const v = lab.data[i];
    if (!(Number.isInteger(v) && v >= 0 && v < opts.numClasses)) {
      const what = Number.isInteger(v) ? `is not a class 0..${opts.numClasses - 1}` : "is not an integer";
      throw new DataError(`${c.label}: label value ${v} at voxel ${voxel(i, shape)} ${what}`);
    }
    label[i] = v;
    counts[v]++;
  }
  const sp = img.pixdim;
  return {
    id: c.id,
    patient: c.patient,
    ...(c.phase ? { phase: c.phase } : {}),
    dims: img.dims.slice(),
    shape,
    spacing: [sp[0] ?? 1, sp[1] ?? 1, sp[2] ?? 1],
    affine: img.affine.map((row) => row.slice()),
    image: img.data,
    label,
    labelVoxels: counts,
    files: { image: c.image, label: c.label },
  };
}

/** True for the errors that mean "this case's files are bad" (as opposed to a bug or an I/O failure). */
export function isBadCaseError(err: unknown): err is Error {
  return err instanceof DataError || err instanceof NiftiError;
}

/** The problem text without a leading "<file>: ", for BadCase records. */
function problemOf(err: Error, file: string): string {
  return err.message.startsWith(`${file}: `) ? err.message.slice(file.length + 2) : err.message;
}

/** Turns a load failure into a BadCase naming the file it came from. */
export function badCaseOf(c: CaseFiles, err: Error): BadCase {
  const file = err.message.startsWith(`${c.label}: `) ? c.label : c.image;
  return { id: c.id, patient: c.patient, file, problem: problemOf(err, file) };
}

/** The one-line message for a bad case, as printed on stderr when skipping and in the fail error. */
export function badCaseMessage(b: BadCase): string {
  return `${b.id}: ${b.file}: ${b.problem}`;
}

/**
 * Applies the policy to one bad case: "fail" throws a DataError (exit 2) naming the case and file; "skip"
 * reports it through onSkip and returns.
 */
export function handleBadCase(b: BadCase, policy: OnBadCase, onSkip: (message: string) => void): void {
  if (policy === "fail") throw new DataError(badCaseMessage(b));
  onSkip(`skipped ${badCaseMessage(b)}`);
}

/** Stage: cases in, checked volumes out; bad cases fail or are skipped per policy. */
export function loadVolumes(
  opts: LoadOptions & { onBadCase: OnBadCase; onSkip?: (message: string) => void; skipped?: BadCase[] },
): Stage<CaseFiles, Volume> {
  const onSkip = opts.onSkip ?? ((m: string) => console.error(m));
  return async function* (source) {
    for await (const c of source) {
      let volume: Volume;
      try {
        volume = await loadVolume(c, opts);
      } catch (err) {
        if (!isBadCaseError(err)) throw err;
        const b = badCaseOf(c, err);
        handleBadCase(b, opts.onBadCase, onSkip);
        opts.skipped?.push(b);
        continue;
      }
      yield volume;
    }
  };
}
