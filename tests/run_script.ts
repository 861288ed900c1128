/**
 * Runs one of the repository's entry points in a fresh Deno process, as a user's shell would, for the tests
 * that check exit codes and what lands on stdout and stderr.
 */

/** The repository root. */
export const ROOT = new URL("..", import.meta.url).pathname;

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time including Deno's start-up. */
  ms: number;
}

export interface ScriptOptions {
  /** Extra environment (XDG_RUNTIME_DIR is always set, for the WebGPU adapter). */
  env?: Record<string, string>;
  /** Deno flags before the script (default -A). */
  denoFlags?: string[];
  /** Kills the process after this long (a hang then fails the test rather than blocking it). */
  killAfterMs?: number;
  /** Runs the command through this prefix (e.g. setpriv to drop to nobody). */
  prefix?: string[];
}

/** `deno run -A ROOT/script args...` from the repository root; script is relative to it (cli/info.ts). */
export async function runScript(
  script: string,
  args: string[],
  o: ScriptOptions = {},
): Promise<ScriptResult> {
  const cmd = [
    ...(o.prefix ?? []),
    Deno.execPath(),
    "run",
    ...(o.denoFlags ?? ["-A"]),
    `${ROOT}${script}`,
    ...args,
  ];
  const started = performance.now();
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: ROOT,
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", ...o.env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = o.killAfterMs ? setTimeout(() => child.kill("SIGKILL"), o.killAfterMs) : undefined;
  const out = await child.output();
  clearTimeout(timer);
  const dec = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: out.code,
    stdout: dec(out.stdout),
    stderr: dec(out.stderr),
    ms: performance.now() - started,
  };
}
