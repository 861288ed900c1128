/**
 * `deno task bench [--json]`: benchmarks, each backend in its own process so one's memory (the wasm heap
 * never shrinks) and RSS peak do not colour another's. First benchmark: the ViT-B encoder forward at 1024.
 */
import { encoderBench, type EncoderBenchResult } from "./encoder_bench.ts";
import { parseCommand } from "../pipeline/flags.ts";
import { flag, int, oneOf, path } from "../pipeline/option_schema.ts";
import { runCli } from "../pipeline/run_cli.ts";
import { UserError } from "../errors.ts";

const ALL = ["wasm", "webgpu", "cpu"] as const;
type Backend = typeof ALL[number];

async function hasAdapter(): Promise<boolean> {
  return !!(await (navigator as Navigator & { gpu?: GPU }).gpu?.requestAdapter().catch(() => null));
}

/** Runs one backend's measurement in a child process; its log lines pass through on stderr. */
async function runChild(
  backend: Backend,
  size: number,
  repeat: number,
): Promise<EncoderBenchResult | string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--child",
      backend,
      "--size",
      String(size),
      "--repeat",
      String(repeat),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) return `failed with exit code ${out.code} (see the log above)`;
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
}

export async function main(args: string[]): Promise<void> {
  const { options: values, help } = parseCommand(args, {
    json: flag,
    backends: path,
    size: int(16),
    repeat: int(1),
    child: oneOf(ALL),
  }, { defaults: { size: 1024, repeat: 1 } });
  if (help) {
    return console.log(
      "usage: deno task bench [--json] [--backends wasm,webgpu,cpu] [--size 1024] [--repeat 1]",
    );
  }
  const size = values.size!, repeat = values.repeat!;
  if (size % 16) throw new UserError(`--size: ${size} is not a multiple of the patch size 16`);
  if (values.child) {
    console.log(JSON.stringify(await encoderBench(values.child, { size, repeat })));
    return;
  }
  const asked = values.backends?.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = asked?.filter((b) => !ALL.includes(b as Backend)) ?? [];
  if (bad.length) {
    throw new UserError(`--backends: unknown ${bad.join(", ")} (expected a list of ${ALL.join(", ")})`);
  }
  const wanted = (asked ?? ALL) as Backend[];
  const seconds: Record<string, number> = {},
    peak: Record<string, number> = {},
    rss: Record<string, number> = {};
  const skipped: Record<string, string> = {};
  for (const b of wanted) {
    if (b === "cpu" && !asked && size >= 512) {
      skipped.cpu = `skipped: the pure-JS cpu backend (~1 GFLOP/s) would take ~15 min at ${size}; ` +
        `pass --backends cpu to run it`;
    } else if (b === "webgpu" && !(await hasAdapter())) {
      skipped.webgpu = "skipped: no WebGPU adapter on this machine";
    } else {
      console.error(`bench: encoder forward at ${size} on ${b} ...`);
      const r = await runChild(b, size, repeat);
      if (typeof r === "string") {
        skipped[b] = r;
        continue;
      }
      seconds[b] = Number(r.seconds.toFixed(3));
      peak[b] = Math.round(r.peakTensorMiB);
      if (r.peakRssMiB !== undefined) rss[b] = Math.round(r.peakRssMiB);
    }
    if (skipped[b]) console.error(`bench: ${b}: ${skipped[b]}`);
  }
  const key = `encoder_forward_${size}`;
  const report = {
    [`${key}_s`]: seconds,
    [`${key}_peak_tensor_mib`]: peak,
    [`${key}_peak_rss_mib`]: rss,
    ...(Object.keys(skipped).length ? { skipped } : {}),
  };
  if (values.json) {
    console.log(JSON.stringify(report));
    return;
  }
  console.log(`SAM ViT-B image encoder, forward ${size}x${size}, batch 1 (random weights)`);
  for (const b of wanted) {
    console.log(
      seconds[b] !== undefined
        ? `  ${b.padEnd(7)} ${seconds[b].toFixed(2).padStart(8)} s   peak tensors ${peak[b]} MiB   peak RSS ${
          rss[b] ?? "?"
        } MiB`
        : `  ${b.padEnd(7)} ${skipped[b]}`,
    );
  }
}

if (import.meta.main) runCli(main);
