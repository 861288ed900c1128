/**
 * The model over a list of slices in batches, as argmax label maps: what evaluation and whole-volume
 * prediction both run.
 */
import { tf } from "../engine/tf.ts";
import type { Segmenter } from "../model/segmenter.ts";
import { stackSlices } from "./batch.ts";
import { type EmbeddingCache, embeddingsOf } from "./embedding_cache.ts";
import type { SliceItem } from "./volume.ts";

/**
 * The model's logits for a batch x [b, S, S, 3] of these slices: forward, or, given a cache and a model with
 * a frozen encoder, decode over the cached embeddings (embeddingsOf).
 */
async function logitsOf(
  model: Segmenter,
  part: SliceItem[],
  x: tf.Tensor4D,
  cache: EmbeddingCache | undefined,
): Promise<tf.Tensor4D> {
  if (!cache || !model.encode || !model.decode) return model.forward(x);
  const emb = await embeddingsOf({ encode: model.encode }, part.map((s) => s.id), x, cache); // [b, g, g, C]
  try {
    return model.decode(x, emb);
  } finally {
    emb.dispose();
  }
}

/**
 * Argmax label maps ([S*S] each, slice order) for slices, run in batches; no tensors outlive the call.
 * `cache` (see EmbeddingCache) spares a frozen encoder the slices it has seen.
 */
export async function predictSlices(
  model: Segmenter,
  slices: SliceItem[],
  batchSize: number,
  cache?: EmbeddingCache,
): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let i = 0; i < slices.length; i += batchSize) {
    const part = slices.slice(i, i + batchSize);
    const { shape, image } = stackSlices(part);
    const x = tf.tensor4d(image, shape); // [b, S, S, 3]
    let labels: tf.Tensor;
    try {
      const logits = await logitsOf(model, part, x, cache); // [b, S, S, K]
      labels = tf.argMax(logits, -1); // [b, S, S] int32
      logits.dispose();
    } finally {
      x.dispose();
    }
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
