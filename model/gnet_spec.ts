/**
 * What a g-network configuration implies, without touching a weight: the presets, the build options, the
 * spec (SAM's architecture, the backbone, the decoder, the sizes) and the parameter counts --dry-run prints.
 */
import { ConfigError } from "../errors.ts";
import { type NetDefs, paramCount } from "./heads/conv_bn.ts";
import { type GNetDecoderConfig, gnetDecoderDefs } from "./heads/gnet_decoder.ts";
import {
  HARDNET85_TO_16,
  HARDNET_TINY,
  type HarDNetConfig,
  hardnetFeatureWidths,
  hardnetPlan,
} from "./heads/hardnet.ts";
import { presetAtSize, PRESETS, type SamConfig } from "./sam/config.ts";
import { samParamShapes } from "./sam/params.ts";

/** Per-preset sizes: the paper's (ViT-B at 1024, the g-network at 512) and a small one for CPU runs and tests. */
export const GNET_PRESETS: Record<"vit_b" | "tiny", { encoderSize: number; backbone: HarDNetConfig }> = {
  vit_b: { encoderSize: 1024, backbone: HARDNET85_TO_16 },
  tiny: { encoderSize: 128, backbone: HARDNET_TINY },
};

export interface GNetBuildOptions {
  preset: "vit_b" | "tiny";
  /** SAM/MedSAM checkpoint (.pth or .safetensors); null = seeded random SAM weights. */
  weights: string | null;
  /** PyTorch HarDNet-85 ImageNet state dict (PingoLH's hardnet85.pth key names); null = random backbone. */
  backboneWeights: string | null;
  imageSize: number;
  encoderSize: number | null;
  numClasses: number;
  seed: number;
  /** The device's largest bindable tensor in bytes (engine/backend.ts; absent or Infinity off WebGPU). */
  maxBindingBytes?: number;
}

export interface GNetSpec {
  method: "gnet";
  /** SAM's architecture; image_size is the side the encoder runs at (1024 for the paper). */
  sam: SamConfig;
  backbone: HarDNetConfig;
  decoder: GNetDecoderConfig;
  /** Side of the model's input and output grid (224 in the paper). */
  imageSize: number;
  /** Side of the g-network's input: half the encoder's (512 for ViT-B). */
  gnetSize: number;
  numClasses: number;
  /**
   * Factor on the frozen decoder's mask logits: 1 with SAM/MedSAM weights; RANDOM_SAM_LOGIT_GAIN with random
   * ones (smoke runs), whose logits are too small to learn through (docs/methods.md 2.3).
   */
  logitGain: number;
}

/**
 * A randomly drawn mask decoder answers with logits of spread 0.03 (tiny) to 0.08 (ViT-B), which a dense
 * embedding moves by half that: sigmoid sees 0.5 everywhere and the loss barely moves. A random decoder's
 * argmax does not depend on the factor (it only scales logits), but the loss and its gradients do. Measured
 * with the tiny preset on a 30-patient ACDC-format set (5 training patients, the tiny recipe, validation
 * Dice after 12 epochs): x20 0.52, x50 0.68, x100 0.69, x200 0.66 (and unsteady: 0.37 at epoch 7); with x100
 * the logits' spread is 4 at the start and a saturated (tanh +-1) dense embedding moves them by about 3, so
 * sigmoid can reach confident probabilities and BCE + Dice keep a useful gradient (docs/methods.md 2.3). The
 * factor is for the random stand-in only; SAM/MedSAM weights get 1.
 */
export const RANDOM_SAM_LOGIT_GAIN = 100;

/** The frozen SAM parts the method runs: image encoder, the dense positional encoding's matrix, mask decoder. */
export const isFrozenPart = (k: string) =>
  k.startsWith("image_encoder.") || k.startsWith("mask_decoder.") ||
  k === "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix";

/** Prefix of the backbone's parameter names (ModelEmb's backbone module). */
export const BACKBONE = "backbone.";

/** The model spec a config implies (no weights touched); bad sizes are ConfigErrors. */
export function gnetSpec(o: GNetBuildOptions): GNetSpec {
  const p = GNET_PRESETS[o.preset];
  const encoderSize = o.encoderSize ?? p.encoderSize;
  const sam = presetAtSize(o.preset, encoderSize);
  if (encoderSize % 32 || encoderSize < 64) {
    throw new ConfigError(
      `--encoder-size ${encoderSize}: the g-network needs a multiple of 32, at least 64 (it reads the image at ` +
        `half that size and pools it 16x)`,
    );
  }
  if (o.numClasses < 2) throw new ConfigError(`the g-network needs at least 2 classes, got ${o.numClasses}`);
  const [c4, c8, c16] = hardnetFeatureWidths(p.backbone);
  return {
    method: "gnet",
    sam,
    backbone: p.backbone,
    decoder: { skips: [c4, c8, c16], embed: sam.out_chans, outputs: o.numClasses - 1 },
    imageSize: o.imageSize,
    gnetSize: encoderSize / 2,
    numClasses: o.numClasses,
    logitGain: o.weights ? 1 : RANDOM_SAM_LOGIT_GAIN,
  };
}

/** The g-network's parameters: the backbone's (named backbone.base.*) and the decoder's (decoder.*). */
export function gnetDefs(spec: GNetSpec): NetDefs {
  const backbone = hardnetPlan(spec.backbone, BACKBONE).defs;
  const decoder = gnetDecoderDefs(spec.decoder);
  return { convs: [...backbone.convs, ...decoder.convs], norms: [...backbone.norms, ...decoder.norms] };
}

/** Parameter counts from the architecture alone (what --dry-run prints), without drawing any weight. */
export function gnetParamCounts(o: GNetBuildOptions): {
  trainable: number;
  frozen: number;
  backbone: number;
  decoder: number;
} {
  const spec = gnetSpec(o);
  const backbone = paramCount(hardnetPlan(spec.backbone).defs);
  const decoder = paramCount(gnetDecoderDefs(spec.decoder));
  // Checkpoint weights keep the preset's shapes (the encoder resizes its position table); random ones are drawn
  // at the encoder size.
  const shapes = samParamShapes(o.weights ? PRESETS[o.preset] : spec.sam);
  const frozen = [...shapes].filter(([k]) => isFrozenPart(k)).reduce(
    (n, [, s]) => n + s.reduce((a, b) => a * b, 1),
    0,
  );
  return { trainable: backbone + decoder, frozen, backbone, decoder };
}
