/** Positioned reads and atomic writes shared by the checkpoint formats, so big files are never slurped whole. */

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
  let at = 0;
  while (at < buf.length) {
    // Large reads are split so one call never asks the OS for more than 64 MiB at a time.
    const n = await f.read(buf.subarray(at, Math.min(buf.length, at + (64 << 20))));
    if (n === null || n === 0) {
      throw new Err(
        `${file}: unexpected end of file at byte ${pos + at} (needed ${buf.length - at} more bytes)`,
      );
    }
    at += n;
  }
}

/** Writes all of bytes (FsFile.write may write less than asked). */
export async function writeAll(f: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await f.write(bytes.subarray(at));
}

/**
 * Runs write on a temporary file beside path, flushes it, then renames it over path, so a crash or error
 * never leaves a torn file under the real name; the temporary file is removed on failure.
 */
export async function writeAtomic(path: string, write: (f: Deno.FsFile) => Promise<void>): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const f = await Deno.open(tmp, { write: true, createNew: true });
  let ok = false;
  try {
    await write(f);
    await f.syncData();
    ok = true;
  } finally {
    f.close();
    if (!ok) await Deno.remove(tmp).catch(() => {});
  }
  try {
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}
