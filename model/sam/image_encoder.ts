/**
 * SAM's ViT image encoder (ImageEncoderViT: patch embedding, absolute + decomposed relative positions,
 * windowed and global blocks, conv neck) over official-named torch-layout params, with SAMed-style LoRA on
 * q and v and inputs of any multiple of the patch size.
 */
import { tf } from "../../engine/tf.ts";
import { attention, DEFAULT_MAX_CHUNK_BYTES, getRelPos } from "../attention.ts";
import { spans } from "../spans.ts";
import type { SamConfig } from "./config.ts";
import { conv1x1, conv3x3, isTrainable, layerNorm, linear, param, type Params, patchConv } from "./layers.ts";
import { mlpBlock } from "./mlp_block.ts";
import { resizeBilinear } from "./resize.ts";

const EPS = 1e-6;

/**
 * Device limits, given by the caller (the model never asks the backend): the encoder keeps every tensor
 * under them by cutting attention into chunks and batches into passes; no cut changes a number.
 */
export interface EncoderOptions {
  /** Cap on one attention logits chunk in bytes (see model/attention.ts; default DEFAULT_MAX_CHUNK_BYTES). */
  maxChunkBytes?: number;
  /** Cap on a block's widest activation; batches run in passes of whole images under it (default: none). */
  maxActivationBytes?: number;
  /**
   * Activation checkpointing: a block with trainable weights (LoRA) keeps only its input for the backward
   * pass and recomputes its forward there, so training memory grows with one block's activations instead of
   * all of them (one more forward pass of compute). Gradients are the same numbers.
   */
  checkpointBlocks?: boolean;
}

/** The options that keep every tensor under a device's binding limit (Infinity: no limit, e.g. off WebGPU). */
export function encoderLimits(maxBindingBytes: number): EncoderOptions {
  return {
    maxChunkBytes: Math.min(DEFAULT_MAX_CHUNK_BYTES, maxBindingBytes),
    maxActivationBytes: maxBindingBytes,
  };
}

/**
 * Multi-head self-attention of one block over x [B', h, w, C] (whole image or windows), with LoRA deltas
 * q += (x A_q^T) B_q^T and v += (x A_v^T) B_v^T when `${pre}.lora_q_A` etc. are present (no scaling).
 * q, k and v are three products with the row blocks of the official qkv weight rather than one [B'hw, 3C]
 * product cut apart afterwards: the same numbers, without the cut's copies (and for LoRA without a [B'hw, 3C]
 * zero-padded delta), which at 1024 px is ~150 MB less per block for a training step to keep.
 */
function blockAttention(
  p: Params,
  pre: string,
  x: tf.Tensor4D,
  heads: number,
  opts: EncoderOptions,
): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const d = c / heads;
  const x2 = tf.reshape(x, [b * h * w, c]);
  const weight = param(p, `${pre}.qkv.weight`), bias = param(p, `${pre}.qkv.bias`); // [3C, C], [3C]
  const project = (part: number, lora: string) => {
    const wPart = tf.slice(weight, [part * c, 0], [c, c]); // rows of q, k or v
    let y = linear(x2, wPart, tf.slice(bias, [part * c], [c]), isTrainable(weight)); // [B'hw, C]
    if (p.has(`${pre}.lora_${lora}_A`)) {
      y = tf.add(y, linear(linear(x2, param(p, `${pre}.lora_${lora}_A`)), param(p, `${pre}.lora_${lora}_B`)));
    }
    // [B'hw, C] -> [B'*heads, hw, d], as the official reshape(B, hw, 3, heads, d).permute(2, 0, 3, 1, 4).
    return tf.reshape(tf.transpose(tf.reshape(y, [b, h * w, heads, d]), [0, 2, 1, 3]), [
      b * heads,
      h * w,
      d,
    ]) as tf.Tensor3D;
  };
  const [q, k, v] = [project(0, "q"), project(1, "k"), project(2, "v")];
  const relPos = {
    rh: getRelPos(param(p, `${pre}.rel_pos_h`), h, h),
    rw: getRelPos(param(p, `${pre}.rel_pos_w`), w, w),
    qSize: [h, w] as [number, number],
    kSize: [h, w] as [number, number],
  };
  const o = attention(q, k, v, { scale: d ** -0.5, relPos, maxChunkBytes: opts.maxChunkBytes }); // [B'*heads, hw, d]
  const merged = tf.reshape(tf.transpose(tf.reshape(o, [b, heads, h * w, d]), [0, 2, 1, 3]), [b * h * w, c]);
  return tf.reshape(linear(merged, param(p, `${pre}.proj.weight`), param(p, `${pre}.proj.bias`)), [
    b,
    h,
    w,
    c,
  ]) as tf.Tensor4D;
}

/** Zero-pads x [B, H, W, C] at the bottom/right to multiples of s and cuts it into [B*nWin, s, s, C]. */
function windowPartition(x: tf.Tensor4D, s: number): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const hp = Math.ceil(h / s) * s, wp = Math.ceil(w / s) * s;
  const padded = hp > h || wp > w ? tf.pad(x, [[0, 0], [0, hp - h], [0, wp - w], [0, 0]]) : x;
  const t = tf.transpose(tf.reshape(padded, [b * (hp / s), s, wp / s, s * c]), [0, 2, 1, 3]); // [B*nh, nw, s, s*C]
  return tf.reshape(t, [-1, s, s, c]) as tf.Tensor4D;
}

/** Inverse of windowPartition, dropping the padding: [B*nWin, s, s, C] -> [B, H, W, C]. */
function windowUnpartition(win: tf.Tensor4D, s: number, h: number, w: number): tf.Tensor4D {
  const c = win.shape[3];
  const hp = Math.ceil(h / s) * s, wp = Math.ceil(w / s) * s;
  const b = win.shape[0] / ((hp / s) * (wp / s));
  const t = tf.reshape(tf.transpose(tf.reshape(win, [b * (hp / s), wp / s, s, s * c]), [0, 2, 1, 3]), [
    b,
    hp,
    wp,
    c,
  ]);
  return (hp > h || wp > w ? tf.slice(t, [0, 0, 0, 0], [b, h, w, c]) : t) as tf.Tensor4D;
}

/** One pre-norm transformer block (official Block.forward). */
function block(p: Params, cfg: SamConfig, i: number, x: tf.Tensor4D, opts: EncoderOptions): tf.Tensor4D {
  const pre = `image_encoder.blocks.${i}`;
  const [, h, w] = x.shape;
  const ws = cfg.global_attn_indexes.includes(i) ? 0 : cfg.window_size;
  const n1 = layerNorm(x, param(p, `${pre}.norm1.weight`), param(p, `${pre}.norm1.bias`), EPS) as tf.Tensor4D;
  const a = ws > 0
    ? windowUnpartition(
      blockAttention(p, `${pre}.attn`, windowPartition(n1, ws), cfg.num_heads, opts),
      ws,
      h,
      w,
    )
    : blockAttention(p, `${pre}.attn`, n1, cfg.num_heads, opts);
  const x1 = tf.add(x, a);
  const n2 = layerNorm(x1, param(p, `${pre}.norm2.weight`), param(p, `${pre}.norm2.bias`), EPS);
  const mlp = mlpBlock(
    n2,
    param(p, `${pre}.mlp.lin1.weight`),
    param(p, `${pre}.mlp.lin1.bias`),
    param(p, `${pre}.mlp.lin2.weight`),
    param(p, `${pre}.mlp.lin2.bias`),
  );
  return tf.add(x1, mlp) as tf.Tensor4D;
}

/**
 * The image encoder: x [B, S, S, 3] (NHWC, already preprocessed) -> embeddings [B, S/patch, S/patch, out_chans].
 * S may differ from cfg.image_size (any multiple of the patch size): pos_embed is then resized bilinearly and
 * the global blocks' rel-pos tables linearly, which is what SAMed does to the weights at load time.
 * To run the whole SAM at such a size (SAMed at 512), load the weights with the checkpoint's config and give
 * the other modules `{ ...cfg, image_size: 512 }`. Differentiable end to end (no readback), so LoRA can
 * train through it.
 */
export function imageEncoder(
  p: Params,
  cfg: SamConfig,
  x: tf.Tensor4D,
  opts: EncoderOptions = {},
): tf.Tensor4D {
  const [, hIn, wIn, ch] = x.shape;
  if (ch !== 3 || hIn % cfg.patch_size || wIn % cfg.patch_size) {
    throw new Error(
      `imageEncoder: input [${x.shape}] must be NHWC with 3 channels and sides divisible by ${cfg.patch_size}`,
    );
  }
  const perPass = imagesPerPass(cfg, hIn, wIn, opts.maxActivationBytes ?? Infinity);
  if (x.shape[0] > perPass) {
    // Whole images per pass, so no activation outgrows the device's binding limit (training batches).
    return tf.tidy(() => {
      const parts: tf.Tensor4D[] = [];
      for (const [b0, n] of spans(x.shape[0], perPass)) {
        parts.push(encode(p, cfg, tf.slice(x, [b0, 0, 0, 0], [n, hIn, wIn, 3]), opts));
      }
      return tf.concat(parts, 0) as tf.Tensor4D;
    });
  }
  return encode(p, cfg, x, opts);
}

/**
 * Runs f (which calls tf.grads) from inside a backward pass. tfjs's gradients() starts a fresh tape when no
 * forward is recording, and when it finishes it clears the engine's tape, the one the outer backward pass
 * still has to clean up; tfjs has no public way to nest, so the outer tape is put back afterwards.
 */
function withOuterTape<T>(f: () => T): T {
  const state = (tf.engine() as unknown as { state: { activeTape: unknown } }).state;
  const outer = state.activeTape;
  try {
    return f();
  } finally {
    state.activeTape = outer;
  }
}

/**
 * block() under activation checkpointing. tfjs runs a customGrad's forward without recording it on the tape
 * (its inner kernels run at kernel depth > 0), so only the saved block input survives until backward, where
 * tf.grads re-runs the block and differentiates it with respect to the input and the block's variables.
 */
function checkpointedBlock(
  p: Params,
  cfg: SamConfig,
  i: number,
  x: tf.Tensor4D,
  opts: EncoderOptions,
): tf.Tensor4D {
  const pre = `image_encoder.blocks.${i}.`;
  const vars = [...p].filter(([k, t]) => k.startsWith(pre) && t instanceof tf.Variable && t.trainable)
    .map(([, t]) => t);
  if (vars.length === 0) return block(p, cfg, i, x, opts); // nothing to train here: no tape to save
  const run = (input: tf.Tensor) => block(p, cfg, i, input as tf.Tensor4D, opts);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.at(-1) as tf.GradSaveFunc;
    const input = args[0] as tf.Tensor4D;
    save([input]);
    return {
      value: run(input),
      // The variables are the same tensors block() reads from p, so tf.grads finds them on the recomputed tape.
      gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) =>
        withOuterTape(() => tf.grads((xx: tf.Tensor, ..._vs: tf.Tensor[]) => run(xx))([xs, ...vars], dy)),
    };
  });
  return f(x, ...vars) as tf.Tensor4D;
}

/**
 * Images per pass: a block's largest activation (the MLP hidden layer or qkv, [B*tokens, 4C or 3C] with
 * window padding) must stay under limit (Infinity: all at once).
 */
export function imagesPerPass(cfg: SamConfig, hIn: number, wIn: number, limit: number): number {
  if (!Number.isFinite(limit)) return Infinity;
  const pad = (n: number) => cfg.window_size > 0 ? Math.ceil(n / cfg.window_size) * cfg.window_size : n;
  const tokens = pad(hIn / cfg.patch_size) * pad(wIn / cfg.patch_size);
  const widest = Math.max(Math.round(cfg.embed_dim * cfg.mlp_ratio), 3 * cfg.embed_dim);
  return Math.max(1, Math.floor(limit / (tokens * widest * 4)));
}

function encode(p: Params, cfg: SamConfig, x: tf.Tensor4D, opts: EncoderOptions): tf.Tensor4D {
  return tf.tidy(() => {
    const pe = patchConv(
      x,
      param(p, "image_encoder.patch_embed.proj.weight"),
      param(p, "image_encoder.patch_embed.proj.bias"),
    ); // [B, h, w, C]
    const [, h, w] = pe.shape;
    const pos = param<tf.Tensor4D>(p, "image_encoder.pos_embed"); // [1, H0, W0, C]
    let t = tf.add(
      pe,
      pos.shape[1] === h && pos.shape[2] === w ? pos : resizeBilinear(pos, h, w),
    ) as tf.Tensor4D;
    for (let i = 0; i < cfg.depth; i++) {
      const prev = t;
      t = tf.tidy(() =>
        opts.checkpointBlocks ? checkpointedBlock(p, cfg, i, prev, opts) : block(p, cfg, i, prev, opts)
      );
    }
    const n0 = conv1x1(t, param(p, "image_encoder.neck.0.weight"));
    const n1 = layerNorm(
      n0,
      param(p, "image_encoder.neck.1.weight"),
      param(p, "image_encoder.neck.1.bias"),
      EPS,
    );
    const n2 = conv3x3(n1 as tf.Tensor4D, param(p, "image_encoder.neck.2.weight"));
    return layerNorm(
      n2,
      param(p, "image_encoder.neck.3.weight"),
      param(p, "image_encoder.neck.3.bias"),
      EPS,
    ) as tf.Tensor4D; // [B, h, w, out_chans]
  });
}

/**
 * imageEncoder for weights that never train (the frozen-encoder methods, as the originals' torch.no_grad()):
 * run inside customGrad's forward, where tfjs records nothing, so a training step does not keep the encoder's
 * activations for a backward pass that would never use them. Its input is data, so the zero gradient it
 * reports is never read.
 */
export function frozenImageEncoder(
  p: Params,
  cfg: SamConfig,
  x: tf.Tensor4D,
  opts: EncoderOptions = {},
): tf.Tensor4D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const xi = args[0] as tf.Tensor4D;
    return { value: imageEncoder(p, cfg, xi, opts), gradFunc: () => tf.zeros(xi.shape) };
  });
  return f(x) as tf.Tensor4D;
}
