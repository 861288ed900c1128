/**
 * HarDNet (Chao et al. 2019, "HarDNet: A Low Memory Traffic Network") as the g-network's backbone, NHWC:
 * a stride-2 stem, max-pool, then HarD blocks each followed by a 1x1 transition and, at some, a 2x2 max-pool;
 * returns the features at 1/4, 1/8 and 1/16 (docs/methods.md 2.3), parameters named as PyTorch's HarDNet.
 */
import { tf } from "../../engine/tf.ts";
import { CheckpointError, readStateDict } from "../checkpoint.ts";
import { batchNorm, conv, type ConvBnVars, type ConvDef, importConvBn, type NetDefs } from "./conv_bn.ts";

/** One HarD block and what follows it. */
export interface HarDStage {
  /** Growth rate k: the width of the block's first layer. */
  growth: number;
  layers: number;
  /** Channels of the 1x1 transition after the block. */
  width: number;
  /** A 2x2 max-pool after the transition (the transition's output is then a skip feature). */
  pool: boolean;
}

export interface HarDNetConfig {
  /** Channels of the two stem convolutions (3x3 stride 2, then 3x3). */
  stem: [number, number];
  /** Width multiplier per extra link of a layer. */
  grmul: number;
  stages: HarDStage[];
}

/** HarDNet-85 as published (35,389,212 parameters without the ImageNet classifier). */
export const HARDNET85: HarDNetConfig = {
  stem: [48, 96],
  grmul: 1.7,
  stages: [
    { growth: 24, layers: 8, width: 192, pool: true },
    { growth: 24, layers: 16, width: 256, pool: false },
    { growth: 28, layers: 16, width: 320, pool: true },
    { growth: 36, layers: 16, width: 480, pool: false },
    { growth: 48, layers: 16, width: 720, pool: true },
    { growth: 256, layers: 4, width: 1280, pool: false },
  ],
};

/**
 * What the g-network builds of HarDNet-85: up to the 1/16 features. Its decoder never reads the 1/32 stage
 * (block 5 and the 1280-wide transition, 17,505,664 parameters), which therefore gets no gradient in the
 * original either; see docs/methods.md 2.3.
 */
export const HARDNET85_TO_16: HarDNetConfig = { ...HARDNET85, stages: HARDNET85.stages.slice(0, 5) };

/** The same structure, narrow and shallow, for the tiny preset and tests. */
export const HARDNET_TINY: HarDNetConfig = {
  stem: [8, 16],
  grmul: 1.7,
  stages: [
    { growth: 4, layers: 4, width: 24, pool: true },
    { growth: 4, layers: 4, width: 32, pool: false },
    { growth: 6, layers: 4, width: 40, pool: true },
    { growth: 6, layers: 4, width: 48, pool: false },
    { growth: 8, layers: 4, width: 64, pool: true },
  ],
};

/** Layer k (1-based) of a HarD block: the earlier layers it reads (0 = the block's input) and its width. */
export interface HarDLink {
  links: number[];
  cin: number;
  cout: number;
}

/**
 * The HarD link rule: layer k reads layer k - 2^i for every 2^i dividing k; its width is the growth rate
 * times grmul per link beyond the first, rounded to an even number as the reference code does
 * (int(int(w + 1) / 2) * 2); its input width is the sum of the widths it reads.
 */
export function hardLinks(inCh: number, growth: number, grmul: number, layers: number): HarDLink[] {
  const width = [inCh];
  const out: HarDLink[] = [];
  for (let k = 1; k <= layers; k++) {
    const links: number[] = [];
    let w = growth;
    for (let i = 0; 2 ** i <= k; i++) {
      if (k % 2 ** i) continue;
      links.push(k - 2 ** i);
      if (i > 0) w *= grmul;
    }
    const cout = Math.trunc(Math.trunc(w + 1) / 2) * 2;
    width.push(cout);
    out.push({ links, cin: links.reduce((s, j) => s + width[j], 0), cout });
  }
  return out;
}

/** A block outputs its odd layers and its last, concatenated in order. */
function blockOutputs(layers: number): number[] {
  return Array.from({ length: layers }, (_, i) => i + 1).filter((k) => k % 2 === 1 || k === layers);
}

/** A ConvLayer of the plan: conv (no bias), its BatchNorm, ReLU6; in a block, the earlier layers it reads. */
interface LayerStep {
  conv: ConvDef;
  norm: string;
  links: number[];
}

type Step =
  | { kind: "conv"; layer: LayerStep }
  | { kind: "block"; layers: LayerStep[]; outputs: number[] }
  | { kind: "pool"; size: 2 | 3 }
  | { kind: "feature" };

/**
 * The forward plan and parameter list. Module indices follow PyTorch's HarDNet.base list (stem convs 0 and 1,
 * the max-pool 2, then per stage: block, transition, optional pool), so HarDNet-85's keys are base.0 ...
 * base.14 up to the 1/16 features; an ImageNet file's base.15 onwards (pool, 1/32 stage, dropout, classifier)
 * are what HARDNET85_TO_16 leaves out.
 */
export function hardnetPlan(cfg: HarDNetConfig, prefix = ""): { steps: Step[]; defs: NetDefs } {
  const steps: Step[] = [];
  const defs: NetDefs = { convs: [], norms: [] };
  const layer = (name: string, k: 1 | 3, stride: 1 | 2, cin: number, cout: number, links: number[] = []) => {
    const c: ConvDef = { name: `${name}.conv`, k, stride, cin, cout, bias: false };
    defs.convs.push(c);
    defs.norms.push({ name: `${name}.norm`, c: cout });
    return { conv: c, norm: `${name}.norm`, links };
  };
  let index = 0;
  const next = () => `${prefix}base.${index++}`;
  steps.push({ kind: "conv", layer: layer(next(), 3, 2, 3, cfg.stem[0]) });
  steps.push({ kind: "conv", layer: layer(next(), 3, 1, cfg.stem[0], cfg.stem[1]) });
  steps.push({ kind: "pool", size: 3 });
  index++;
  let ch = cfg.stem[1];
  cfg.stages.forEach((s, i) => {
    const blockName = next();
    const links = hardLinks(ch, s.growth, cfg.grmul, s.layers);
    const layers = links.map((l, j) => layer(`${blockName}.layers.${j}`, 3, 1, l.cin, l.cout, l.links));
    const outputs = blockOutputs(s.layers);
    steps.push({ kind: "block", layers, outputs });
    const blockOut = outputs.reduce((n, k) => n + links[k - 1].cout, 0);
    steps.push({ kind: "conv", layer: layer(next(), 1, 1, blockOut, s.width) });
    ch = s.width;
    const last = i === cfg.stages.length - 1;
    if (s.pool || last) steps.push({ kind: "feature" });
    if (s.pool && !last) {
      steps.push({ kind: "pool", size: 2 });
      index++;
    }
  });
  return { steps, defs };
}

/** Channels of the features hardnet() returns, shallowest first (HarDNet-85 cut at 1/16: 192, 320, 720). */
export function hardnetFeatureWidths(cfg: HarDNetConfig): number[] {
  return cfg.stages.filter((s, i) => s.pool || i === cfg.stages.length - 1).map((s) => s.width);
}

/** ConvLayer: conv (no bias), BatchNorm, ReLU6. */
function convLayer(vars: ConvBnVars, l: LayerStep, x: tf.Tensor4D, training: boolean): tf.Tensor4D {
  return tf.relu6(batchNorm(vars, l.norm, conv(vars, l.conv, x), training)) as tf.Tensor4D;
}

/**
 * x [B, H, W, 3] (H, W multiples of 16) -> features [B, H/4, W/4, c0], [B, H/8, W/8, c1], [B, H/16, W/16, c2]
 * for HarDNet-85 cut at 1/16 (one feature per pooled stage, plus the last stage). training: BatchNorm uses
 * and updates batch statistics.
 */
export function hardnet(
  vars: ConvBnVars,
  cfg: HarDNetConfig,
  x: tf.Tensor4D,
  training: boolean,
  prefix = "",
): tf.Tensor4D[] {
  const { steps } = hardnetPlan(cfg, prefix);
  const features: tf.Tensor4D[] = [];
  let h = x;
  for (const s of steps) {
    if (s.kind === "conv") h = convLayer(vars, s.layer, h, training);
    else if (s.kind === "pool") h = s.size === 3 ? tf.maxPool(h, 3, 2, 1) : tf.maxPool(h, 2, 2, "valid");
    else if (s.kind === "feature") features.push(h);
    else {
      const outs: tf.Tensor4D[] = [h]; // outs[k]: layer k's output, outs[0] the block's input
      for (const l of s.layers) {
        const input = l.links.length === 1 ? outs[l.links[0]] : tf.concat(l.links.map((k) => outs[k]), 3);
        outs.push(convLayer(vars, l, input as tf.Tensor4D, training));
      }
      h = tf.concat(s.outputs.map((k) => outs[k]), 3) as tf.Tensor4D;
    }
  }
  return features;
}

/**
 * Loads a PyTorch HarDNet state dict (e.g. the published ImageNet hardnet85.pth, .pth or .safetensors) into
 * variables named prefix + the file's keys (base.N...). Keys of modules past the last one cfg builds (for
 * HARDNET85_TO_16: base.15 onwards, the 1/32 stage and the classifier) and num_batches_tracked are not read;
 * anything else missing, unexpected or misshapen is one CheckpointError naming the file.
 */
export async function loadHardnetStateDict(
  vars: ConvBnVars,
  cfg: HarDNetConfig,
  path: string,
  prefix = "",
): Promise<void> {
  const sd = await readStateDict(path);
  if (!sd.has("base.0.conv.weight")) {
    throw new CheckpointError(
      `${path}: not a HarDNet state dict (no key base.0.conv.weight; expected PyTorch HarDNet's names)`,
    );
  }
  const defs = hardnetPlan(cfg, prefix).defs;
  const index = (key: string) => Number(key.slice(prefix.length).split(".")[1]); // base.N...
  const last = Math.max(...defs.convs.map((d) => index(d.name)));
  importConvBn(vars, defs, sd, path, {
    fileKey: (k) => k.slice(prefix.length),
    ignore: (k) => k.endsWith(".num_batches_tracked") || Number(k.split(".")[1]) > last,
    anyFloat: true,
  });
}
