/** Memory peaks for benchmarks: tfjs's live-tensor bytes and the process's resident set. */
import { tf } from "../engine/tf.ts";

/**
 * Largest value tfjs's byte counter reaches while f runs. tf.profile would read tensors back synchronously
 * (dataSync, which crashes on webgpu in Deno), so this watches the engine's tensor registration instead.
 */
export async function withPeakBytes<T>(f: () => Promise<T>): Promise<{ result: T; peak: number }> {
  const engine = tf.engine() as unknown as {
    state: { numBytes: number };
    trackTensor: (...args: unknown[]) => void;
  };
  const original = engine.trackTensor;
  let peak = engine.state.numBytes;
  engine.trackTensor = function (this: unknown, ...args: unknown[]) {
    original.apply(this, args);
    peak = Math.max(peak, engine.state.numBytes);
  };
  try {
    return { result: await f(), peak };
  } finally {
    engine.trackTensor = original;
  }
}

/** Peak resident memory of this process so far in MiB (Linux VmHWM; the wasm heap lives inside it). */
export async function peakRssMiB(): Promise<number | undefined> {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(await Deno.readTextFile("/proc/self/status"));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}
