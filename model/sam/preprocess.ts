/**
 * SAM's input and output transforms: Sam.preprocess (pixel mean/std, zero-pad bottom/right),
 * Sam.postprocess_masks (bilinear up to the input size, crop, bilinear to the original size) and
 * ResizeLongestSide's target shape, with torch's align_corners=False arithmetic.
 */
import { tf } from "../../engine/tf.ts";
import type { SamConfig } from "./config.ts";
import { applyAxisMatrices, firstRows, linearResizeMatrix, matMulHost } from "./resize.ts";

/**
 * Sam.preprocess: raw [B, H, W, 3] (0..255 RGB, NHWC) -> ((x - mean) / std) zero-padded at the bottom/right
 * to [B, S, S, 3], S = cfg.image_size unless given. H and W must not exceed S.
 */
export function preprocess(cfg: SamConfig, raw: tf.Tensor4D, size = cfg.image_size): tf.Tensor4D {
  const [, h, w, c] = raw.shape;
  if (c !== 3) throw new Error(`preprocess: expected 3 channels (NHWC), got [${raw.shape}]`);
  if (h > size || w > size) {
    throw new Error(`preprocess: image ${h}x${w} is larger than the model input ${size}x${size}`);
  }
  return tf.tidy(() => {
    const mean = tf.tensor1d(cfg.pixel_mean);
    const std = tf.tensor1d(cfg.pixel_std);
    const x = tf.div(tf.sub(raw, mean), std);
    return (h === size && w === size
      ? x
      : tf.pad(x, [[0, 0], [0, size - h], [0, size - w], [0, 0]])) as tf.Tensor4D;
  });
}

/**
 * Sam.postprocess_masks: masks [B, K, h, w] (channel-first, as the decoder returns them) upsampled to
 * S x S, cropped to inputSize (the unpadded image) and resized to originalSize -> [B, K, H0, W0]. The
 * three steps fold into one interpolation matrix per axis.
 */
export function postprocessMasks(
  cfg: SamConfig,
  masks: tf.Tensor4D,
  inputSize: [number, number],
  originalSize: [number, number],
  size = cfg.image_size,
): tf.Tensor4D {
  const [b, k, h, w] = masks.shape;
  const axis = (n: number, keep: number, out: number) =>
    matMulHost(linearResizeMatrix(keep, out), firstRows(linearResizeMatrix(n, size), keep));
  return tf.tidy(() => {
    const x = tf.reshape(masks, [b * k, h, w, 1]) as tf.Tensor4D;
    const y = applyAxisMatrices(
      x,
      axis(h, inputSize[0], originalSize[0]),
      axis(w, inputSize[1], originalSize[1]),
    );
    return tf.reshape(y, [b, k, originalSize[0], originalSize[1]]) as tf.Tensor4D;
  });
}

/** ResizeLongestSide.get_preprocess_shape: (H, W) scaled so the longer side is `longest`, rounded half up. */
export function longestSideShape(h: number, w: number, longest: number): [number, number] {
  const scale = longest / Math.max(h, w);
  return [Math.floor(h * scale + 0.5), Math.floor(w * scale + 0.5)];
}
