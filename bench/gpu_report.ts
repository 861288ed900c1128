/**
 * `deno run bench/gpu_report.ts --size S --batch B PART.json...`: merges the JSON reports of bench/gpu.sh's
 * separate benchmark calls into one object and adds the Table 1 wall-time estimate (bench/table_estimate.ts)
 * from the WebGPU figures at that size and batch; prints it on stdout. Parts that are missing or unreadable
 * (a benchmark that timed out leaves an empty file) are named under "missing" rather than failing the report.
 */
import { parseCommand } from "../pipeline/flags.ts";
import { int } from "../pipeline/option_schema.ts";
import { runCli } from "../pipeline/run_cli.ts";
import { tableEstimate } from "./table_estimate.ts";

type Report = Record<string, Record<string, unknown>>;

/** Merges reports key by key (encoder_forward_1024_s: {webgpu: ...} from one, ..._b4_s from another). */
export function mergeReports(parts: Report[]): Report {
  const out: Report = {};
  for (const p of parts) for (const [k, v] of Object.entries(p)) out[k] = { ...out[k], ...v };
  return out;
}

/** The estimate from a merged report, or why there is none. */
export function estimateFrom(r: Report, size: number, batch: number, backend = "webgpu") {
  const b = batch === 1 ? "" : `_b${batch}`;
  const fig = (k: string) => r[k]?.[backend] as number | undefined;
  const steps = [fig(`train_step_vit_b_${size}${b}_s`), fig(`train_step_vit_b_${size}${b}_nockpt_s`)]
    .filter((s): s is number => s !== undefined);
  const forward = fig(`encoder_forward_${size}${b}_s`);
  if (!steps.length || forward === undefined) {
    return {
      missing: `needs train_step_vit_b_${size}${b}_s and encoder_forward_${size}${b}_s on ${backend}`,
    };
  }
  const step = Math.min(...steps);
  return { step_s: step, forward_s: forward, batch, size, ...tableEstimate(step, forward) };
}

export async function main(args: string[]): Promise<void> {
  const { options: o, positionals } = parseCommand(args, { size: int(16), batch: int(1) }, {
    defaults: { size: 1024, batch: 4 },
    positionals: true,
  });
  const parts: Report[] = [];
  const missing: string[] = [];
  for (const f of positionals) {
    try {
      parts.push(JSON.parse((await Deno.readTextFile(f)).trim().split("\n").pop()!));
    } catch {
      missing.push(f);
    }
  }
  const merged = mergeReports(parts);
  console.log(
    JSON.stringify({ ...merged, table1_estimate: estimateFrom(merged, o.size!, o.batch!), missing }),
  );
}

if (import.meta.main) runCli(main);
