/**
 * Reads a zip archive's central directory (ZIP64 included) and locates each stored entry's bytes in the file,
 * so torch checkpoints can be read entry by entry straight from disk instead of being loaded whole.
 */
import { quoted } from "../errors.ts";
import { PickleError } from "./pickle.ts";
import { readFully } from "./file_io.ts";

export interface ZipEntry {
  name: string;
  /** 0 = stored; torch.save writes only stored entries. */
  method: number;
  size: number;
  /** Byte offset of the entry's data in the file (after its local header). */
  dataStart: number;
}

const EOCD = 0x06054b50,
  EOCD64 = 0x06064b50,
  LOCATOR64 = 0x07064b50,
  CENTRAL = 0x02014b50,
  LOCAL = 0x04034b50;
const FFFF = 0xffff, FFFFFFFF = 0xffffffff;

/** True when the file starts like a zip archive (a local header, or an empty archive's end record). */
export function looksLikeZip(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const sig = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true);
  return sig === LOCAL || sig === EOCD;
}

/** Reads the directory of the zip archive open as f (size bytes); errors are PickleErrors naming file. */
export async function readZipIndex(
  f: Deno.FsFile,
  size: number,
  file: string,
): Promise<Map<string, ZipEntry>> {
  const bad = (msg: string): never => {
    throw new PickleError(`${file}: broken zip archive: ${msg}`);
  };
  const read = async (pos: number, n: number) => {
    const b = new Uint8Array(n);
    await readFully(f, pos, b, file, PickleError);
    return new DataView(b.buffer);
  };
  if (size < 22) bad(`${size} bytes is too short for a zip archive`);

  // The end-of-central-directory record sits within the last 64 KiB + 22 bytes (after an optional comment).
  const tailLen = Math.min(size, 22 + 0xffff + 20);
  const tailStart = size - tailLen;
  const tail = await read(tailStart, tailLen);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === EOCD && i + 22 + tail.getUint16(i + 20, true) <= tailLen) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) bad("no end-of-central-directory record (truncated file?)");
  let count = tail.getUint16(eocd + 10, true);
  let cdSize = tail.getUint32(eocd + 12, true);
  let cdOffset = tail.getUint32(eocd + 16, true);
  if (tail.getUint16(eocd + 4, true) !== 0 && tail.getUint16(eocd + 4, true) !== FFFF) {
    bad("multi-disk archive");
  }

  if (eocd >= 20 && tail.getUint32(eocd - 20, true) === LOCATOR64) {
    const at = big(tail.getBigUint64(eocd - 20 + 8, true), size, "ZIP64 locator offset", bad);
    if (at + 56 > size) bad("ZIP64 end record is past the end of the file");
    const z = await read(at, 56);
    if (z.getUint32(0, true) !== EOCD64) bad("ZIP64 end record signature missing");
    count = big(z.getBigUint64(32, true), size, "entry count", bad);
    cdSize = big(z.getBigUint64(40, true), size, "central directory size", bad);
    cdOffset = big(z.getBigUint64(48, true), size, "central directory offset", bad);
  } else if (count === FFFF || cdSize === FFFFFFFF || cdOffset === FFFFFFFF) {
    bad("ZIP64 sizes without a ZIP64 end record");
  }
  if (cdOffset + cdSize > size) {
    bad(`central directory (${cdSize} bytes at ${cdOffset}) runs past the end of the file`);
  }
  if (cdSize > 64 << 20) bad(`central directory of ${cdSize} bytes is implausibly large`);
  if (count * 46 > cdSize) bad(`${count} entries cannot fit in a ${cdSize}-byte central directory`);

  const cd = await read(cdOffset, cdSize);
  const names = new TextDecoder();
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdSize || cd.getUint32(p, true) !== CENTRAL) bad(`central directory entry ${i} is corrupt`);
    const flags = cd.getUint16(p + 8, true);
    const method = cd.getUint16(p + 10, true);
    let comp = cd.getUint32(p + 20, true);
    let uncomp = cd.getUint32(p + 24, true);
    const nameLen = cd.getUint16(p + 28, true), extraLen = cd.getUint16(p + 30, true);
    const commentLen = cd.getUint16(p + 32, true);
    let local = cd.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > cdSize) bad(`central directory entry ${i} is corrupt`);
    const name = names.decode(new Uint8Array(cd.buffer, p + 46, nameLen));
    // ZIP64 extended information: 64-bit values for exactly the fields saturated at 0xFFFFFFFF, in this order.
    for (let x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen;) {
      const id = cd.getUint16(x, true), len = cd.getUint16(x + 2, true);
      if (id === 0x0001) {
        let q = x + 4;
        const next = (what: string) => {
          if (q + 8 > x + 4 + len) bad(`ZIP64 field of ${quoted(name)} is too short`);
          q += 8;
          return big(cd.getBigUint64(q - 8, true), size * 2 + 1, what, bad);
        };
        if (uncomp === FFFFFFFF) uncomp = next("size");
        if (comp === FFFFFFFF) comp = next("compressed size");
        if (local === FFFFFFFF) local = next("offset");
      }
      x += 4 + len;
    }
    if (flags & 1) bad(`entry ${quoted(name)} is encrypted`);
    if (local + 30 > size) bad(`entry ${quoted(name)} points past the end of the file`);
    entries.set(name, { name, method, size: method === 0 ? uncomp : comp, dataStart: local });
    if (method === 0 && comp !== uncomp) {
      bad(`stored entry ${quoted(name)} has different sizes (${comp} vs ${uncomp})`);
    }
    p += 46 + nameLen + extraLen + commentLen;
  }

  // Each entry's data follows its local header, whose name/extra lengths may differ from the central copy.
  for (const e of entries.values()) {
    const h = await read(e.dataStart, 30);
    if (h.getUint32(0, true) !== LOCAL) {
      bad(`entry ${quoted(e.name)} has no local header at byte ${e.dataStart}`);
    }
    e.dataStart += 30 + h.getUint16(26, true) + h.getUint16(28, true);
    if (e.dataStart + e.size > size) {
      bad(
        `entry ${
          quoted(e.name)
        } (${e.size} bytes at ${e.dataStart}) runs past the end of the file (${size} bytes)`,
      );
    }
  }
  return entries;
}

/** A 64-bit zip field as a number, refusing values no real file of this size could hold. */
function big(v: bigint, limit: number, what: string, bad: (m: string) => never): number {
  if (v > BigInt(limit)) bad(`${what} ${v} is impossible for a ${limit}-byte file`);
  return Number(v);
}
