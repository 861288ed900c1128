/**
 * Moving a method's trainable variables to and from host tensors (trainable.safetensors), with the strict
 * checks every method needs: the same names, float32, the expected shapes, errors naming the file.
 */
import { tf } from "../engine/tf.ts";
import type { HostTensor } from "../io/host_tensor.ts";
import { CheckpointError } from "./checkpoint.ts";

/** A per-name layout conversion (the CNN head stores PyTorch's layout on disk, NHWC in memory). */
export interface Layout {
  /** The on-disk shape of name, when it differs from the variable's. */
  diskShape?(name: string): number[] | undefined;
  toDisk?(name: string, t: HostTensor): HostTensor;
  fromDisk?(name: string, t: HostTensor): HostTensor;
}

/** Sum of element counts. */
export const sizeOf = (ts: Iterable<tf.Tensor>) => [...ts].reduce((n, t) => n + t.size, 0);

const list = (xs: string[]) => xs.slice(0, 3).join(", ") + (xs.length > 3 ? ` (+${xs.length - 3} more)` : "");

/** The variables as host tensors in their on-disk layout. */
export async function exportVariables(
  vars: ReadonlyMap<string, tf.Tensor>,
  layout: Layout = {},
): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (const [name, v] of vars) {
    const host: HostTensor = { dtype: "float32", shape: v.shape, data: (await v.data()) as Float32Array };
    out.set(name, layout.toDisk ? layout.toDisk(name, host) : host);
  }
  return out;
}

/** Assigns tensors to vars after checking that they are exactly the model's (names, dtype, shapes). */
export function importVariables(
  vars: ReadonlyMap<string, tf.Variable>,
  tensors: ReadonlyMap<string, HostTensor>,
  file: string,
  method: string,
  layout: Layout = {},
): void {
  const missing = [...vars.keys()].filter((k) => !tensors.has(k));
  const extra = [...tensors.keys()].filter((k) => !vars.has(k));
  if (missing.length || extra.length) {
    throw new CheckpointError(
      `${file}: does not fit this ${method} model` +
        (missing.length ? `; missing ${list(missing)}` : "") +
        (extra.length ? `; unexpected ${list(extra)}` : ""),
    );
  }
  const checked = new Map<string, Float32Array>();
  for (const [name, v] of vars) {
    let h = tensors.get(name)!;
    if (h.dtype !== "float32") throw new CheckpointError(`${file}: ${name} is ${h.dtype}, expected float32`);
    const disk = layout.diskShape?.(name) ?? v.shape;
    if (h.shape.join() !== disk.join()) {
      throw new CheckpointError(`${file}: ${name} has shape [${h.shape}], expected [${disk}]`);
    }
    if (layout.fromDisk) h = layout.fromDisk(name, h);
    checked.set(name, h.data as Float32Array);
  }
  // Only after every tensor passed: a bad file leaves the model as it was.
  for (const [name, v] of vars) tf.tidy(() => v.assign(tf.tensor(checked.get(name)!, v.shape, "float32")));
}
