/** Small synthetic volumes for the data-stage unit tests (deterministic, no files). */
import { geometryFromAffine, writeNifti } from "../io/nifti.ts";
import { Rng } from "../engine/rng.ts";
import type { SliceItem, Volume } from "./volume.ts";

/** A volume of shape [X, Y, Z] with a ramp-plus-noise image and a few concentric label discs per slice. */
export function testVolume(id: string, shape: [number, number, number], seed = 0): Volume {
  const [X, Y, Z] = shape;
  const rng = new Rng(seed);
  const image = new Float32Array(X * Y * Z); // [Z, Y, X]
  const label = new Uint8Array(X * Y * Z); // [Z, Y, X]
  const counts = [0, 0, 0, 0];
  for (let z = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      for (let x = 0; x < X; x++) {
        const i = x + X * (y + Y * z);
        const r = Math.hypot((x - X / 2) / X, (y - Y / 2) / Y);
        const k = r < 0.12 ? 3 : r < 0.2 ? 2 : r < 0.28 && x < X / 2 ? 1 : 0;
        label[i] = k;
        counts[k]++;
        image[i] = 100 + 40 * k + 3 * x + 2 * y + z + 5 * rng.normal();
      }
    }
  }
  const patient = id.split("_frame")[0];
  return {
    id,
    patient,
    phase: id.endsWith("01") ? "ED" : "ES",
    dims: [X, Y, Z],
    shape,
    spacing: [1.5, 1.5, 10],
    affine: [[1.5, 0, 0, 0], [0, 1.5, 0, 0], [0, 0, 10, 0], [0, 0, 0, 1]],
    image,
    label,
    labelVoxels: counts,
    files: { image: `${id}.nii.gz`, label: `${id}_gt.nii.gz` },
  };
}

export interface TestAcdcOptions {
  /** [X, Y, Z] per volume (default [20, 16, 3]). */
  shape?: [number, number, number];
  /** ES frame number (ED is 1). */
  esFrame?: number;
  seed?: number;
}

/**
 * Writes an ACDC-layout set under root/training/: patientNNN/Info.cfg and ED/ES frames with _gt labels
 * (int16 images, uint8 labels, gzip), written by our own NIfTI writer. Returns the patient IDs.
 */
export async function writeTestAcdc(
  root: string,
  patients: number,
  opts: TestAcdcOptions = {},
): Promise<string[]> {
  const shape = opts.shape ?? [20, 16, 3];
  const es = opts.esFrame ?? 12;
  const ids: string[] = [];
  for (let p = 1; p <= patients; p++) {
    const patient = `patient${String(p).padStart(3, "0")}`;
    const dir = `${root}/training/${patient}`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/Info.cfg`,
      `ED: 1\nES: ${es}\nGroup: NOR\nHeight: 180.0\nNbFrame: 30\nWeight: 80.0\n`,
    );
    for (const frame of [1, es]) {
      const id = `${patient}_frame${String(frame).padStart(2, "0")}`;
      const v = testVolume(id, shape, (opts.seed ?? 0) * 1000 + p * 10 + frame);
      await writeCase(dir, id, v.image, v.label, shape);
    }
    ids.push(patient);
  }
  return ids;
}

/** Writes one image (int16) + label (uint8) pair with a 1.5 x 1.5 x 10 mm grid. */
export async function writeCase(
  dir: string,
  id: string,
  image: Float32Array,
  label: Uint8Array,
  dims: number[],
  labelDims = dims,
): Promise<void> {
  const affine = [[-1.5, 0, 0, 10], [0, -1.5, 0, 20], [0, 0, 10, -30], [0, 0, 0, 1]];
  // NaN or fractional test images stay float32; ordinary ones are stored as int16, as scanners do.
  const data = image.every(Number.isInteger) ? Int16Array.from(image) : image;
  await writeNifti(`${dir}/${id}.nii.gz`, data, dims, geometryFromAffine(affine, dims));
  await writeNifti(`${dir}/${id}_gt.nii.gz`, label, labelDims, geometryFromAffine(affine, labelDims));
}

/** A 3-channel slice item of h x w with the given image ([H, W, 3]) and label ([H, W]) values by index. */
export function testSlice(
  id: string,
  h: number,
  w: number,
  image: (i: number) => number,
  label: (i: number) => number,
): SliceItem {
  return {
    id,
    volumeId: "v",
    patient: "p",
    z: 0,
    height: h,
    width: w,
    channels: 3,
    image: Float32Array.from({ length: h * w * 3 }, (_, i) => image(i)),
    label: Uint8Array.from({ length: h * w }, (_, i) => label(i)),
    originalHeight: h,
    originalWidth: w,
  };
}
