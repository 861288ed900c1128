/**
 * The g-network's decoder (Shaharabany et al.'s SmallDecoder): two upsample-and-join blocks over HarDNet's
 * 1/16, 1/8 and 1/4 features, then a two-convolution head and tanh, giving one dense prompt embedding per
 * class at 1/4 of the g-network's input (docs/methods.md 2.3 and decision 6).
 */
import { tf } from "../../engine/tf.ts";
import { resizeBilinear } from "../sam/resize.ts";
import { batchNorm, conv, type ConvBnVars, type ConvDef, type NetDefs } from "./conv_bn.ts";

export interface GNetDecoderConfig {
  /** Widths of the backbone features at 1/4, 1/8, 1/16 (HarDNet-85: 192, 320, 720). */
  skips: [number, number, number];
  /** Width of one dense embedding (SAM's prompt width: 256 for ViT-B). */
  embed: number;
  /** Dense embeddings produced (one per foreground class; 1 in the binary original). */
  outputs: number;
}

const conv3 = (name: string, cin: number, cout: number): ConvDef => ({
  name,
  k: 3,
  stride: 1,
  cin,
  cout,
  bias: true,
});

/**
 * Parameters, named as the original module's state dict: decoder.up1 / up2 (UpBlockSkip: conv1, conv2, BN)
 * and decoder.final (CNNBlock: conv1, BN1, conv2; the original's BN2 is never applied and is left out).
 */
export function gnetDecoderDefs(cfg: GNetDecoderConfig, prefix = "decoder."): NetDefs {
  const [c4, c8, c16] = cfg.skips;
  return {
    convs: [
      conv3(`${prefix}up1.conv1`, c16 + c8, c8),
      conv3(`${prefix}up1.conv2`, c8, c8),
      conv3(`${prefix}up2.conv1`, c8 + c4, c4),
      conv3(`${prefix}up2.conv2`, c4, c4),
      conv3(`${prefix}final.conv1`, c4, cfg.embed),
      conv3(`${prefix}final.conv2`, cfg.embed, cfg.outputs * cfg.embed),
    ],
    norms: [
      { name: `${prefix}up1.BN`, c: c8 },
      { name: `${prefix}up2.BN`, c: c4 },
      { name: `${prefix}final.BN1`, c: cfg.embed },
    ],
  };
}

/**
 * UpBlockSkip: upsample x2 (bilinear, align_corners=False: nn.Upsample's default), concatenate the skip
 * after it, conv3x3 twice with nothing between them, BatchNorm, LeakyReLU(0.01).
 */
function upBlock(
  vars: ConvBnVars,
  defs: NetDefs,
  name: string,
  x: tf.Tensor4D,
  skip: tf.Tensor4D,
  training: boolean,
) {
  const [, h, w] = x.shape;
  const joined = tf.concat([resizeBilinear(x, 2 * h, 2 * w), skip], 3) as tf.Tensor4D;
  const find = (n: string) => defs.convs.find((d) => d.name === `${name}.${n}`)!;
  const y = conv(vars, find("conv2"), conv(vars, find("conv1"), joined));
  return tf.leakyRelu(batchNorm(vars, `${name}.BN`, y, training), 0.01) as tf.Tensor4D;
}

/**
 * Features [x4, x8, x16] (NHWC) -> tanh dense embeddings [B, H/4, W/4, outputs * embed], channel
 * c * embed + j being channel j of embedding c (PyTorch's view(B, outputs, embed, h, w) of the output).
 */
export function gnetDecoder(
  vars: ConvBnVars,
  cfg: GNetDecoderConfig,
  features: tf.Tensor4D[],
  training: boolean,
  prefix = "decoder.",
): tf.Tensor4D {
  const defs = gnetDecoderDefs(cfg, prefix);
  const [x4, x8, x16] = features;
  return tf.tidy(() => {
    const z8 = upBlock(vars, defs, `${prefix}up1`, x16, x8, training); // [B, H/8, W/8, c8]
    const z4 = upBlock(vars, defs, `${prefix}up2`, z8, x4, training); // [B, H/4, W/4, c4]
    const [c1, c2] = [defs.convs[4], defs.convs[5]];
    const h = tf.relu(batchNorm(vars, `${prefix}final.BN1`, conv(vars, c1, z4), training)) as tf.Tensor4D;
    return tf.tanh(conv(vars, c2, h)) as tf.Tensor4D; // [B, H/4, W/4, outputs * embed]
  });
}
