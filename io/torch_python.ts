/**
 * Finds a Python interpreter with torch for cross-check tests: CI installs python3-torch from Debian, while a
 * developer's PATH may put a torch-less python3 first, so both the PATH one and /usr/bin/python3 are tried.
 */

let cached: Promise<string | undefined> | undefined;

/** The first interpreter that can import torch, or undefined (tests then skip with a printed reason). */
export function findTorchPython(): Promise<string | undefined> {
  cached ??= (async () => {
    for (const exe of [Deno.env.get("TORCH_PYTHON"), "python3", "/usr/bin/python3"]) {
      if (!exe) continue;
      try {
        const r = await new Deno.Command(exe, {
          args: ["-c", "import torch"],
          stdout: "null",
          stderr: "null",
        })
          .output();
        if (r.success) return exe;
      } catch {
        // not installed under that name
      }
    }
    return undefined;
  })();
  return cached;
}

/** Runs code with args (sys.argv[1:]); returns stdout, or throws with stderr when the script fails. */
export async function runPython(python: string, code: string, args: string[] = []): Promise<string> {
  const r = await new Deno.Command(python, { args: ["-c", code, ...args], stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  if (!r.success) throw new Error(`python failed (${r.code}): ${dec.decode(r.stderr)}`);
  return dec.decode(r.stdout);
}
