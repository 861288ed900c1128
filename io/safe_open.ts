/**
 * The one way the program opens an input file. A path is stat'ed (following symlinks) before it is opened,
 * and anything but a regular file (a named pipe, socket, device or folder) is refused with one line: opening a
 * FIFO blocks until a writer appears, and reading /dev/zero never ends, so such paths must never reach open().
 * Every I/O failure (ENOENT, EACCES, ELOOP, EISDIR, EIO, ...) on open or on any later read of the returned
 * file becomes an InputError, a UserError naming the file, so the CLI prints one line and exits 2.
 *
 * The stat-then-open window is the only race left (a file swapped for a FIFO in between); the opened file is
 * stat'ed again, so the worst a racing swap can do is block the process that raced against itself.
 */
import { UserError } from "../errors.ts";
import { readInto } from "./file_io.ts";

/** An input path that cannot be read: names the file and the problem, on one line. */
export class InputError extends UserError {}

/** What a non-regular path is, in words. */
function kindOf(s: Deno.FileInfo): string {
  if (s.isDirectory) return "is a folder, not a file";
  if (s.isFifo) return "is a named pipe (FIFO), not a regular file; it is not read, so nothing blocks";
  if (s.isSocket) return "is a socket, not a regular file";
  if (s.isCharDevice) return "is a character device, not a regular file";
  if (s.isBlockDevice) return "is a block device, not a regular file";
  return "is not a regular file";
}

/** True for the errors the OS raises on a path or a read (not a bug of ours). */
export function isIoError(err: unknown): err is Error {
  if (!(err instanceof Error)) return false;
  // BadResource is a closed file used again: our bug, not the user's input.
  if (err instanceof Deno.errors.BadResource) return false;
  if (Object.values(Deno.errors).some((E) => err instanceof E)) return true;
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code);
}

/** The problem in words, for an I/O error on path. */
function problemOf(err: Error): string {
  if (err instanceof Deno.errors.NotFound) return "not found";
  if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
    return "permission denied";
  }
  if (err instanceof Deno.errors.FilesystemLoop) return "symlink loop (too many levels of symbolic links)";
  if (err instanceof Deno.errors.IsADirectory) return "is a folder, not a file";
  if (err instanceof Deno.errors.NotADirectory) return "not found (a part of the path is not a folder)";
  // "Input/output error (os error 5): read 'x'" -> "Input/output error"; the code makes it searchable.
  const why = err.message.split("\n")[0].replace(/\s*\(os error \d+\).*$/, "");
  const code = (err as { code?: unknown }).code;
  return `cannot read: ${why}${typeof code === "string" && !why.includes(code) ? ` (${code})` : ""}`;
}

/**
 * An I/O error on path as an InputError naming it; anything else (a bug, or an already typed UserError) is
 * returned unchanged, so callers can write `catch (err) { throw asInputError(path, err); }`.
 */
export function asInputError(path: string, err: unknown): Error {
  if (err instanceof UserError || !isIoError(err)) return err as Error;
  return new InputError(`${path}: ${problemOf(err)}`);
}

/** Stats path (following symlinks) and refuses anything but a regular file, without opening it. */
export async function statInput(path: string): Promise<Deno.FileInfo> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    throw asInputError(path, err);
  }
  if (!info.isFile) throw new InputError(`${path}: ${kindOf(info)}`);
  return info;
}

/**
 * Wraps f so a failure of any of its methods (read, seek, stat, ...) is an InputError naming path; the
 * readers that take a Deno.FsFile need no change to report a failing disk in one line.
 */
function mapErrors(f: Deno.FsFile, path: string): Deno.FsFile {
  return new Proxy(f, {
    get(target, key) {
      const v = Reflect.get(target, key, target);
      if (typeof v !== "function") return v;
      return (...args: unknown[]) => {
        try {
          const r = v.apply(target, args);
          return r instanceof Promise ? r.catch((err) => Promise.reject(asInputError(path, err))) : r;
        } catch (err) {
          throw asInputError(path, err);
        }
      };
    },
  });
}

/** Opens a regular file for reading; see the module comment for what is refused and how errors read. */
export async function openInput(path: string): Promise<Deno.FsFile> {
  await statInput(path);
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true });
  } catch (err) {
    throw asInputError(path, err);
  }
  try {
    const now = await f.stat();
    if (!now.isFile) throw new InputError(`${path}: ${kindOf(now)}`);
  } catch (err) {
    f.close();
    throw asInputError(path, err);
  }
  return mapErrors(f, path);
}

export interface ReadInputOptions {
  /** Refuse a file larger than this many bytes before reading any of it. */
  maxBytes?: number;
  /** What the file is, for the size message ("config file"). */
  what?: string;
}

/** Reads a whole regular file (bounded by maxBytes), errors as in openInput. */
export async function readInputFile(path: string, opts: ReadInputOptions = {}): Promise<Uint8Array> {
  const f = await openInput(path);
  try {
    const size = (await f.stat()).size;
    if (opts.maxBytes !== undefined && size > opts.maxBytes) {
      throw new InputError(
        `${path}: ${size} bytes, over the ${opts.maxBytes}-byte limit for a ${opts.what ?? "file"} like this`,
      );
    }
    const buf = new Uint8Array(size);
    return buf.subarray(0, await readInto(f, buf));
  } finally {
    f.close();
  }
}

/** Reads a whole regular file as UTF-8 text (bounded by maxBytes), errors as in openInput. */
export async function readInputText(path: string, opts: ReadInputOptions = {}): Promise<string> {
  return new TextDecoder().decode(await readInputFile(path, opts));
}

/**
 * Lists a folder given as input: NotFound, EACCES, ELOOP and a file given for a folder become InputErrors
 * naming it. Entries come back as Deno.readDir gives them (a symlink is neither isFile nor isDirectory).
 */
export async function readInputDir(path: string): Promise<Deno.DirEntry[]> {
  try {
    return await Array.fromAsync(Deno.readDir(path));
  } catch (err) {
    if (err instanceof Deno.errors.NotADirectory) throw new InputError(`${path}: is a file, not a folder`);
    throw asInputError(path, err);
  }
}
