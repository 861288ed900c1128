/**
 * Slices -> batches of tensors: the one stage that makes tensors. Ownership passes to the consumer, which must
 * call disposeBatch (or dispose image and label) in a `finally`.
 */
import type { Stage } from "./pipe.ts";
import { tf } from "../engine/tf.ts";
import type { SliceItem } from "./volume.ts";

export interface Batch {
  /** Slice ids, in batch order. */
  ids: string[];
  /** The slices themselves (host arrays, for metrics and inverse mapping); not owned tensors. */
  items: SliceItem[];
  image: tf.Tensor4D; // [B, H, W, C] float32
  label: tf.Tensor3D; // [B, H, W] int32
}

/** Host-side batch arrays (no tensors), e.g. to dump or preview exactly what the model is fed. */
export function stackSlices(items: SliceItem[]): {
  shape: [number, number, number, number];
  image: Float32Array; // [B, H, W, C]
  label: Int32Array; // [B, H, W]
} {
  if (items.length === 0) throw new RangeError("cannot batch zero slices");
  const { height: h, width: w, channels: c } = items[0];
  const image = new Float32Array(items.length * h * w * c);
  const label = new Int32Array(items.length * h * w);
  items.forEach((it, b) => {
    if (it.height !== h || it.width !== w || it.channels !== c) {
      throw new RangeError(
        `slice ${it.id} is ${it.height}x${it.width}x${it.channels}, batch is ${h}x${w}x${c}`,
      );
    }
    image.set(it.image, b * h * w * c);
    label.set(it.label, b * h * w);
  });
  return { shape: [items.length, h, w, c], image, label };
}

/** Makes the two tensors of one batch (uploads; no reads back). */
export function makeBatch(items: SliceItem[]): Batch {
  const { shape, image, label } = stackSlices(items);
  const imageT = tf.tensor4d(image, shape, "float32"); // [B, H, W, C]
  const labelT = tf.tensor3d(label, [shape[0], shape[1], shape[2]], "int32"); // [B, H, W]
  return { ids: items.map((it) => it.id), items, image: imageT, label: labelT };
}

/** Frees a batch's tensors. */
export function disposeBatch(batch: Batch): void {
  batch.image.dispose();
  batch.label.dispose();
}

/** Stage: groups slices into batches of `size`; the last, smaller batch is kept unless dropLast. */
export function batch(size: number, opts: { dropLast?: boolean } = {}): Stage<SliceItem, Batch> {
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`batch size must be an integer >= 1, got ${size}`);
  }
  return async function* (source) {
    let pending: SliceItem[] = [];
    for await (const item of source) {
      pending.push(item);
      if (pending.length === size) {
        const items = pending;
        pending = [];
        yield makeBatch(items);
      }
    }
    if (pending.length > 0 && !opts.dropLast) yield makeBatch(pending);
  };
}
