/**
 * Bounded, streamed gunzip: a hostile .gz can neither exhaust memory (output is capped, and sized from the
 * NIfTI header as soon as that is decoded) nor pass off a truncated stream as a short file.
 */
import { createGunzip } from "node:zlib";
import { NiftiError } from "./nifti_error.ts";

export interface GunzipOptions {
  /** Refuse to produce more bytes than this. */
  maxBytes: number;
  /**
   * Given the first bytes decoded (at least prefixBytes, or all if the stream is shorter), how many are needed
   * in all; decoding stops there. It may throw (a bad header fails before the rest is inflated).
   */
  needed?: (prefix: Uint8Array) => number;
  prefixBytes?: number;
}

const CHUNK = 1 << 16;
/**
 * After the needed bytes, decoding goes on to the end of the stream (normally just the 8-byte trailer) so a
 * file cut inside its trailer is refused like any truncated one; past this many extra bytes it stops, since
 * trailing data that nothing reads (as nibabel ignores it) must not cost a full inflate.
 */
const DRAIN_LIMIT = 1 << 20;

/** Collects output up to the known (or capped) size, growing one resizable buffer instead of copying. */
class Sink {
  private head: Uint8Array[] = [];
  private buf?: ArrayBuffer;
  private view?: Uint8Array;
  total = 0;
  target?: number;

  constructor(private file: string, private opts: GunzipOptions) {}

  /** Adds a chunk; true once every needed byte is here. */
  push(chunk: Uint8Array): boolean {
    if (this.view === undefined) {
      this.head.push(chunk);
      this.total += chunk.length;
      if (this.total >= (this.opts.needed ? (this.opts.prefixBytes ?? 1) : 0)) this.start();
      return this.view !== undefined && this.total >= this.target!;
    }
    return this.append(chunk);
  }

  /** The decoded bytes; throws if the stream ended before the header's size was reached. */
  finish(): Uint8Array {
    if (this.view === undefined) this.start();
    if (this.total < this.target! && this.opts.needed) {
      throw new NiftiError(
        this.file,
        "gzip",
        `stream ends after ${this.total} bytes but the header needs ` +
          `${this.target} (truncated file)`,
      );
    }
    return this.view!.subarray(0, Math.min(this.total, this.target!));
  }

  private start() {
    const prefix = concat(this.head, this.total);
    const target = this.opts.needed ? this.opts.needed(prefix) : this.opts.maxBytes;
    if (target > this.opts.maxBytes) {
      throw new NiftiError(
        this.file,
        "gzip",
        `header needs ${target} decompressed bytes, over the ` +
          `${this.opts.maxBytes}-byte limit`,
      );
    }
    this.target = target;
    this.buf = new ArrayBuffer(0, { maxByteLength: target });
    this.view = new Uint8Array(this.buf);
    this.total = 0;
    this.head = [];
    this.append(prefix);
  }

  private append(chunk: Uint8Array): boolean {
    const take = Math.min(chunk.length, this.target! - this.total);
    if (take < chunk.length && !this.opts.needed) {
      throw new NiftiError(
        this.file,
        "gzip",
        `decompresses to more than the ${this.opts.maxBytes}-byte limit`,
      );
    }
    this.buf!.resize(this.total + take);
    this.view!.set(chunk.subarray(0, take), this.total);
    this.total += take;
    return this.total >= this.target!;
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Decompresses gzip bytes with the web-standard DecompressionStream; multi-member files (bgzip, mgzip),
 * which it rejects, are retried with node:zlib under the same limits.
 */
export async function gunzip(bytes: Uint8Array, file: string, opts: GunzipOptions): Promise<Uint8Array> {
  try {
    return await viaDecompressionStream(bytes, new Sink(file, opts));
  } catch (err) {
    if (err instanceof NiftiError) throw err;
  }
  try {
    return await viaZlib(bytes, new Sink(file, opts));
  } catch (err) {
    if (err instanceof NiftiError) throw err;
    const why = (err as Error).message;
    throw new NiftiError(file, "gzip", `corrupt or truncated gzip data (${why})`);
  }
}

async function viaDecompressionStream(bytes: Uint8Array, sink: Sink): Promise<Uint8Array> {
  const stream = new DecompressionStream("gzip");
  const writer = stream.writable.getWriter();
  const feeding = (async () => {
    for (let at = 0; at < bytes.length; at += CHUNK) await writer.write(bytes.slice(at, at + CHUNK));
    await writer.close();
  })();
  feeding.catch(() => {}); // its failure surfaces through the reader, or is our own cancel
  const reader = stream.readable.getReader();
  try {
    let extra = -1; // bytes decoded past the needed ones; -1 until every needed byte is here
    while (extra < DRAIN_LIMIT) {
      const { done, value } = await reader.read();
      if (done) break;
      if (extra >= 0) extra += value.length;
      else if (sink.push(value)) extra = 0;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return sink.finish();
}

async function viaZlib(bytes: Uint8Array, sink: Sink): Promise<Uint8Array> {
  const gz = createGunzip({ chunkSize: CHUNK });
  gz.end(bytes);
  try {
    let extra = -1; // as in viaDecompressionStream: drain the trailer so a cut one is caught
    for await (const chunk of gz) {
      if (extra >= 0) extra += chunk.byteLength;
      else if (sink.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))) extra = 0;
      if (extra >= DRAIN_LIMIT) break;
    }
  } finally {
    gz.destroy();
  }
  return sink.finish();
}
