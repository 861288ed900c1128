/**
 * The one way a command writes a file. Every output goes through here so that a bad output path is one line
 * and exit 2, never a stack trace, and so that a write can only replace what the user named:
 *
 * - a target that exists and is not a regular file (a folder, a named pipe, a socket, a block or unknown
 *   character device) is refused, because renaming a temporary file over it would replace the device node
 *   (as root, `--dump-batch /dev/full` once turned /dev/full into a plain file);
 * - the streams a user clearly means (/dev/stdout, /dev/stderr, /dev/fd/N, /dev/null, /dev/full, a terminal)
 *   are written in place, with no temporary file and no rename;
 * - a target that is one of the command's inputs (same real path, or same device and inode, so links and
 *   other spellings count) is refused before anything is written;
 * - anything else is written to a temporary file beside the target, synced, then renamed over it, and the
 *   temporary file is removed on any failure, so a failed write leaves no partial output;
 * - every I/O error (EACCES, EROFS, ENOSPC, EISDIR, ENOTDIR, ENOENT, ELOOP, ...) becomes an OutputError
 *   naming the path and the problem.
 */
import { basename, dirname, join } from "node:path";
import { UserError } from "../errors.ts";
import { type ByteSink, writeAll } from "./file_io.ts";

/** An output path the command cannot write, named with the problem (one line, exit 2). */
export class OutputError extends UserError {}

export interface OutputOptions {
  /** Files the command reads: the output may be none of them. */
  inputs?: readonly string[];
  /** How the path is introduced in messages, e.g. "--output" gives `--output x.nii.gz: ...`. */
  label?: string;
}

/** Where and how a checked output is written. */
export interface OutputTarget {
  /** replace: temporary file + rename over `path`; stream: opened and written in place. */
  kind: "replace" | "stream";
  /** The path actually written: the target of a symbolic link, so the link itself survives. */
  path: string;
}

/** What each errno means, in words (the OS's own wording is kept for the rest). */
const PROBLEMS: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large for the file system",
  EISDIR: "is a folder, not a file",
  ENOTDIR: "a part of the path is not a folder",
  ENOENT: "its folder does not exist",
  ELOOP: "too many levels of symbolic links (a link loop?)",
  ENAMETOOLONG: "name too long",
  EIO: "input/output error",
  EBUSY: "device or resource busy",
  ETXTBSY: "text file busy",
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system",
  EXDEV: "crosses file systems",
  EEXIST: "already exists",
};

/** The errno of an OS error ("ENOSPC"), or undefined for anything that is not one (a bug keeps its stack). */
function errnoOf(err: unknown): string | undefined {
  if (!(err instanceof Error) || err instanceof UserError) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code;
  if (Object.values(Deno.errors).some((E) => err instanceof E)) return "EIO";
  return undefined;
}

function named(path: string, label?: string): string {
  return label ? `${label} ${path}` : path;
}

/**
 * The OutputError for an I/O error met while writing path; any other error (a UserError already, or a bug) is
 * returned unchanged.
 */
export function outputError(path: string, err: unknown, label?: string): unknown {
  const code = errnoOf(err);
  if (!code) return err;
  const problem = PROBLEMS[code] ??
    (err as Error).message.replace(/\s*\(os error \d+\).*$/s, "").toLowerCase();
  return new OutputError(`${named(path, label)}: cannot write: ${problem} (${code})`);
}

/** Runs fn, turning its I/O errors into OutputErrors naming path. */
export async function withOutputErrors<T>(path: string, fn: () => Promise<T>, label?: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw outputError(path, err, label);
  }
}

/** Spellings that always mean "this process's stream", whatever they resolve to (a tty, a pipe, a file). */
const STREAM_ALIAS = /^\/(dev\/(stdout|stderr|fd\/\d+)|proc\/self\/fd\/\d+)$/;
/** The spellings of this process's stdout and stderr (captured: "stdout", "stderr", "1" or "2"). */
const OWN_STREAM = /^\/(?:dev\/(stdout|stderr)|(?:dev|proc\/self)\/fd\/([12]))$/;
/** Character devices it is reasonable to stream an output to; every other device node is refused. */
const STREAM_DEVICE = /^\/dev\/(null|full|zero|tty|pts\/\d+)$/;

function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a folder";
  if (info.isFifo) return "a named pipe";
  if (info.isSocket) return "a socket";
  if (info.isBlockDevice) return "a block device";
  if (info.isCharDevice) return "a character device";
  return "not a regular file";
}

async function statOrUndefined(path: string, follow: boolean): Promise<Deno.FileInfo | undefined> {
  try {
    return follow ? await Deno.stat(path) : await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** Whether a and b are the same file: same device and inode, or the same real path. */
async function sameFile(a: { info: Deno.FileInfo; real: string }, b: string): Promise<boolean> {
  const info = await statOrUndefined(b, true).catch(() => undefined);
  if (!info) return false;
  if (info.dev === a.info.dev && info.ino !== null && info.ino === a.info.ino) return true;
  return (await Deno.realPath(b).catch(() => b)) === a.real;
}

/**
 * Checks an output file path without writing anything: refuses a folder, a device node, a pipe or socket, a
 * dangling link, a missing parent folder, and any of opts.inputs; returns where and how to write it.
 */
export async function checkOutputFile(path: string, opts: OutputOptions = {}): Promise<OutputTarget> {
  const name = named(path, opts.label);
  return await withOutputErrors(path, async () => {
    if (STREAM_ALIAS.test(path)) return { kind: "stream", path };
    const link = await statOrUndefined(path, false);
    if (!link) {
      const parent = dirname(path);
      const dir = await statOrUndefined(parent, true);
      if (!dir) throw new OutputError(`${name}: cannot write: folder ${parent} does not exist`);
      if (!dir.isDirectory) throw new OutputError(`${name}: cannot write: ${parent} is not a folder`);
      return { kind: "replace", path };
    }
    const info = link.isSymlink ? await statOrUndefined(path, true) : link;
    if (!info) {
      throw new OutputError(
        `${name}: is a symbolic link to a missing file; remove the link or choose another name`,
      );
    }
    const real = await Deno.realPath(path);
    if (info.isCharDevice && STREAM_DEVICE.test(real)) return { kind: "stream", path: real };
    if (!info.isFile) {
      throw new OutputError(
        `${name}: exists and is ${kindOf(info)}, not a regular file; refusing to write over it`,
      );
    }
    for (const input of opts.inputs ?? []) {
      if (await sameFile({ info, real }, input)) {
        throw new OutputError(
          `${name}: is the input ${input}; refusing to overwrite an input, choose another output`,
        );
      }
    }
    return { kind: "replace", path: real };
  }, opts.label);
}

const tempName = (path: string) =>
  join(dirname(path), `.${basename(path)}.${crypto.randomUUID().slice(0, 8)}.tmp`);

/**
 * Checks path (checkOutputFile) and proves its folder takes a new file by creating and removing an empty
 * temporary one (a stream is opened and closed), so a command can fail before the work that would be lost.
 */
export async function checkWritable(path: string, opts: OutputOptions = {}): Promise<OutputTarget> {
  const target = await checkOutputFile(path, opts);
  await withOutputErrors(path, async () => {
    if (target.kind === "stream") {
      (await Deno.open(target.path, { write: true, append: true })).close();
      return;
    }
    const tmp = tempName(target.path);
    (await Deno.open(tmp, { write: true, createNew: true })).close();
    await Deno.remove(tmp);
  }, opts.label);
  return target;
}

/**
 * Writes an output file: checked (checkOutputFile), then written by write() to a temporary file beside the
 * target, synced and renamed over it; a stream target is written in place. On any failure the temporary file
 * is removed and an I/O error becomes an OutputError naming path.
 */
export async function writeOutput(
  path: string,
  write: (f: ByteSink) => Promise<void>,
  opts: OutputOptions = {},
): Promise<void> {
  const target = await checkOutputFile(path, opts);
  if (target.kind === "stream") {
    await withOutputErrors(path, async () => {
      // The process's own stdout and stderr are written through their descriptors, not reopened, so the
      // bytes land where the stream is now (after what was printed), even when it is a redirected file.
      const m = OWN_STREAM.exec(path), own = m?.[1] ?? m?.[2];
      if (own) return await write(own === "1" || own === "stdout" ? Deno.stdout : Deno.stderr);
      const f = await Deno.open(target.path, { write: true, append: true });
      try {
        await write(f);
      } finally {
        f.close();
      }
    }, opts.label);
    return;
  }
  const tmp = tempName(target.path);
  let done = false;
  try {
    await withOutputErrors(path, async () => {
      const old = await statOrUndefined(target.path, true);
      const f = await Deno.open(tmp, { write: true, createNew: true });
      try {
        await write(f);
        await f.syncData();
      } finally {
        f.close();
      }
      // A replaced file keeps its permissions, as `cp` onto an existing file would.
      if (old?.mode != null) await Deno.chmod(tmp, old.mode & 0o7777);
      await Deno.rename(tmp, target.path);
      done = true;
    }, opts.label);
  } finally {
    if (!done) await Deno.remove(tmp).catch(() => {});
  }
}

/** writeOutput for bytes already in memory. */
export async function writeOutputBytes(
  path: string,
  bytes: Uint8Array,
  opts: OutputOptions = {},
): Promise<void> {
  await writeOutput(path, (f) => writeAll(f, bytes), opts);
}

/** writeOutput for text (UTF-8). */
export async function writeOutputText(path: string, text: string, opts: OutputOptions = {}): Promise<void> {
  await writeOutputBytes(path, new TextEncoder().encode(text), opts);
}

/** Appends bytes to a regular file (created if missing) in one write; I/O errors become OutputErrors. */
export async function appendOutput(path: string, bytes: Uint8Array, opts: OutputOptions = {}): Promise<void> {
  const target = await checkOutputFile(path, opts);
  await withOutputErrors(path, async () => {
    const f = await Deno.open(target.path, { append: true, create: true });
    try {
      await writeAll(f, bytes);
    } finally {
      f.close();
    }
  }, opts.label);
}

/** Renames from to to (both in an output folder), an I/O error becoming an OutputError naming to. */
export async function renameOutput(from: string, to: string, label?: string): Promise<void> {
  await withOutputErrors(to, () => Deno.rename(from, to), label);
}

/**
 * Makes sure dir is a folder that takes new files: refuses a path that exists and is not a folder, creates a
 * missing one (and its parents), and probes it with an empty temporary file. Returns whether it was created,
 * so a caller that fails early can remove only what it made.
 */
export async function prepareOutputDir(dir: string, opts: OutputOptions = {}): Promise<{ created: boolean }> {
  const name = named(dir, opts.label);
  return await withOutputErrors(dir, async () => {
    const info = await statOrUndefined(dir, true);
    if (info && !info.isDirectory) {
      throw new OutputError(`${name}: exists and is ${info.isFile ? "a file" : kindOf(info)}, not a folder`);
    }
    if (!info) {
      const link = await statOrUndefined(dir, false);
      if (link) throw new OutputError(`${name}: is a symbolic link to a missing folder`);
      await Deno.mkdir(dir, { recursive: true });
    }
    try {
      const tmp = tempName(join(dir, "probe"));
      (await Deno.open(tmp, { write: true, createNew: true })).close();
      await Deno.remove(tmp);
    } catch (err) {
      if (!info) await Deno.remove(dir).catch(() => {});
      throw err;
    }
    return { created: !info };
  }, opts.label);
}
