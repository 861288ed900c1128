/**
 * SAM's mask decoder (mask_decoder.py): output tokens + prompt tokens through the two-way transformer, mask
 * upscaling, hypernetwork MLPs and the IoU head, including the batch-1 prompt broadcast the g-network uses.
 */
import { tf } from "../../engine/tf.ts";
import type { SamConfig } from "./config.ts";
import { convTranspose2x2, gelu, layerNorm, mlpRelu, param, type Params } from "./layers.ts";
import { twoWayTransformer } from "./two_way_transformer.ts";

export interface MaskDecoderInput {
  /** [B, h, w, C] from the image encoder (NHWC). */
  imageEmbeddings: tf.Tensor4D;
  /** [1, h, w, C] from getDensePe. */
  imagePe: tf.Tensor4D;
  /** [Bp, N, C] prompt tokens. */
  sparse: tf.Tensor3D;
  /** [B*Bp or 1, h, w, C] dense prompt embedding. */
  dense: tf.Tensor4D;
}

export interface MaskDecoderOutput {
  /** [B, K, 4h, 4w] mask logits, channel-first like torch (K = 1, 3 or every token). */
  masks: tf.Tensor4D;
  /** [B, K] predicted IoU. */
  iou: tf.Tensor2D;
}

/** Which masks to return: mask 0 (false), masks 1.. (true, multimask), or all of them (SAMed's semantic head). */
export type MaskSelection = boolean | "all";

/** torch.repeat_interleave(x, n, dim=0) for x [B, ...]. */
function repeatInterleave(x: tf.Tensor4D, n: number): tf.Tensor4D {
  if (n === 1) return x;
  const [b, ...rest] = x.shape;
  const tiled = tf.tile(tf.expandDims(x, 1), [1, n, 1, 1, 1]); // [B, n, ...]
  return tf.reshape(tiled, [b * n, ...rest]) as tf.Tensor4D;
}

/**
 * MaskDecoder.forward with params under prefix. The number of mask tokens comes from the mask_tokens
 * weight, so decoders rebuilt with another num_multimask_outputs (SAMed) work unchanged.
 */
export function maskDecoder(
  p: Params,
  cfg: SamConfig,
  input: MaskDecoderInput,
  multimask: MaskSelection,
  prefix = "mask_decoder",
): MaskDecoderOutput {
  return tf.tidy(() => {
    const maskTokens = param<tf.Tensor2D>(p, `${prefix}.mask_tokens.weight`); // [nt, C]
    const nt = maskTokens.shape[0];
    const { sparse } = input;
    const bp = sparse.shape[0];
    const out = tf.concat([param(p, `${prefix}.iou_token.weight`), maskTokens], 0); // [1+nt, C]
    const tokens = tf.concat([tf.tile(tf.expandDims(out, 0), [bp, 1, 1]), sparse], 1) as tf.Tensor3D; // [Bp, T, C]

    const src = tf.add(repeatInterleave(input.imageEmbeddings, bp), input.dense) as tf.Tensor4D; // [B*Bp, h, w, C]
    const posSrc = repeatInterleave(input.imagePe, bp);
    const [, h, w, c] = src.shape;
    const { queries, keys } = twoWayTransformer(
      p,
      `${prefix}.transformer`,
      { depth: cfg.decoder_depth, numHeads: cfg.decoder_num_heads },
      src,
      posSrc,
      tokens,
    );
    const b = queries.shape[0];
    const iouTokenOut = tf.reshape(tf.slice(queries, [0, 0, 0], [b, 1, c]), [b, c]);
    const maskTokensOut = tf.slice(queries, [0, 1, 0], [b, nt, c]); // [B, nt, C]

    const up = `${prefix}.output_upscaling`;
    let u = convTranspose2x2(
      tf.reshape(keys, [b, h, w, c]) as tf.Tensor4D,
      param(p, `${up}.0.weight`),
      param(p, `${up}.0.bias`),
    );
    u = gelu(layerNorm(u, param(p, `${up}.1.weight`), param(p, `${up}.1.bias`), 1e-6)) as tf.Tensor4D;
    u = gelu(convTranspose2x2(u, param(p, `${up}.3.weight`), param(p, `${up}.3.bias`))) as tf.Tensor4D; // [B, 4h, 4w, C/8]
    const [, uh, uw, uc] = u.shape;

    const hyper = tf.stack(
      tf.unstack(maskTokensOut, 1).map((t, i) =>
        mlpRelu(p, `${prefix}.output_hypernetworks_mlps.${i}`, t, 3)
      ),
      1,
    ); // [B, nt, C/8]
    const flatT = tf.transpose(tf.reshape(u, [b, uh * uw, uc]), [0, 2, 1]); // [B, C/8, 4h*4w]
    const masks = tf.reshape(tf.matMul(hyper, flatT), [b, nt, uh, uw]); // [B, nt, 4h, 4w]
    const iou = mlpRelu(p, `${prefix}.iou_prediction_head`, iouTokenOut, 3); // [B, nt]

    if (multimask === "all") return { masks: masks as tf.Tensor4D, iou: iou as tf.Tensor2D };
    const [from, count] = multimask ? [1, nt - 1] : [0, 1];
    return {
      masks: tf.slice(masks, [0, from, 0, 0], [b, count, uh, uw]) as tf.Tensor4D,
      iou: tf.slice(iou, [0, from], [b, count]) as tf.Tensor2D,
    };
  });
}
