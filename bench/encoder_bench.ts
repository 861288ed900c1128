/**
 * Benchmark: one SAM ViT-B image-encoder forward (random weights, batch 1 unless asked) on the active process's backend,
 * timed from input upload to the embedding read back, with the peak of live tensor bytes and of RSS.
 */
import { tf } from "../engine/tf.ts";
import { type BackendName, selectBackend } from "../engine/backend.ts";
import { PRESETS } from "../model/sam/config.ts";
import { encoderLimits, imageEncoder } from "../model/sam/image_encoder.ts";
import { disposeParams, initSamParams } from "../model/sam/params.ts";
import { peakRssMiB, withPeakBytes } from "./peak.ts";

export interface EncoderBenchResult {
  backend: string;
  /** Input side in pixels (1024 for the paper's setting). */
  size: number;
  /** Fastest of the timed forwards, seconds. */
  seconds: number;
  /** Peak of tfjs's live-tensor accounting during the forward (views count separately, as in tf.profile). */
  peakTensorMiB: number;
  /** Peak resident memory of the whole process (Linux VmHWM), weights included; undefined elsewhere. */
  peakRssMiB?: number;
}

/** Selects backend, builds random ViT-B weights, and times `repeat` encoder forwards at size x size. */
export async function encoderBench(
  backend: Exclude<BackendName, "auto">,
  opts: { size?: number; repeat?: number; batch?: number; log?: (line: string) => void } = {},
): Promise<EncoderBenchResult> {
  const size = opts.size ?? 1024, repeat = opts.repeat ?? 1, batch = opts.batch ?? 1;
  const log = opts.log ?? ((s: string) => console.error(s));
  const { maxBindingBytes } = await selectBackend(backend, {}, log);
  const limits = encoderLimits(maxBindingBytes ?? Infinity);
  const cfg = PRESETS.vit_b;
  const p = initSamParams(cfg, 0);
  const x = tf.randomNormal([batch, size, size, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  let best = Infinity, peak = 0;
  try {
    for (let i = 0; i < repeat; i++) {
      const { result: secs, peak: bytes } = await withPeakBytes(async () => {
        const t0 = performance.now();
        const y = imageEncoder(p, cfg, x, limits); // [B, size/16, size/16, 256]
        await y.data();
        y.dispose();
        return (performance.now() - t0) / 1000;
      });
      log(`encoder forward ${size}x${size} batch ${batch} on ${backend}: ${secs.toFixed(2)} s`);
      best = Math.min(best, secs);
      peak = Math.max(peak, bytes);
    }
  } finally {
    x.dispose();
    disposeParams(p);
  }
  return { backend, size, seconds: best, peakTensorMiB: peak / 2 ** 20, peakRssMiB: await peakRssMiB() };
}
