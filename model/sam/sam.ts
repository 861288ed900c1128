/**
 * The whole SAM forward for one image (Sam.forward): preprocess, encode, embed prompts, decode and
 * postprocess, split so that one image embedding can serve several prompt sets.
 */
import { tf } from "../../engine/tf.ts";
import type { SamConfig } from "./config.ts";
import { type EncoderOptions, imageEncoder } from "./image_encoder.ts";
import type { Params } from "./layers.ts";
import { maskDecoder, type MaskSelection } from "./mask_decoder.ts";
import { postprocessMasks, preprocess } from "./preprocess.ts";
import { getDensePe, promptEncoder, type Prompts } from "./prompt_encoder.ts";

export interface EncodedImage {
  /** [B, S, S, 3] normalised and padded input. */
  preprocessed: tf.Tensor4D;
  /** [B, h, w, C] image embedding. */
  embeddings: tf.Tensor4D;
  /** (H, W) of the raw image, which is both the unpadded input size and the original size here. */
  inputSize: [number, number];
}

export interface DecodedPrompts {
  /** [Bp, N, C] and [Bd, h, w, C] prompt embeddings. */
  sparse: tf.Tensor3D;
  dense: tf.Tensor4D;
  /** [B, K, 4h, 4w] mask logits and [B, K] predicted IoU. */
  lowResMasks: tf.Tensor4D;
  iou: tf.Tensor2D;
  /** [B, K, H, W] logits at the original size (threshold at 0 for the binary mask). */
  masks: tf.Tensor4D;
}

/**
 * raw [B, H, W, 3] (0..255 RGB, NHWC, already in the model's input frame: H, W <= image_size, as Sam.forward
 * expects) -> preprocessed input and image embedding.
 */
export function encodeImage(
  p: Params,
  cfg: SamConfig,
  raw: tf.Tensor4D,
  opts: EncoderOptions = {},
): EncodedImage {
  const [, h, w] = raw.shape;
  const preprocessed = preprocess(cfg, raw);
  const embeddings = imageEncoder(p, cfg, preprocessed, opts);
  return { preprocessed, embeddings, inputSize: [h, w] };
}

/** Prompt encoder + mask decoder + postprocess_masks on an encoded image; the caller disposes the result. */
export function decodePrompts(
  p: Params,
  cfg: SamConfig,
  image: EncodedImage,
  prompts: Prompts,
  multimask: MaskSelection,
  densePe?: tf.Tensor4D,
): DecodedPrompts {
  return tf.tidy(() => {
    const { sparse, dense } = promptEncoder(p, cfg, prompts);
    const imagePe = densePe ?? getDensePe(p, cfg);
    const { masks, iou } = maskDecoder(
      p,
      cfg,
      { imageEmbeddings: image.embeddings, imagePe, sparse, dense },
      multimask,
    );
    const full = postprocessMasks(cfg, masks, image.inputSize, image.inputSize);
    return { sparse, dense, lowResMasks: masks, iou, masks: full };
  });
}

/** Everything Sam.forward computes for one raw image and one prompt set (see encodeImage for raw). */
export function runSam(
  p: Params,
  cfg: SamConfig,
  raw: tf.Tensor4D,
  prompts: Prompts = {},
  opts: { multimask?: MaskSelection } & EncoderOptions = {},
): EncodedImage & DecodedPrompts & { densePe: tf.Tensor4D } {
  return tf.tidy(() => {
    const image = encodeImage(p, cfg, raw, opts);
    const densePe = getDensePe(p, cfg);
    return { ...image, densePe, ...decodePrompts(p, cfg, image, prompts, opts.multimask ?? false, densePe) };
  });
}
