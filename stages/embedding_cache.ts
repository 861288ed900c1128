/**
 * Frozen-encoder embeddings of slices that are scored again and again (the validation slices, every epoch),
 * kept on the host so a method whose encoder never trains runs the ViT-B encoder, most of its compute, on each
 * of them once per run. Host memory rather than tensors: the wasm heap (4 GiB) and a GPU's memory are what
 * training needs; the cache is bounded and simply stops growing when full (the first slices stay cached, the
 * rest are encoded as before), so it never changes a number, only how often the same one is computed.
 */
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
