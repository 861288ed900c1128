/**
 * The model over a list of slices in batches, as argmax label maps: what evaluation and whole-volume
 * prediction both run.
 */
import { tf } from "../engine/tf.ts";
import type { Segmenter } from "../model/segmenter.ts";
import { stackSlices } from "./batch.ts";
import type { SliceItem } from "./volume.ts";

/** Argmax label maps ([S*S] each, slice order) for slices, run in batches; no tensors outlive the call. */
export async function predictSlices(
  model: Segmenter,
  slices: SliceItem[],
  batchSize: number,
): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let i = 0; i < slices.length; i += batchSize) {
    const part = slices.slice(i, i + batchSize);
    const { shape, image } = stackSlices(part);
    const labels = tf.tidy(() => tf.argMax(model.forward(tf.tensor4d(image, shape)), -1)); // [b, S, S] int32
    try {
      const data = (await labels.data()) as Int32Array;
      const plane = shape[1] * shape[2];
      for (let b = 0; b < part.length; b++) {
        out.push(Uint8Array.from(data.subarray(b * plane, (b + 1) * plane)));
      }
    } finally {
      labels.dispose();
    }
  }
  return out;
}
