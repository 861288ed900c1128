/**
 * `deno task fixtures`: regenerates the committed synthetic ACDC set (fixtures/acdc/) and its SHA256SUMS,
 * building it beside the old one and swapping it in, so an interrupted run never leaves a mixed set.
 */
import { dirname, join } from "node:path";
import { parseCommand } from "../pipeline/flags.ts";
import { flag, int, path } from "../pipeline/option_schema.ts";
import { runCli } from "../pipeline/run_cli.ts";
import { UserError } from "../errors.ts";
import { OutputError, withOutputErrors, writeOutputText } from "../io/safe_output.ts";
import { FIXTURE_DIR, FIXTURE_SET, fixtureSums, listFiles } from "../fixtures/fixture_set.ts";
import { generateAcdcPhantoms } from "../fixtures/phantom.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

const SHAPE = { out: path, patients: int(1, 999), seed: int(0, 2 ** 32 - 1), small: flag, with4d: flag };

async function main(args: string[]) {
  const { options: values, help } = parseCommand(args, SHAPE, {
    defaults: { out: FIXTURE_DIR, patients: FIXTURE_SET.patients, seed: FIXTURE_SET.seed },
  });
  if (help) {
    return console.log(
      "usage: deno task fixtures [--out DIR] [--patients 12] [--seed 20240611] [--small] [--with4d]",
    );
  }
  const { out, patients, seed } = values as Required<typeof values>;
  await withOutputErrors(out, () => build(out, patients, seed, values), "--out");
}

/** Builds the set beside out and swaps it in; every I/O error becomes one line naming --out. */
async function build(
  out: string,
  patients: number,
  seed: number,
  values: { small?: boolean; with4d?: boolean },
): Promise<void> {
  const info = await Deno.stat(out).catch(() => undefined);
  if (info && !info.isDirectory) throw new OutputError(`--out ${out}: exists and is not a folder`);
  if (info) {
    const empty = (await Array.fromAsync(Deno.readDir(out))).length === 0;
    if (!empty && !(await exists(join(out, "SHA256SUMS")))) {
      throw new UserError(
        `${out}: exists and holds no SHA256SUMS, so it is not a fixture set; choose another --out`,
      );
    }
  }
  await Deno.mkdir(dirname(out), { recursive: true });
  const staging = await Deno.makeTempDir({ dir: dirname(out), prefix: ".acdc-staging-" });
  try {
    const started = performance.now();
    const ids = await generateAcdcPhantoms(staging, {
      patients,
      seed,
      small: values.small,
      with4d: values.with4d,
    });
    await writeOutputText(join(staging, "SHA256SUMS"), await fixtureSums(staging));
    if (await exists(out)) await Deno.remove(out, { recursive: true });
    await Deno.rename(staging, out);
    await Deno.chmod(out, 0o755); // makeTempDir made it private
    const bytes = (await listFiles(out)).reduce((s, f) => s + Deno.statSync(join(out, f)).size, 0);
    console.error(
      `wrote ${ids.length} patients (${(bytes / 1024).toFixed(0)} KiB) to ${out} in ` +
        `${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) runCli(main);
