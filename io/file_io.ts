/**
 * Positioned reads and whole writes shared by the file formats, so big files are never slurped whole. Output
 * files are written through io/safe_output.ts, which uses writeAll.
 */

/**
 * Reads from the file's current position into buf until buf is full or the file ends; returns the bytes read.
 * Large reads are split so one call never asks the OS for more than 64 MiB at a time.
 */
export async function readInto(f: Deno.FsFile, buf: Uint8Array): Promise<number> {
  let at = 0;
  while (at < buf.length) {
    const n = await f.read(buf.subarray(at, Math.min(buf.length, at + (64 << 20))));
    if (n === null || n === 0) break;
    at += n;
  }
  return at;
}

/**
 * Fills buf from the file at byte position pos; a short read means the file ended early (or shrank while we
 * read it), reported through the caller's error class so it stays a typed user error.
 */
export async function readFully(
  f: Deno.FsFile,
  pos: number,
  buf: Uint8Array,
  file: string,
  Err: new (message: string) => Error,
): Promise<void> {
  await f.seek(pos, Deno.SeekMode.Start);
  const at = await readInto(f, buf);
  if (at < buf.length) {
    throw new Err(
      `${file}: unexpected end of file at byte ${pos + at} (needed ${buf.length - at} more bytes)`,
    );
  }
}

/** Anything bytes can be written to: a file, or the process's stdout or stderr. */
export interface ByteSink {
  write(p: Uint8Array): Promise<number>;
}

/** Writes all of bytes (FsFile.write may write less than asked). */
export async function writeAll(f: ByteSink, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await f.write(bytes.subarray(at));
}
