/**
 * The named benchmarks of `deno task bench`: what each measures on one tfjs backend (run in a child process
 * of its own, see bench/main.ts) and, where a same-shape PyTorch figure makes sense, how to get it.
 */
import { tf } from "../engine/tf.ts";
import type { BackendName } from "../engine/backend.ts";
import { DEMO_DEFAULTS } from "../pipeline/config.ts";
import { makeDemoData } from "../pipeline/demo_data.ts";
import { runTraining } from "../pipeline/train_run.ts";
import { encoderBench } from "./encoder_bench.ts";
import { peakRssMiB, withPeakBytes } from "./peak.ts";
import { benchTrainStep } from "./train_bench.ts";

export type TfBackend = Exclude<BackendName, "auto">;

/** One measurement: seconds (the fastest timed repeat), with the peaks of tensor bytes and resident memory. */
export interface Measure {
  seconds: number;
  peakTensorMiB?: number;
  peakRssMiB?: number;
  /** Peak GPU memory in use while it ran (nvidia-smi), where there is one. */
  peakGpuMiB?: number;
  /** Training steps run, where the benchmark is a whole run. */
  steps?: number;
}

/** What the command line sets for every benchmark (each uses what applies to it). */
export interface BenchOptions {
  /** Encoder side in pixels for the ViT-B benchmarks (1024 = the paper's). */
  size: number;
  /** Timed repetitions of a forward or step; the fastest counts. */
  repeat: number;
  /** Images per forward or step, for the ViT-B benchmarks. */
  batch: number;
  /** Activation checkpointing in the ViT-B training benchmarks. */
  checkpointBlocks: boolean;
  /** Side of the model's input slices in the ViT-B training benchmarks (224, the paper's). */
  imageSize: number;
  /** Steps of the short ViT-B training run. */
  steps: number;
}

export interface Bench {
  /** What the figure is, for the report. */
  title: string;
  /** Whether the pure-JS cpu backend is too slow to run it unless asked by name (minutes to hours). */
  heavy: boolean;
  /** Run only when named in --only (a whole training run: bench/gpu.sh asks for it). */
  onlyWhenNamed?: boolean;
  run(backend: TfBackend, o: BenchOptions): Promise<Measure>;
  /** Arguments of bench/torch_encoder.py for the same-shape PyTorch figure, if there is one. */
  torchArgs?: (o: BenchOptions) => string[];
  /** Which options name the figure: the report key adds them (encoder_forward_1024_b4_nockpt). */
  keyed: ("size" | "batch" | "checkpointBlocks")[];
}

const MIB = 2 ** 20;

async function trainStep(o: Parameters<typeof benchTrainStep>[0]): Promise<Measure> {
  const { result, peak } = await withPeakBytes(() => benchTrainStep(o));
  return { seconds: result.wallMs / 1000, peakTensorMiB: peak / MIB, peakRssMiB: await peakRssMiB() };
}

/** Keyed by the report's names (the encoder and ViT-B step names get the --size, 1024 by default). */
export const BENCHES: Record<string, Bench> = {
  encoder_forward: {
    title: "SAM ViT-B image encoder forward (random weights)",
    heavy: true,
    async run(backend, { size, repeat, batch }) {
      const r = await encoderBench(backend, { size, repeat, batch, log: () => {} });
      return { seconds: r.seconds, peakTensorMiB: r.peakTensorMiB, peakRssMiB: r.peakRssMiB };
    },
    torchArgs: (o) => ["--size", String(o.size), "--batch", String(o.batch)],
    keyed: ["size", "batch"],
  },
  train_step_tiny: {
    title: "LoRaMedNet training step, tiny preset, 128 px, batch 4",
    heavy: false,
    run: (backend, { repeat }) =>
      trainStep({
        backend,
        preset: "tiny",
        imageSize: 128,
        encoderSize: null,
        batchSize: 4,
        steps: repeat + 2,
      }),
    keyed: [],
  },
  train_step_vit_b: {
    title:
      "LoRaMedNet training step, ViT-B (random weights), --image-size slices upscaled to the encoder size",
    heavy: true,
    run: (backend, { size, repeat, batch, checkpointBlocks, imageSize }) =>
      trainStep({
        backend,
        preset: "vit_b",
        imageSize,
        encoderSize: size,
        batchSize: batch,
        steps: repeat,
        checkpointBlocks,
      }),
    torchArgs: (o) => ["--size", String(o.size), "--batch", String(o.batch), "--train"],
    keyed: ["size", "batch", "checkpointBlocks"],
  },
  train_run_vit_b: {
    title: "a short ViT-B LoRaMedNet training run on phantoms (random weights): --steps steps of --batch " +
      "slices through the whole data path, then validation and test; seconds for all of it",
    heavy: true,
    onlyWhenNamed: true,
    async run(backend, { size, batch, steps, imageSize }) {
      const dir = await Deno.makeTempDir({ prefix: "bench_vitb_" });
      try {
        const quiet = () => {};
        // Enough phantom patients (each gives a dozen or more training slices, ED + ES) for `steps` batches in one
        // epoch, with 15% each held out for validation and test; the steps actually run are counted below.
        const patients = Math.max(3, Math.ceil((steps * batch) / 12 / 0.7));
        const data = await makeDemoData(`${dir}/phantoms`, patients, 0, quiet);
        const cfg = {
          ...DEMO_DEFAULTS,
          data,
          preset: "vit_b" as const,
          weights: "random",
          imageSize,
          encoderSize: size,
          batchSize: batch,
          trainPatients: "all" as const,
          epochs: 1,
          logEvery: 1,
          backend,
          out: `${dir}/run`,
        };
        const t0 = performance.now();
        const { peak } = await withPeakBytes(() => runTraining(cfg, { log: quiet }));
        const seconds = (performance.now() - t0) / 1000;
        const log = await Deno.readTextFile(`${dir}/run/log.jsonl`);
        const ran = log.split("\n").filter((l) => l.includes('"type":"step"')).length;
        return { seconds, steps: ran, peakTensorMiB: peak / MIB, peakRssMiB: await peakRssMiB() };
      } finally {
        tf.disposeVariables();
        await Deno.remove(dir, { recursive: true });
      }
    },
    keyed: ["size", "batch"],
  },
  epoch_tiny_demo: {
    title: "one epoch of the demo (`deno task train --epochs 1`: 30 phantoms, tiny, 128 px) with its " +
      "validation and test, phantoms made beforehand",
    heavy: false,
    keyed: [],
    async run(backend) {
      const dir = await Deno.makeTempDir({ prefix: "bench_epoch_" });
      try {
        const quiet = () => {};
        const data = await makeDemoData(`${dir}/phantoms`, DEMO_DEFAULTS.demoPatients, 0, quiet);
        const cfg = { ...DEMO_DEFAULTS, data, epochs: 1, backend, out: `${dir}/run` };
        const t0 = performance.now();
        const { peak } = await withPeakBytes(() => runTraining(cfg, { log: quiet }));
        const seconds = (performance.now() - t0) / 1000;
        return { seconds, peakTensorMiB: peak / MIB, peakRssMiB: await peakRssMiB() };
      } finally {
        tf.disposeVariables();
        await Deno.remove(dir, { recursive: true });
      }
    },
  },
};

/** The report's key of a benchmark: its name plus the options that shape it where they are not the default. */
export function benchKey(name: string, o: BenchOptions): string {
  const keyed = BENCHES[name].keyed;
  return name + (keyed.includes("size") ? `_${o.size}` : "") +
    (keyed.includes("batch") && o.batch !== 1 ? `_b${o.batch}` : "") +
    (keyed.includes("checkpointBlocks") && !o.checkpointBlocks ? "_nockpt" : "");
}
