/**
 * The tensors of a SAM parity file (fixtures/reference/tiny_sam.io.safetensors): one image encoded once, then
 * decoded without prompts (single mask) and with a box (multimask), all in torch's NCHW layout.
 */
import { tf } from "../../engine/tf.ts";
import type { SamConfig } from "./config.ts";
import type { EncoderOptions } from "./image_encoder.ts";
import type { Params } from "./layers.ts";
import { getDensePe } from "./prompt_encoder.ts";
import { decodePrompts, encodeImage } from "./sam.ts";

/** Names in the order the reference file lists them. */
export const PARITY_NAMES = [
  "raw_image",
  "preprocessed_image",
  "image_embeddings",
  "no_prompt.sparse",
  "no_prompt.dense",
  "dense_pe",
  "no_prompt.low_res_masks",
  "no_prompt.iou_predictions",
  "box",
  "box.sparse",
  "box.dense",
  "box.low_res_masks_multi",
  "box.iou_predictions_multi",
  "no_prompt.masks_original_size",
] as const;

const nchw = (x: tf.Tensor) => tf.transpose(x, [0, 3, 1, 2]);

/**
 * raw [1, 3, H, W] (0..255, NCHW as in the file) and box [1, 4] (x0, y0, x1, y1, input frame) -> every
 * tensor named in PARITY_NAMES (the two inputs copied through). The caller disposes the map's tensors.
 */
export function parityOutputs(
  p: Params,
  cfg: SamConfig,
  raw: tf.Tensor4D,
  box: tf.Tensor2D,
  opts: EncoderOptions = {},
): Map<string, tf.Tensor> {
  const named = tf.tidy(() => {
    const image = encodeImage(p, cfg, tf.transpose(raw, [0, 2, 3, 1]) as tf.Tensor4D, opts);
    const pe = getDensePe(p, cfg);
    const none = decodePrompts(p, cfg, image, {}, false, pe);
    const boxed = decodePrompts(p, cfg, image, { boxes: box }, true, pe);
    return {
      "raw_image": tf.clone(raw),
      "preprocessed_image": nchw(image.preprocessed),
      "image_embeddings": nchw(image.embeddings),
      "no_prompt.sparse": none.sparse,
      "no_prompt.dense": nchw(none.dense),
      "dense_pe": nchw(pe),
      "no_prompt.low_res_masks": none.lowResMasks,
      "no_prompt.iou_predictions": none.iou,
      "box": tf.clone(box),
      "box.sparse": boxed.sparse,
      "box.dense": nchw(boxed.dense),
      "box.low_res_masks_multi": boxed.lowResMasks,
      "box.iou_predictions_multi": boxed.iou,
      "no_prompt.masks_original_size": none.masks,
    } as Record<(typeof PARITY_NAMES)[number], tf.Tensor>;
  });
  return new Map(PARITY_NAMES.map((n) => [n, named[n]]));
}
