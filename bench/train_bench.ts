/**
 * Training-step benchmark per backend: LoRaMedNet forward + backward + Adam on random data, wall and CPU
 * milliseconds per step, and whether tf.memory().numTensors stayed flat. Not a test: run it by hand,
 * `deno run -A bench/train_bench.ts [--preset tiny|vit_b] [--backends cpu,wasm,webgpu] [--steps 5] [--json]`.
 */
import process from "node:process";
import { tf } from "../engine/tf.ts";
import { parseCommand } from "../pipeline/flags.ts";
import { flag, int, oneOf, path } from "../pipeline/option_schema.ts";
import { type BackendName, selectBackend } from "../engine/backend.ts";
import { createLoraMedNet } from "../model/loramednet.ts";
import { Adam } from "../engine/optimizer.ts";
import { trainStep } from "../stages/train.ts";
import { NUM_CLASSES } from "../stages/volume.ts";

export interface StepBench {
  backend: string;
  preset: string;
  imageSize: number;
  encoderSize: number;
  batchSize: number;
  steps: number;
  /** Milliseconds per step, after one warm-up step. */
  wallMs: number;
  cpuMs: number;
  forwardMs: number;
  numTensorsFlat: boolean;
  checkpointBlocks: boolean;
  /** Peak resident memory of the process during the steps, bytes (the wasm heap lives inside it). */
  peakRssBytes: number;
}

/** Times `steps` training steps of one configuration on one backend. */
export async function benchTrainStep(o: {
  backend: Exclude<BackendName, "auto">;
  preset: "tiny" | "vit_b";
  imageSize: number;
  encoderSize: number | null;
  batchSize: number;
  steps: number;
  checkpointBlocks?: boolean;
}): Promise<StepBench> {
  const { maxBindingBytes } = await selectBackend(o.backend, {}, () => {});
  const { model } = await createLoraMedNet({
    maxBindingBytes,
    method: "loramednet",
    preset: o.preset,
    weights: null,
    loraRank: 4,
    imageSize: o.imageSize,
    encoderSize: o.encoderSize,
    headTopChannel: null,
    numClasses: NUM_CLASSES,
    seed: 0,
    checkpointBlocks: o.checkpointBlocks,
  });
  let peakRss = Deno.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, Deno.memoryUsage().rss)), 200);
  const opt = new Adam(model.trainable, { lr: 5e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 });
  const s = o.imageSize;
  const image = tf.randomNormal([o.batchSize, s, s, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const label = tf.randomUniformInt([o.batchSize, s, s], 0, 4, 2) as tf.Tensor3D;
  const batch = { ids: [], items: [], image, label };
  try {
    await trainStep(model, opt, batch);
    const counts: number[] = [];
    const t0 = performance.now(), c0 = process.cpuUsage();
    for (let i = 0; i < o.steps; i++) {
      await trainStep(model, opt, batch);
      counts.push(tf.memory().numTensors);
    }
    const cpu = process.cpuUsage(c0);
    const wallMs = (performance.now() - t0) / o.steps;
    const f0 = performance.now();
    const y = model.forward(image);
    await y.data();
    y.dispose();
    return {
      backend: o.backend,
      preset: o.preset,
      imageSize: s,
      encoderSize: model.spec.sam.image_size,
      batchSize: o.batchSize,
      steps: o.steps,
      wallMs,
      cpuMs: (cpu.user + cpu.system) / 1000 / o.steps,
      forwardMs: performance.now() - f0,
      checkpointBlocks: !!o.checkpointBlocks,
      peakRssBytes: Math.max(peakRss, Deno.memoryUsage().rss),
      numTensorsFlat: counts.every((c) => c === counts[0]),
    };
  } finally {
    clearInterval(sampler);
    tf.dispose([image, label]);
    opt.dispose();
    model.dispose();
  }
}

async function main(args: string[]) {
  const { options: values, help } = parseCommand(args, {
    preset: oneOf(["tiny", "vit_b"]),
    backends: path,
    steps: int(1),
    imageSize: int(16),
    encoderSize: int(16),
    batchSize: int(1),
    checkpointBlocks: oneOf(["on", "off"]),
    json: flag,
  }, { defaults: { preset: "tiny", backends: "cpu,wasm,webgpu", steps: 5, batchSize: 4 } });
  if (help) {
    return console.log(
      "usage: deno run -A bench/train_bench.ts [--preset tiny|vit_b] [--backends cpu,wasm,webgpu] [--steps 5] [--image-size S] [--encoder-size S] [--batch-size 4] [--checkpoint-blocks on|off] [--json]",
    );
  }
  const preset = values.preset!;
  const hasGpu = !!(await (navigator as Navigator & { gpu?: GPU }).gpu?.requestAdapter().catch(() => null));
  const rows: StepBench[] = [];
  for (const b of values.backends!.split(",") as Exclude<BackendName, "auto">[]) {
    if (b === "webgpu" && !hasGpu) {
      console.error("webgpu: skipped (no adapter)");
      continue;
    }
    rows.push(
      await benchTrainStep({
        backend: b,
        preset,
        steps: values.steps!,
        imageSize: values.imageSize ??
          (preset === "vit_b" ? 224 : 64),
        encoderSize: values.encoderSize ?? null,
        batchSize: values.batchSize!,
        checkpointBlocks: (values.checkpointBlocks ?? (preset === "vit_b" ? "on" : "off")) === "on",
      }),
    );
    const r = rows.at(-1)!;
    if (!values.json) {
      console.log(
        `${r.backend.padEnd(7)} ${r.preset} ${r.imageSize}->${r.encoderSize} batch ${r.batchSize}: ` +
          `${r.wallMs.toFixed(0)} ms/step wall, ${r.cpuMs.toFixed(0)} ms CPU, forward ${
            r.forwardMs.toFixed(0)
          } ms, ` +
          `numTensors ${r.numTensorsFlat ? "flat" : "GROWING"}`,
      );
    }
  }
  if (values.json) console.log(JSON.stringify(rows));
}

if (import.meta.main) {
  await main(Deno.args);
}
