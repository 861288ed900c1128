/** The embedded demo's data: synthetic ACDC-layout phantoms generated once into the run directory. */
import { generateAcdcPhantoms } from "../fixtures/phantom.ts";
import { exists } from "./run_dir.ts";
import { writeOutputText } from "../io/safe_output.ts";

/**
 * Generates `patients` phantom patients (seeded) under dir, or reuses them when a previous (resumed) run of
 * the same directory already did; returns the data root to train on.
 */
export async function makeDemoData(
  dir: string,
  patients: number,
  seed: number,
  log: (l: string) => void,
): Promise<string> {
  const marker = `${dir}/.complete-${patients}-${seed}`;
  if (await exists(marker)) return dir;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const t0 = performance.now();
  await generateAcdcPhantoms(dir, { patients, seed });
  await writeOutputText(marker, "");
  log(
    `demo: generated ${patients} synthetic phantom patients in ${dir} (${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s)`,
  );
  return dir;
}
