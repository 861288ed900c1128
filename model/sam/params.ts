/**
 * SAM parameters as a Map keyed by the official state-dict names: the exact key set and shapes a config
 * implies (in the official order), loading from a checked state dict, and seeded random initialisation.
 */
import { tf } from "../../engine/tf.ts";
import { Rng } from "../../engine/rng.ts";
import { type HostTensor, toFloat32 } from "../../io/host_tensor.ts";
import { checkStrict } from "../checkpoint.ts";
import { embeddingSize, type SamConfig } from "./config.ts";
import type { Params } from "./layers.ts";

export type { Params };

type Shapes = Map<string, number[]>;

function linearShapes(m: Shapes, pre: string, inp: number, out: number, bias = true): void {
  m.set(`${pre}.weight`, [out, inp]);
  if (bias) m.set(`${pre}.bias`, [out]);
}

function normShapes(m: Shapes, pre: string, c: number): void {
  m.set(`${pre}.weight`, [c]);
  m.set(`${pre}.bias`, [c]);
}

function encoderShapes(m: Shapes, cfg: SamConfig): void {
  const e = cfg.embed_dim, g = embeddingSize(cfg), head = e / cfg.num_heads;
  m.set("image_encoder.pos_embed", [1, g, g, e]);
  m.set("image_encoder.patch_embed.proj.weight", [e, 3, cfg.patch_size, cfg.patch_size]);
  m.set("image_encoder.patch_embed.proj.bias", [e]);
  for (let i = 0; i < cfg.depth; i++) {
    const b = `image_encoder.blocks.${i}`;
    const span = cfg.global_attn_indexes.includes(i) || cfg.window_size === 0 ? g : cfg.window_size;
    normShapes(m, `${b}.norm1`, e);
    m.set(`${b}.attn.rel_pos_h`, [2 * span - 1, head]);
    m.set(`${b}.attn.rel_pos_w`, [2 * span - 1, head]);
    linearShapes(m, `${b}.attn.qkv`, e, 3 * e);
    linearShapes(m, `${b}.attn.proj`, e, e);
    normShapes(m, `${b}.norm2`, e);
    const hidden = Math.round(e * cfg.mlp_ratio);
    linearShapes(m, `${b}.mlp.lin1`, e, hidden);
    linearShapes(m, `${b}.mlp.lin2`, hidden, e);
  }
  m.set("image_encoder.neck.0.weight", [cfg.out_chans, e, 1, 1]);
  normShapes(m, "image_encoder.neck.1", cfg.out_chans);
  m.set("image_encoder.neck.2.weight", [cfg.out_chans, cfg.out_chans, 3, 3]);
  normShapes(m, "image_encoder.neck.3", cfg.out_chans);
}

function promptEncoderShapes(m: Shapes, cfg: SamConfig): void {
  const c = cfg.out_chans, mc = cfg.mask_in_chans;
  m.set("prompt_encoder.pe_layer.positional_encoding_gaussian_matrix", [2, c / 2]);
  for (let i = 0; i < 4; i++) m.set(`prompt_encoder.point_embeddings.${i}.weight`, [1, c]);
  m.set("prompt_encoder.not_a_point_embed.weight", [1, c]);
  const ds = "prompt_encoder.mask_downscaling";
  m.set(`${ds}.0.weight`, [mc / 4, 1, 2, 2]);
  m.set(`${ds}.0.bias`, [mc / 4]);
  normShapes(m, `${ds}.1`, mc / 4);
  m.set(`${ds}.3.weight`, [mc, mc / 4, 2, 2]);
  m.set(`${ds}.3.bias`, [mc]);
  normShapes(m, `${ds}.4`, mc);
  m.set(`${ds}.6.weight`, [c, mc, 1, 1]);
  m.set(`${ds}.6.bias`, [c]);
  m.set("prompt_encoder.no_mask_embed.weight", [1, c]);
}

/** Keys of one two-way transformer attention (q/k/v project dim -> dim/downsample, out back). */
function attnShapes(m: Shapes, pre: string, dim: number, internal: number): void {
  for (const n of ["q", "k", "v"]) linearShapes(m, `${pre}.${n}_proj`, dim, internal);
  linearShapes(m, `${pre}.out_proj`, internal, dim);
}

/** The TwoWayTransformer's keys under prefix (also used by heads that reuse it). */
export function twoWayTransformerShapes(
  m: Shapes,
  pre: string,
  dim: number,
  depth: number,
  mlpDim: number,
): void {
  for (let i = 0; i < depth; i++) {
    const l = `${pre}.layers.${i}`;
    attnShapes(m, `${l}.self_attn`, dim, dim);
    normShapes(m, `${l}.norm1`, dim);
    attnShapes(m, `${l}.cross_attn_token_to_image`, dim, dim / 2);
    normShapes(m, `${l}.norm2`, dim);
    linearShapes(m, `${l}.mlp.lin1`, dim, mlpDim);
    linearShapes(m, `${l}.mlp.lin2`, mlpDim, dim);
    normShapes(m, `${l}.norm3`, dim);
    normShapes(m, `${l}.norm4`, dim);
    attnShapes(m, `${l}.cross_attn_image_to_token`, dim, dim / 2);
  }
  attnShapes(m, `${pre}.final_attn_token_to_image`, dim, dim / 2);
  normShapes(m, `${pre}.norm_final_attn`, dim);
}

function mlpShapes(m: Shapes, pre: string, dims: number[]): void {
  for (let i = 0; i + 1 < dims.length; i++) linearShapes(m, `${pre}.layers.${i}`, dims[i], dims[i + 1]);
}

function maskDecoderShapes(m: Shapes, cfg: SamConfig): void {
  const c = cfg.out_chans, tokens = cfg.num_multimask_outputs + 1;
  twoWayTransformerShapes(m, "mask_decoder.transformer", c, cfg.decoder_depth, cfg.decoder_mlp_dim);
  m.set("mask_decoder.iou_token.weight", [1, c]);
  m.set("mask_decoder.mask_tokens.weight", [tokens, c]);
  m.set("mask_decoder.output_upscaling.0.weight", [c, c / 4, 2, 2]);
  m.set("mask_decoder.output_upscaling.0.bias", [c / 4]);
  normShapes(m, "mask_decoder.output_upscaling.1", c / 4);
  m.set("mask_decoder.output_upscaling.3.weight", [c / 4, c / 8, 2, 2]);
  m.set("mask_decoder.output_upscaling.3.bias", [c / 8]);
  for (let i = 0; i < tokens; i++) {
    mlpShapes(m, `mask_decoder.output_hypernetworks_mlps.${i}`, [c, c, c, c / 8]);
  }
  mlpShapes(m, "mask_decoder.iou_prediction_head", [
    c,
    cfg.iou_head_hidden_dim,
    cfg.iou_head_hidden_dim,
    tokens,
  ]);
}

/** Every key and shape of the official state dict of this architecture, in state_dict() order. */
export function samParamShapes(cfg: SamConfig): Map<string, number[]> {
  const m: Shapes = new Map();
  encoderShapes(m, cfg);
  promptEncoderShapes(m, cfg);
  maskDecoderShapes(m, cfg);
  return m;
}

/**
 * Tensors from a state dict (official names, e.g. from readStateDict), after a strict check of the key set
 * and shapes against cfg (a CheckpointError naming file otherwise). The host arrays are not kept or changed.
 */
export function paramsFromStateDict(sd: Map<string, HostTensor>, cfg: SamConfig, file: string): Params {
  const shapes = samParamShapes(cfg);
  checkStrict(shapes, sd, file);
  const p: Params = new Map();
  for (const [key, shape] of shapes) p.set(key, tf.tensor(toFloat32(sd.get(key)!), shape, "float32"));
  return p;
}

/** Fan-in of a torch weight (dim 1 times the kernel), as nn.init's _calculate_fan_in_and_fan_out. */
function fanIn(shape: number[]): number {
  return shape.length < 2 ? shape[0] : shape.slice(1).reduce((a, b) => a * b, 1);
}

/**
 * Random parameters for smoke runs and benchmarks (seeded, deterministic): weights and biases U(+-1/sqrt(fan_in))
 * like torch's Linear/Conv defaults, norms 1 and 0, embeddings N(0, 1), pos_embed N(0, 0.02), rel_pos N(0, 0.02)
 * (the official zero init would hide position bugs).
 */
export function initSamParams(cfg: SamConfig, seed: number): Params {
  return initParams(samParamShapes(cfg), new Rng(seed));
}

/** Random tensors for SAM-named keys of any shapes, by the rules of initSamParams (heads that reshape parts). */
export function initParams(shapes: Map<string, number[]>, rng: Rng): Params {
  const p: Params = new Map();
  for (const [key, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isNorm = /\.norm[^.]*\.(weight|bias)$|neck\.[13]\.|mask_downscaling\.[14]\.|output_upscaling\.1\./
      .test(key);
    if (isNorm) {
      data.fill(key.endsWith(".weight") ? 1 : 0);
    } else if (/pos_embed$|rel_pos_[hw]$/.test(key)) {
      rng.fillNormal(data, 0, 0.02);
    } else if (/(_token|_tokens|_embed|_embeddings\.\d+)\.weight$|gaussian_matrix$/.test(key)) {
      rng.fillNormal(data);
    } else {
      const weight = key.endsWith(".bias") ? shapes.get(key.replace(/bias$/, "weight")) : shape;
      const bound = 1 / Math.sqrt(fanIn(weight ?? shape));
      for (let i = 0; i < n; i++) data[i] = rng.uniform(-bound, bound);
    }
    p.set(key, tf.tensor(data, shape, "float32"));
  }
  return p;
}

/** Disposes every tensor in p and empties it. */
export function disposeParams(p: Params): void {
  for (const t of p.values()) t.dispose();
  p.clear();
}
