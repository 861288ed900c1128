/**
 * SAM's prompt encoder (PromptEncoder): the random-Fourier dense positional encoding, point and box
 * embeddings, the mask-downscaling path and the no-prompt embeddings, NHWC.
 */
import { tf } from "../../engine/tf.ts";
import { embeddingSize, type SamConfig } from "./config.ts";
import { conv1x1, gelu, layerNorm, param, type Params, patchConv } from "./layers.ts";

const PE = "prompt_encoder";
const EPS = 1e-6;

export interface PointPrompts {
  /** [B, N, 2] (x, y) in the model's input frame (pixels of the padded S x S image). */
  coords: tf.Tensor3D;
  /** [B, N]: 1 foreground, 0 background, -1 padding. */
  labels: tf.Tensor2D;
}

export interface Prompts {
  points?: PointPrompts;
  /** [B, 4] as (x0, y0, x1, y1) in the input frame. */
  boxes?: tf.Tensor2D;
  /** [B, 4h, 4w, 1] low-res mask logits (NHWC). */
  masks?: tf.Tensor4D;
}

export interface PromptEmbeddings {
  /** [B, N, C] point and box tokens (N = 0 without them). */
  sparse: tf.Tensor3D;
  /** [B, h, w, C]. */
  dense: tf.Tensor4D;
}

/** Fourier features of coords already in [0, 1]: [..., 2] -> [..., C] = (sin, cos) of 2 pi (2c - 1) G. */
function peEncoding(p: Params, coords01: tf.Tensor): tf.Tensor {
  const g = param<tf.Tensor2D>(p, `${PE}.pe_layer.positional_encoding_gaussian_matrix`); // [2, C/2]
  const lead = coords01.shape.slice(0, -1);
  const c = tf.sub(tf.mul(tf.reshape(coords01, [-1, 2]), 2), 1);
  const proj = tf.mul(tf.matMul(c as tf.Tensor2D, g), Math.fround(2 * Math.PI)); // [M, C/2]
  return tf.reshape(tf.concat([tf.sin(proj), tf.cos(proj)], -1), [...lead, 2 * g.shape[1]]);
}

/** get_dense_pe(): the positional encoding of every embedding-grid cell centre, [1, h, w, C]. */
export function getDensePe(p: Params, cfg: SamConfig): tf.Tensor4D {
  const s = embeddingSize(cfg);
  return tf.tidy(() => {
    const xy = new Float32Array(s * s * 2);
    for (let i = 0; i < s; i++) {
      for (let j = 0; j < s; j++) {
        xy[(i * s + j) * 2] = Math.fround(j + 0.5) / s;
        xy[(i * s + j) * 2 + 1] = Math.fround(i + 0.5) / s;
      }
    }
    return tf.reshape(peEncoding(p, tf.tensor3d(xy, [s, s, 2])), [1, s, s, -1]) as tf.Tensor4D;
  });
}

/** forward_with_coords: pixel coords [B, N, 2] (+0.5 already applied) normalised by the input size. */
function peWithCoords(p: Params, cfg: SamConfig, coords: tf.Tensor): tf.Tensor {
  return peEncoding(p, tf.div(coords, cfg.image_size));
}

function embedding(p: Params, key: string): tf.Tensor {
  return tf.reshape(param(p, key), [1, 1, -1]);
}

/** _embed_points, with a padding point (label -1) appended when no box follows. */
function embedPoints(p: Params, cfg: SamConfig, pts: PointPrompts, pad: boolean): tf.Tensor3D {
  let coords: tf.Tensor = tf.add(pts.coords, 0.5);
  let labels: tf.Tensor = tf.cast(pts.labels, "float32");
  if (pad) {
    const b = coords.shape[0];
    coords = tf.concat([coords, tf.zeros([b, 1, 2])], 1);
    labels = tf.concat([labels, tf.fill([b, 1], -1)], 1);
  }
  const pe = peWithCoords(p, cfg, coords); // [B, N, C]
  const is = (v: number) => tf.expandDims(tf.cast(tf.equal(labels, v), "float32"), 2); // [B, N, 1]
  const padMask = is(-1);
  let out = tf.mul(pe, tf.sub(1, padMask));
  out = tf.add(out, tf.mul(padMask, embedding(p, `${PE}.not_a_point_embed.weight`)));
  out = tf.add(out, tf.mul(is(0), embedding(p, `${PE}.point_embeddings.0.weight`)));
  out = tf.add(out, tf.mul(is(1), embedding(p, `${PE}.point_embeddings.1.weight`)));
  return out as tf.Tensor3D;
}

/** _embed_boxes: two corner tokens per box. */
function embedBoxes(p: Params, cfg: SamConfig, boxes: tf.Tensor2D): tf.Tensor3D {
  const corners = tf.reshape(tf.add(boxes, 0.5), [-1, 2, 2]);
  const pe = peWithCoords(p, cfg, corners); // [B, 2, C]
  const cornerEmb = tf.concat([
    param(p, `${PE}.point_embeddings.2.weight`),
    param(p, `${PE}.point_embeddings.3.weight`),
  ], 0); // [2, C]
  return tf.add(pe, tf.expandDims(cornerEmb, 0)) as tf.Tensor3D;
}

/** _embed_masks (mask_downscaling): [B, 4h, 4w, 1] -> [B, h, w, C]. */
export function embedMasks(p: Params, masks: tf.Tensor4D): tf.Tensor4D {
  const ds = `${PE}.mask_downscaling`;
  let x = patchConv(masks, param(p, `${ds}.0.weight`), param(p, `${ds}.0.bias`));
  x = gelu(layerNorm(x, param(p, `${ds}.1.weight`), param(p, `${ds}.1.bias`), EPS)) as tf.Tensor4D;
  x = patchConv(x, param(p, `${ds}.3.weight`), param(p, `${ds}.3.bias`));
  x = gelu(layerNorm(x, param(p, `${ds}.4.weight`), param(p, `${ds}.4.bias`), EPS)) as tf.Tensor4D;
  return conv1x1(x, param(p, `${ds}.6.weight`), param(p, `${ds}.6.bias`));
}

/** PromptEncoder.forward: the batch is that of the first prompt given (points, boxes, masks), else 1. */
export function promptEncoder(p: Params, cfg: SamConfig, prompts: Prompts = {}): PromptEmbeddings {
  const { points, boxes, masks } = prompts;
  const bs = points?.coords.shape[0] ?? boxes?.shape[0] ?? masks?.shape[0] ?? 1;
  const c = cfg.out_chans, s = embeddingSize(cfg);
  return tf.tidy(() => {
    const parts: tf.Tensor3D[] = [];
    if (points) parts.push(embedPoints(p, cfg, points, boxes === undefined));
    if (boxes) parts.push(embedBoxes(p, cfg, boxes));
    const sparse = parts.length === 0
      ? tf.zeros([bs, 0, c]) as tf.Tensor3D
      : parts.length === 1
      ? parts[0]
      : tf.concat(parts, 1) as tf.Tensor3D;
    const dense = masks
      ? embedMasks(p, masks)
      : tf.tile(tf.reshape(param(p, `${PE}.no_mask_embed.weight`), [1, 1, 1, c]), [
        bs,
        s,
        s,
        1,
      ]) as tf.Tensor4D;
    return { sparse, dense };
  });
}
