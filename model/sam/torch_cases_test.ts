/**
 * Parity with the official PyTorch SAM beyond the shared fixture (patch sizes, head counts, window padding,
 * all-global encoders, points, masks, box+points, the batch-1 prompt broadcast, other input sizes), with
 * cases generated at test time by torch_cases.py. Runs only where python with torch and the official
 * segment_anything code are present (SAM_TORCH_PYTHON, SAM_OFFICIAL_SRC, or the usual places); else skipped.
 */
import assert from "node:assert/strict";
import { tf } from "../../engine/tf.ts";
import { readSafetensors } from "../../io/safetensors.ts";
import type { HostTensor } from "../../io/host_tensor.ts";
import { readStateDict } from "../checkpoint.ts";
import { parseSamConfig } from "./config.ts";
import { imageEncoder } from "./image_encoder.ts";
import { maskDecoder } from "./mask_decoder.ts";
import { disposeParams, paramsFromStateDict } from "./params.ts";
import { getDensePe, promptEncoder, type Prompts } from "./prompt_encoder.ts";
import { decodePrompts, encodeImage } from "./sam.ts";
import { compare, toTensor } from "./test_util.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MIRROR = `${ROOT}../.mirror/facebookresearch+segment-anything/repo`;

async function run(cmd: string, args: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
    return out.success;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** A python with torch and numpy, a folder holding segment_anything/, or the reason there is none. */
async function findTools(tmp: string): Promise<{ python: string; src: string } | string> {
  const pythons = [Deno.env.get("SAM_TORCH_PYTHON"), "python3", "/usr/bin/python3"].filter((p): p is string =>
    !!p
  );
  let python: string | undefined;
  for (const p of pythons) {
    if (await run(p, ["-c", "import torch, numpy"])) {
      python = p;
      break;
    }
  }
  if (!python) return `no python with torch and numpy (tried ${pythons.join(", ")}; set SAM_TORCH_PYTHON)`;
  const src = Deno.env.get("SAM_OFFICIAL_SRC");
  if (src) {
    return (await exists(`${src}/segment_anything/modeling`))
      ? { python, src }
      : `SAM_OFFICIAL_SRC=${src} holds no segment_anything/modeling`;
  }
  if (await exists(MIRROR)) {
    const archive = `${tmp}/official.tar`;
    const ok =
      await run("git", ["--git-dir", MIRROR, "archive", "-o", archive, "HEAD", "segment_anything"]) &&
      await run("tar", ["-xf", archive, "-C", tmp]);
    if (ok) return { python, src: tmp };
  }
  return "official segment_anything code not found (set SAM_OFFICIAL_SRC to a folder holding segment_anything/)";
}

interface Case {
  name: string;
  kind: "full" | "resize";
  config: Record<string, unknown>;
  input_size?: number;
}

const tmp = await Deno.makeTempDir({ prefix: "sam_torch_cases_" });
const tools = await findTools(tmp);
let cases: Case[] = [];
if (typeof tools === "string") {
  console.error(`torch_cases_test: skipped: ${tools}`);
} else {
  const gen = await new Deno.Command(tools.python, {
    args: [new URL("./torch_cases.py", import.meta.url).pathname, tools.src, tmp],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!gen.success) throw new Error(`torch_cases.py failed: ${new TextDecoder().decode(gen.stderr)}`);
  cases = JSON.parse(await Deno.readTextFile(`${tmp}/cases.json`));
}

const nhwc = (x: tf.Tensor) => tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
const nchw = (x: tf.Tensor) => tf.transpose(x, [0, 3, 1, 2]);

/** Worst relative error of the case being checked, for the log. */
let worst = { rel: 0, name: "" };

async function check(failed: string[], name: string, ours: tf.Tensor, ref: HostTensor | undefined) {
  if (!ref) throw new Error(`reference lacks ${name}`);
  const { err, max } = await compare(ours, ref);
  if (!(err <= 1e-4 * max)) failed.push(`${name}: ${err} > 1e-4 x ${max}`);
  if (max > 0 && err / max >= worst.rel) worst = { rel: err / max, name };
}

async function fullCase(c: Case, io: Map<string, HostTensor>, failed: string[]) {
  const cfg = parseSamConfig(c.config, c.name);
  const p = paramsFromStateDict(await readStateDict(`${tmp}/${c.name}.ckpt.safetensors`), cfg, c.name);
  const t = (k: string) => toTensor(io.get(k)!);
  try {
    const image = encodeImage(p, cfg, nhwc(t("raw_image")));
    const pe = getDensePe(p, cfg);
    await check(failed, "preprocessed_image", nchw(image.preprocessed), io.get("preprocessed_image"));
    await check(failed, "image_embeddings", nchw(image.embeddings), io.get("image_embeddings"));
    await check(failed, "dense_pe", nchw(pe), io.get("dense_pe"));
    const points = (k: string) => ({
      coords: t(`${k}.coords`) as tf.Tensor3D,
      labels: t(`${k}.labels`) as tf.Tensor2D,
    });
    const sets: [string, Prompts, boolean][] = [
      ["none", {}, false],
      ["box", { boxes: t("box") as tf.Tensor2D }, true],
      ["points", { points: points("points") }, true],
      ["points_box", { points: points("points_box"), boxes: t("box") as tf.Tensor2D }, false],
      ["mask", { masks: nhwc(t("mask_input")) }, false],
    ];
    for (const [key, prompts, multi] of sets) {
      const d = decodePrompts(p, cfg, image, prompts, multi, pe);
      await check(failed, `${key}.sparse`, d.sparse, io.get(`${key}.sparse`));
      await check(failed, `${key}.dense`, nchw(d.dense), io.get(`${key}.dense`));
      await check(failed, `${key}.low_res_masks`, d.lowResMasks, io.get(`${key}.low_res_masks`));
      await check(failed, `${key}.iou`, d.iou, io.get(`${key}.iou`));
      if (key === "none") {
        await check(failed, "none.masks_original_size", d.masks, io.get("none.masks_original_size"));
      }
    }
    const emb2 = imageEncoder(p, cfg, encodeImage(p, cfg, nhwc(t("batch2.raw_image"))).preprocessed);
    await check(failed, "batch2.image_embeddings", nchw(emb2), io.get("batch2.image_embeddings"));
    const { sparse, dense } = promptEncoder(p, cfg);
    const out = maskDecoder(p, cfg, { imageEmbeddings: emb2, imagePe: pe, sparse, dense }, false);
    await check(failed, "batch2.low_res_masks", out.masks, io.get("batch2.low_res_masks"));
    await check(failed, "batch2.iou", out.iou, io.get("batch2.iou"));
  } finally {
    disposeParams(p);
  }
}

async function resizeCase(c: Case, io: Map<string, HostTensor>, failed: string[]) {
  const cfg = parseSamConfig(c.config, c.name);
  const p = paramsFromStateDict(await readStateDict(`${tmp}/${c.name}.ckpt.safetensors`), cfg, c.name);
  try {
    const x = nhwc(toTensor(io.get("input")!));
    await check(
      failed,
      `image_embeddings at ${c.input_size}`,
      nchw(imageEncoder(p, cfg, x)),
      io.get("image_embeddings"),
    );
  } finally {
    disposeParams(p);
  }
}

Deno.test({
  name: "sam parity with official PyTorch cases generated at test time (cpu)",
  ignore: typeof tools === "string",
  async fn(t) {
    await tf.setBackend("cpu");
    try {
      for (const c of cases) {
        await t.step(`${c.kind} case ${c.name}`, async () => {
          const io = await readSafetensors(`${tmp}/${c.name}.io.safetensors`);
          const failed: string[] = [];
          worst = { rel: 0, name: "" };
          tf.engine().startScope();
          try {
            await (c.kind === "full" ? fullCase(c, io, failed) : resizeCase(c, io, failed));
          } finally {
            tf.engine().endScope();
          }
          console.error(`${c.name}: worst max|d|/max|ref| ${worst.rel.toExponential(2)} (${worst.name})`);
          assert.deepEqual(failed, []);
        });
      }
      assert.ok(cases.length >= 5);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
if (typeof tools === "string") await Deno.remove(tmp, { recursive: true });
