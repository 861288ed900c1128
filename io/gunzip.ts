/**
 * Bounded, streamed gunzip: a hostile .gz can neither exhaust memory (output is capped, and sized from the
 * NIfTI header as soon as that is decoded) nor pass off a truncated stream as a short file.
 */
import { concatBytes } from "./concat_bytes.ts";
import { crc32, createInflateRaw } from "node:zlib";
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

const CHUNK = 1 << 20;
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
    const prefix = concatBytes(this.head, this.total);
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

/** The end of a gzip member's header at pos (RFC 1952), or undefined when pos holds no gzip header. */
function memberHeaderEnd(b: Uint8Array, pos: number): number | undefined {
  if (b.length - pos < 10 || b[pos] !== 0x1f || b[pos + 1] !== 0x8b || b[pos + 2] !== 8) return undefined;
  const flags = b[pos + 3];
  let p = pos + 10;
  if (flags & 4) p += 2 + (b[p] | (b[p + 1] << 8)); // FEXTRA
  for (const bit of [8, 16]) { // FNAME, FCOMMENT: zero-terminated
    if (!(flags & bit)) continue;
    while (p < b.length && b[p] !== 0) p++;
    p++;
  }
  if (flags & 2) p += 2; // FHCRC
  return p <= b.length ? p : undefined;
}

/**
 * Decompresses gzip bytes member by member (RFC 1952), as gzip(1) and Python's gzip module do: concatenated
 * members (bgzip, mgzip, `cat a.gz b.gz`) are all read, each member's CRC-32 and size are checked, and bytes
 * after the last member that are not another member are ignored, since nibabel (which reads no further than
 * the header's voxels) opens such files too. A truncated member or a wrong CRC is refused.
 */
export async function gunzip(bytes: Uint8Array, file: string, opts: GunzipOptions): Promise<Uint8Array> {
  const sink = new Sink(file, opts);
  let pos = 0;
  let extra = -1; // bytes decoded past the needed ones; -1 until every needed byte is here
  for (let member = 0;; member++) {
    const start = memberHeaderEnd(bytes, pos);
    if (start === undefined) {
      if (member > 0) break; // trailing data that is not a gzip member: ignored
      throw new NiftiError(file, "gzip", bytes.length < 10 ? "truncated gzip header" : "not a gzip stream");
    }
    const m = await inflateMember(bytes.subarray(start), file, (chunk) => {
      if (extra >= 0) extra += chunk.length;
      else if (sink.push(chunk)) extra = 0;
      return extra < DRAIN_LIMIT;
    });
    if (m === undefined) break; // stopped after DRAIN_LIMIT extra bytes: no need to decode the rest
    const t = start + m.consumed;
    if (bytes.length - t < 8) {
      throw new NiftiError(file, "gzip", "stream ends inside a member's trailer (truncated file)");
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset + t, 8);
    if (view.getUint32(0, true) !== m.crc || view.getUint32(4, true) !== m.size % 2 ** 32) {
      throw new NiftiError(file, "gzip", `CRC or size check failed in member ${member + 1} (corrupt data)`);
    }
    pos = t + 8;
    if (extra >= 0) break; // every needed byte is here; later members hold nothing the reader uses
  }
  return sink.finish();
}

/**
 * Raw-inflates one member's deflate stream from the start of data, handing each output chunk to onChunk
 * (which returns false to stop early: the result is then undefined). Returns the compressed bytes consumed,
 * and the CRC-32 and length of the output, for the trailer check.
 */
async function inflateMember(
  data: Uint8Array,
  file: string,
  onChunk: (chunk: Uint8Array) => boolean,
): Promise<{ consumed: number; crc: number; size: number } | undefined> {
  const inf = createInflateRaw({ chunkSize: CHUNK });
  inf.end(data);
  let crc = 0, size = 0;
  try {
    for await (const c of inf) {
      const chunk = new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
      crc = crc32(chunk, crc);
      size += chunk.length;
      if (!onChunk(chunk)) return undefined;
    }
  } catch (err) {
    if (err instanceof NiftiError) throw err;
    const why = (err as Error).message;
    const truncated = /unexpected end/i.test(why);
    throw new NiftiError(
      file,
      "gzip",
      truncated ? "stream ends inside a member (truncated file)" : `corrupt gzip data (${why})`,
    );
  } finally {
    inf.destroy();
  }
  return { consumed: inf.bytesWritten, crc, size };
}
