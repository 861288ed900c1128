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
}

export interface Bench {
  /** What the figure is, for the report. */
  title: string;
  /** Whether the pure-JS cpu backend is too slow to run it unless asked by name (minutes to hours). */
  heavy: boolean;
  /** repeat: timed repetitions of the forward or step; the fastest counts. */
  run(backend: TfBackend, size: number, repeat: number): Promise<Measure>;
  /** Arguments of bench/torch_encoder.py for the same-shape PyTorch figure, if there is one. */
  torchArgs?: (size: number) => string[];
}

const MIB = 2 ** 20;

async function trainStep(o: Parameters<typeof benchTrainStep>[0]): Promise<Measure> {
  const { result, peak } = await withPeakBytes(() => benchTrainStep(o));
  return { seconds: result.wallMs / 1000, peakTensorMiB: peak / MIB, peakRssMiB: await peakRssMiB() };
}

/** Keyed by the report's names (the encoder and ViT-B step names get the --size, 1024 by default). */
export const BENCHES: Record<string, Bench> = {
  encoder_forward: {
    title: "SAM ViT-B image encoder forward, batch 1 (random weights)",
    heavy: true,
    async run(backend, size, repeat) {
      const r = await encoderBench(backend, { size, repeat, log: () => {} });
      return { seconds: r.seconds, peakTensorMiB: r.peakTensorMiB, peakRssMiB: r.peakRssMiB };
    },
    torchArgs: (size) => ["--size", String(size)],
  },
  train_step_tiny: {
    title: "LoRaMedNet training step, tiny preset, 128 px, batch 4",
    heavy: false,
    run: (backend, _size, repeat) =>
      trainStep({
        backend,
        preset: "tiny",
        imageSize: 128,
        encoderSize: null,
        batchSize: 4,
        steps: repeat + 2,
      }),
  },
  train_step_vit_b: {
    title:
      "LoRaMedNet training step, ViT-B (random weights), 224 px upscaled to the encoder size, batch 1, " +
      "activation checkpointing on",
    heavy: true,
    run: (backend, size, repeat) =>
      trainStep({
        backend,
        preset: "vit_b",
        imageSize: 224,
        encoderSize: size,
        batchSize: 1,
        steps: repeat,
        checkpointBlocks: true,
      }),
    torchArgs: (size) => ["--size", String(size), "--train"],
  },
  epoch_tiny_demo: {
    title: "one epoch of the demo (`deno task train --epochs 1`: 30 phantoms, tiny, 128 px) with its " +
      "validation and test, phantoms made beforehand",
    heavy: false,
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

/** The report's key of a benchmark at an encoder size. */
export const benchKey = (name: string, size: number) =>
  name === "encoder_forward" || name === "train_step_vit_b" ? `${name}_${size}` : name;
