/**
 * Run ids: a plain folder name of the runs folder, checked before any file-system call, so a request can
 * never name a path outside it (no separators, no "..", no hidden names, no symbolic links).
 */
import { join } from "node:path";
import { RUN_FILES } from "../pipeline/run_dir.ts";
import { HttpError } from "./http_error.ts";

/** Letters, digits, ".", "_" and "-", starting with a letter or digit (so never "." or ".."), at most 128. */
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const isRunId = (id: string): boolean => RUN_ID.test(id);

const unknown = (id: string) =>
  new HttpError(404, "unknown run", `${JSON.stringify(id.slice(0, 200))}: no such run in the runs folder`);

/** Whether path is a real folder (a symbolic link is not followed, so it never counts). */
export async function isRealDir(path: string): Promise<boolean> {
  try {
    return (await Deno.lstat(path)).isDirectory;
  } catch {
    return false;
  }
}

/**
 * The folder of run `id` under runsDir, or a 404 HttpError when the id is not a valid name or names no run
 * folder holding a config.json. `known`: a run this server started, which counts before its folder exists.
 */
export async function runDir(runsDir: string, id: string, known = false): Promise<string> {
  if (!isRunId(id)) throw unknown(id);
  const dir = join(runsDir, id);
  if (known) return dir;
  if (!(await isRealDir(dir))) throw unknown(id);
  const cfg = await Deno.lstat(join(dir, RUN_FILES.config)).catch(() => null);
  if (!cfg?.isFile) throw unknown(id);
  return dir;
}

/** Ids of the runs under runsDir (real folders with a valid name and a config.json), sorted. */
export async function listRunIds(runsDir: string): Promise<string[]> {
  const ids: string[] = [];
  try {
    for await (const e of Deno.readDir(runsDir)) {
      if (!e.isDirectory || !isRunId(e.name)) continue;
      const cfg = await Deno.lstat(join(runsDir, e.name, RUN_FILES.config)).catch(() => null);
      if (cfg?.isFile) ids.push(e.name);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return ids.sort();
}
