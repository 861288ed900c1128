/**
 * `deno task bench [--json] [--backends wasm,webgpu,cpu,torch] [--only NAME,...] [--size 1024] [--repeat N]`: the named
 * benchmarks of bench/benches.ts, each backend and each benchmark in its own process so one's memory (the
 * wasm heap never shrinks) and RSS peak do not colour another's. "torch" is the same-shape PyTorch figure
 * (bench/torch_encoder.py under /usr/bin/python3 or python3 with torch), measured right beside ours.
 */
import { BENCHES, benchKey, type BenchOptions, type Measure } from "./benches.ts";
import { parseCommand } from "../pipeline/flags.ts";
import { flag, int, oneOf, path } from "../pipeline/option_schema.ts";
import { runCli } from "../pipeline/run_cli.ts";
import { UserError } from "../errors.ts";

const TF_BACKENDS = ["wasm", "webgpu", "cpu"] as const;
const ALL = [...TF_BACKENDS, "torch"] as const;
type Backend = typeof ALL[number];

const USAGE = `usage: deno task bench [--json] [--backends ${ALL.join(",")}] [--only ${
  Object.keys(BENCHES).join(",")
}]
  [--size 1024] [--batch 1] [--repeat 1] [--checkpoint-blocks on|off] [--steps 20] [--image-size 224]`;

async function hasAdapter(): Promise<boolean> {
  return !!(await (navigator as Navigator & { gpu?: GPU }).gpu?.requestAdapter().catch(() => null));
}

/** A python3 that can import torch, or undefined. */
async function torchPython(): Promise<string | undefined> {
  for (const py of ["/usr/bin/python3", "python3"]) {
    const ok = await new Deno.Command(py, { args: ["-c", "import torch"], stdout: "null", stderr: "null" })
      .output().then((o) => o.success, () => false);
    if (ok) return py;
  }
  return undefined;
}

/**
 * Samples the GPU's used memory (nvidia-smi, every 100 ms) until stop() is called; stop() gives the peak
 * in MiB, or undefined where there is no nvidia-smi. The device is used by one benchmark at a time, so the
 * peak is that benchmark's (plus the driver's own baseline, reported as measured).
 */
function gpuMemorySampler(): { stop(): Promise<number | undefined> } {
  let child: Deno.ChildProcess | undefined;
  try {
    child = new Deno.Command("nvidia-smi", {
      args: ["--query-gpu=memory.used", "--format=csv,noheader,nounits", "-lms", "100"],
      stdout: "piped",
      stderr: "null",
    }).spawn();
  } catch {
    return { stop: () => Promise.resolve(undefined) };
  }
  const text = new Response(child.stdout).text();
  return {
    async stop() {
      try {
        child!.kill("SIGTERM");
      } catch { /* already gone */ }
      const values = (await text).split("\n").map(Number).filter((v) => v > 0);
      await child!.status;
      return values.length ? Math.max(...values) : undefined;
    },
  };
}

/** Runs a child that prints its result as the last stdout line; its log passes through on stderr. */
async function runChild(cmd: string, args: string[]): Promise<Measure | string> {
  const gpu = gpuMemorySampler();
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "inherit" }).output();
  const peakGpuMiB = await gpu.stop();
  if (!out.success) {
    return out.signal
      ? `failed: killed by ${out.signal}`
      : `failed with exit code ${out.code} (see the log above)`;
  }
  return { ...JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!), peakGpuMiB };
}

/** Why a backend does not run a benchmark here, or undefined when it does. */
async function whyNot(b: Backend, name: string, asked: boolean, py: string | undefined, size: number) {
  const bench = BENCHES[name];
  if (b === "torch") {
    if (!bench.torchArgs) return "";
    return py ? undefined : "skipped: no python3 with torch on this machine";
  }
  if (b === "cpu" && bench.heavy && !asked && size >= 512) {
    return "skipped: the pure-JS cpu backend (~1 GFLOP/s) would take many minutes; pass --backends cpu";
  }
  if (b === "webgpu" && !(await hasAdapter())) return "skipped: no WebGPU adapter on this machine";
  return undefined;
}

export async function main(args: string[]): Promise<void> {
  const { options: o, help } = parseCommand(args, {
    json: flag,
    backends: path,
    only: path,
    size: int(16),
    repeat: int(1),
    batch: int(1, 64),
    checkpointBlocks: oneOf(["on", "off"]),
    steps: int(1),
    imageSize: int(16),
    child: oneOf(TF_BACKENDS),
  }, { defaults: { size: 1024, repeat: 1, batch: 1, checkpointBlocks: "on", steps: 20, imageSize: 224 } });
  if (help) return console.log(USAGE);
  const size = o.size!;
  const bo: BenchOptions = {
    size,
    repeat: o.repeat!,
    batch: o.batch!,
    checkpointBlocks: o.checkpointBlocks === "on",
    steps: o.steps!,
    imageSize: o.imageSize!,
  };
  if (size % 16) throw new UserError(`--size: ${size} is not a multiple of the patch size 16`);
  const list = (s: string | undefined) => s?.split(",").map((x) => x.trim()).filter(Boolean);
  const names = list(o.only) ?? Object.keys(BENCHES).filter((n) => !BENCHES[n].onlyWhenNamed);
  const unknownName = names.filter((n) => !(n in BENCHES));
  if (unknownName.length) {
    throw new UserError(
      `--only: unknown ${unknownName.join(", ")} (expected ${Object.keys(BENCHES).join(", ")})`,
    );
  }
  if (o.child) {
    console.log(JSON.stringify(await BENCHES[names[0]].run(o.child, bo)));
    return;
  }
  const asked = list(o.backends);
  const bad = asked?.filter((b) => !ALL.includes(b as Backend)) ?? [];
  if (bad.length) {
    throw new UserError(`--backends: unknown ${bad.join(", ")} (expected a list of ${ALL.join(", ")})`);
  }
  const backends = (asked ?? ALL) as Backend[];
  const py = backends.includes("torch") ? await torchPython() : undefined;
  const report: Record<string, Record<string, number | string>> = {};
  const put = (key: string, b: string, v: number | string | undefined) => {
    if (v !== undefined) (report[key] ??= {})[b] = typeof v === "number" ? Number(v.toFixed(3)) : v;
  };
  for (const name of names) {
    const key = benchKey(name, bo);
    for (const b of backends) {
      const why = await whyNot(b, name, !!asked?.includes(b), py, size);
      if (why === "") continue;
      let r: Measure | string = why ?? "";
      if (why === undefined) {
        console.error(`bench: ${key} on ${b} ...`);
        r = b === "torch"
          ? await runChild(py!, [
            new URL("torch_encoder.py", import.meta.url).pathname,
            ...BENCHES[name].torchArgs!(bo),
          ])
          : await runChild(Deno.execPath(), [
            "run",
            "-A",
            new URL(import.meta.url).pathname,
            "--child",
            b,
            "--only",
            name,
            "--size",
            String(size),
            "--repeat",
            String(o.repeat),
            "--batch",
            String(o.batch),
            "--checkpoint-blocks",
            o.checkpointBlocks!,
            "--steps",
            String(o.steps),
            "--image-size",
            String(o.imageSize),
          ]);
      }
      if (typeof r === "string") {
        put(`${key}_skipped`, b, r);
        console.error(`bench: ${key} on ${b}: ${r}`);
        continue;
      }
      put(`${key}_s`, b, r.seconds);
      put(`${key}_peak_tensor_mib`, b, r.peakTensorMiB);
      put(`${key}_peak_rss_mib`, b, r.peakRssMiB);
      put(`${key}_peak_gpu_mib`, b, r.peakGpuMiB);
      put(`${key}_steps`, b, r.steps);
    }
  }
  const machine = { cores: navigator.hardwareConcurrency, deno: Deno.version.deno, os: Deno.build.os };
  if (o.json) return console.log(JSON.stringify({ ...report, machine }));
  console.log(`machine: ${machine.cores} cores, Deno ${machine.deno}`);
  for (const name of names) {
    const key = benchKey(name, bo);
    console.log(`${key}: ${BENCHES[name].title}`);
    for (const b of backends) {
      const s = report[`${key}_s`]?.[b], skip = report[`${key}_skipped`]?.[b];
      if (s !== undefined) {
        const tensors = report[`${key}_peak_tensor_mib`]?.[b], rss = report[`${key}_peak_rss_mib`]?.[b];
        const gpu = report[`${key}_peak_gpu_mib`]?.[b], steps = report[`${key}_steps`]?.[b];
        console.log(
          `  ${b.padEnd(7)} ${Number(s).toFixed(2).padStart(9)} s` +
            (tensors !== undefined ? `   peak tensors ${Math.round(Number(tensors))} MiB` : "") +
            `   peak RSS ${rss !== undefined ? Math.round(Number(rss)) : "?"} MiB` +
            (gpu !== undefined ? `   peak GPU ${gpu} MiB` : "") +
            (steps !== undefined ? `   ${steps} steps` : ""),
        );
      } else if (skip !== undefined) console.log(`  ${b.padEnd(7)} ${skip}`);
    }
  }
}

if (import.meta.main) runCli(main);
