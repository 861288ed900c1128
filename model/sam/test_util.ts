/** Helpers shared by the SAM tests: the reference fixtures, tensor comparison and the WebGPU probe. */
import { tf } from "../../engine/tf.ts";
import { readSafetensors } from "../../io/safetensors.ts";
import { type HostTensor, toFloat32 } from "../../io/host_tensor.ts";

/** The SAM parity fixtures made with the official PyTorch code (fixtures/reference/README.md). */
export const REFERENCE_DIR = new URL("../../fixtures/reference/", import.meta.url).pathname;
export const TINY_PTH = `${REFERENCE_DIR}tiny_sam.pth`;
export const TINY_CONFIG = `${REFERENCE_DIR}tiny_sam.config.json`;
export const TINY_IO = `${REFERENCE_DIR}tiny_sam.io.safetensors`;
export const VIT_B_KEYS = `${REFERENCE_DIR}sam_vit_b.keys.json`;

/** Whether this machine has a WebGPU adapter at all (software ones included). */
export const hasAdapter =
  !!(await (navigator as Navigator & { gpu?: GPU }).gpu?.requestAdapter().catch(() => null));

export function toTensor(h: HostTensor): tf.Tensor {
  return tf.tensor(toFloat32(h), h.shape, "float32");
}

export async function readFixture(path = TINY_IO): Promise<Map<string, HostTensor>> {
  return await readSafetensors(path);
}

/** max |ours - ref| and max |ref| (shapes must match; empty tensors compare as 0, 0). */
export async function compare(ours: tf.Tensor, ref: HostTensor): Promise<{ err: number; max: number }> {
  if (String(ours.shape) !== String(ref.shape)) {
    throw new Error(`shape [${ours.shape}] vs reference [${ref.shape}]`);
  }
  const a = await ours.data();
  const b = toFloat32(ref);
  let err = 0, max = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    max = Math.max(max, Math.abs(b[i]));
  }
  if (a.some((v) => !Number.isFinite(v))) err = Infinity;
  return { err, max };
}

/** Compares every named tensor with the reference; returns lines "name err rel" and the names over tol. */
export async function compareAll(
  ours: Map<string, tf.Tensor>,
  refs: Map<string, HostTensor>,
  tol = 1e-4,
): Promise<{ lines: string[]; failed: string[] }> {
  const lines: string[] = [], failed: string[] = [];
  for (const [name, ref] of refs) {
    const t = ours.get(name);
    if (!t) {
      failed.push(`${name} (missing)`);
      continue;
    }
    const { err, max } = await compare(t, ref);
    lines.push(
      `${name.padEnd(32)} max|d| ${err.toExponential(2)}  rel ${(max ? err / max : err).toExponential(2)}`,
    );
    if (!(err <= tol * max)) failed.push(`${name} (${err} > ${tol} x ${max})`);
  }
  return { lines, failed };
}
