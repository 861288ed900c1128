/**
 * `deno task sam-run`: the SAM forward for parity checks. Reads raw_image [1, 3, H, W] (0..255) and box [1, 4]
 * from a safetensors file and writes every tensor of fixtures/reference/tiny_sam.io.safetensors (NCHW, float32).
 * Config, input and checkpoint are all checked before anything runs; a bad one is one line and exit 2.
 */
import { tf } from "../engine/tf.ts";
import { bindingLimit, selectBackend } from "../engine/backend.ts";
import { type HostTensor, toFloat32 } from "../io/host_tensor.ts";
import { readSafetensors, writeSafetensors } from "../io/safetensors.ts";
import { checkWritable, type OutputOptions } from "../io/safe_output.ts";
import { InputError } from "../io/safe_open.ts";
import { readCheckedStateDict } from "../model/checkpoint.ts";
import { loadSamConfig, type SamConfig } from "../model/sam/config.ts";
import { disposeParams, paramsFromStateDict, samParamShapes } from "../model/sam/params.ts";
import { encoderLimits } from "../model/sam/image_encoder.ts";
import { parityOutputs } from "../model/sam/parity_outputs.ts";
import { TRAIN_OPTIONS } from "../pipeline/config.ts";
import { parseCommand, requireFlags } from "../pipeline/flags.ts";
import { path } from "../pipeline/option_schema.ts";
import { runCli } from "../pipeline/run_cli.ts";
import { UserError } from "../errors.ts";

const USAGE = "usage: deno task sam-run --checkpoint F --config F|vit_b|tiny --input IN --output OUT " +
  "[--backend auto|webgpu|wasm|cpu]";

const SHAPE = { checkpoint: path, config: path, input: path, output: path, backend: TRAIN_OPTIONS.backend };

/** Checks the input file's raw_image and box against cfg; returns them as float32 host arrays. */
export function checkInput(tensors: Map<string, HostTensor>, cfg: SamConfig, file: string) {
  const get = (name: string, rank: number, check: (s: number[]) => boolean, want: string) => {
    const t = tensors.get(name);
    if (!t) throw new UserError(`${file}: no tensor "${name}" (need raw_image [1,3,H,W] and box [1,4])`);
    if (t.dtype === "bool") throw new UserError(`${file}: "${name}" has dtype bool, expected a number type`);
    if (t.shape.length !== rank || !check(t.shape)) {
      throw new UserError(`${file}: "${name}" has shape [${t.shape}], expected ${want}`);
    }
    const data = Float32Array.from(toFloat32(t));
    if (!data.every(Number.isFinite)) throw new UserError(`${file}: "${name}" holds NaN or infinite values`);
    return { shape: t.shape, data };
  };
  const s = cfg.image_size;
  const raw = get(
    "raw_image",
    4,
    ([b, c, h, w]) => b === 1 && c === 3 && h >= 1 && w >= 1 && h <= s && w <= s,
    `[1, 3, H, W] with 1 <= H, W <= image_size ${s} (the model's input frame, as Sam.forward takes it)`,
  );
  const box = get("box", 2, ([b, n]) => b === 1 && n === 4, "[1, 4] (x0, y0, x1, y1)");
  return { raw, box };
}

async function readInput(path: string): Promise<Map<string, HostTensor>> {
  try {
    return await readSafetensors(path);
  } catch (err) {
    // The safe-open helper's InputError names the file; these two keep sam-run's own wording.
    if (err instanceof InputError && err.message === `${path}: not found`) {
      throw new UserError(`${path}: no such input file`);
    }
    if (err instanceof InputError && err.message === `${path}: is a folder, not a file`) {
      throw new UserError(`${path}: is a directory, not an input file`);
    }
    throw err;
  }
}

export async function main(args: string[]): Promise<void> {
  const { options: values, help } = parseCommand(args, SHAPE, { defaults: { backend: "auto" } });
  if (help) return console.log(USAGE);
  requireFlags(values, ["checkpoint", "config", "input", "output"], USAGE);
  const backend = values.backend!;
  const cfg = await loadSamConfig(values.config!);
  const { raw, box } = checkInput(await readInput(values.input!), cfg, values.input!);
  // The output is checked (not an input, not a device or folder, its folder writable) before the model runs.
  const inputs = [values.input!, values.checkpoint!, values.config!];
  const out: OutputOptions = { label: "--output", inputs };
  await checkWritable(values.output!, out);
  const sd = await readCheckedStateDict(values.checkpoint!, samParamShapes(cfg));
  try {
    await selectBackend(backend, {}, (line) => console.error(line));
  } catch (err) {
    throw new UserError(`--backend ${backend}: ${(err as Error).message}`);
  }
  const p = paramsFromStateDict(sd, cfg, values.checkpoint!);
  sd.clear();
  const t0 = performance.now();
  const rawT = tf.tensor4d(raw.data, raw.shape as [number, number, number, number]);
  const boxT = tf.tensor2d(box.data, [1, 4]);
  const outputs = parityOutputs(p, cfg, rawT, boxT, encoderLimits(bindingLimit()));
  const host = new Map<string, HostTensor>();
  try {
    for (const [name, t] of outputs) {
      host.set(name, { dtype: "float32", shape: t.shape, data: Float32Array.from(await t.data()) });
    }
  } finally {
    tf.dispose([...outputs.values(), rawT, boxT]);
    disposeParams(p);
  }
  await writeSafetensors(values.output!, host, undefined, out);
  const secs = ((performance.now() - t0) / 1000).toFixed(2);
  console.error(`sam-run: wrote ${host.size} tensors to ${values.output} in ${secs} s on ${tf.getBackend()}`);
}

if (import.meta.main) runCli(main);
