/**
 * Frozen-encoder embeddings of slices that are scored again and again (the validation slices, every epoch),
 * kept on the host so a method whose encoder never trains runs the ViT-B encoder, most of its compute, on each
 * of them once per run. Host memory rather than tensors: the wasm heap (4 GiB) and a GPU's memory are what
 * training needs; the cache is bounded and simply stops growing when full (the first slices stay cached, the
 * rest are encoded as before), so it never changes a number, only how often the same one is computed.
 */
import { tf } from "../engine/tf.ts";
import type { Segmenter } from "../model/segmenter.ts";

export class EmbeddingCache {
  private readonly entries = new Map<string, { data: Float32Array; shape: number[] }>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  /** maxBytes: the most host memory the embeddings may take (a ViT-B embedding is 4 MiB). */
  constructor(readonly maxBytes: number) {}

  /** The embedding [g, g, C] of the slice with this id, if cached. */
  get(id: string): { data: Float32Array; shape: number[] } | undefined {
    const e = this.entries.get(id);
    if (e) this.hits++;
    else this.misses++;
    return e;
  }

  /** Keeps data ([g, g, C] of slice id) when it fits under maxBytes; returns whether it was kept. */
  set(id: string, data: Float32Array, shape: number[]): boolean {
    if (this.entries.has(id) || this.bytes + data.byteLength > this.maxBytes) return false;
    this.entries.set(id, { data, shape });
    this.bytes += data.byteLength;
    return true;
  }

  get size(): number {
    return this.entries.size;
  }

  get byteLength(): number {
    return this.bytes;
  }
}

/**
 * The frozen encoder's embeddings [b, g, g, C] of the batch x [b, S, S, 3] whose slices have these ids: from
 * the cache where it has all of them, else encoded (and kept where they fit). Same numbers either way: the
 * embedding is a function of the slice alone, and the encoder is off the gradient tape. The caller owns the
 * result.
 */
export async function embeddingsOf(
  model: Required<Pick<Segmenter, "encode">>,
  ids: readonly string[],
  x: tf.Tensor4D,
  cache: EmbeddingCache,
): Promise<tf.Tensor4D> {
  const cached = ids.map((id) => cache.get(id));
  if (cached.every((c) => c)) {
    const [g, , c] = cached[0]!.shape;
    const host = new Float32Array(ids.length * cached[0]!.data.length);
    cached.forEach((e, b) => host.set(e!.data, b * e!.data.length));
    return tf.tensor4d(host, [ids.length, g, g, c]);
  }
  const emb = model.encode(x); // [b, g, g, C]
  try {
    const data = (await emb.data()) as Float32Array;
    const [, g, , c] = emb.shape, n = g * g * c;
    ids.forEach((id, b) => cache.set(id, data.slice(b * n, (b + 1) * n), [g, g, c]));
    return emb;
  } catch (err) {
    emb.dispose();
    throw err;
  }
}
