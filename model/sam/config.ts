/**
 * SAM architecture configs: the presets, and strict parsing of config JSON files in the form of
 * fixtures/reference/tiny_sam.config.json, so a wrong file fails before any weights are read.
 */
import { ConfigError } from "../../errors.ts";
import { InputError, readInputText } from "../../io/safe_open.ts";

/** Architecture of one SAM model; field names follow the official build_sam / tiny_sam.config.json. */
export interface SamConfig {
  /** Side of the square input the encoder was built for (pos_embed covers image_size / patch_size). */
  image_size: number;
  patch_size: number;
  embed_dim: number;
  depth: number;
  num_heads: number;
  /** Window side of the windowed blocks; 0 makes every block global. */
  window_size: number;
  global_attn_indexes: number[];
  /** Channels of the image embedding, which is also the prompt / mask decoder width. */
  out_chans: number;
  mask_in_chans: number;
  decoder_mlp_dim: number;
  decoder_num_heads: number;
  iou_head_hidden_dim: number;
  /** Encoder MLP width = embed_dim * mlp_ratio (4 in every official model). */
  mlp_ratio: number;
  /** Two-way transformer layers (2 in every official model). */
  decoder_depth: number;
  /** Masks besides the single-mask output (3 officially; SAMed uses the class count). */
  num_multimask_outputs: number;
  /** Sam.preprocess normalisation, 0..255 scale, RGB. */
  pixel_mean: [number, number, number];
  pixel_std: [number, number, number];
}

/** Fields every config file must give. */
const REQUIRED = [
  "image_size",
  "patch_size",
  "embed_dim",
  "depth",
  "num_heads",
  "window_size",
  "global_attn_indexes",
  "out_chans",
  "mask_in_chans",
  "decoder_mlp_dim",
  "decoder_num_heads",
  "iou_head_hidden_dim",
] as const;

const DEFAULTS = {
  mlp_ratio: 4,
  decoder_depth: 2,
  num_multimask_outputs: 3,
  pixel_mean: [123.675, 116.28, 103.53] as [number, number, number],
  pixel_std: [58.395, 57.12, 57.375] as [number, number, number],
};

/** Names a config may carry besides the required ones (prompt_embed_dim must equal out_chans). */
const OPTIONAL = new Set([...Object.keys(DEFAULTS), "prompt_embed_dim"]);

export const PRESETS: { vit_b: SamConfig; tiny: SamConfig } = {
  vit_b: {
    image_size: 1024,
    patch_size: 16,
    embed_dim: 768,
    depth: 12,
    num_heads: 12,
    window_size: 14,
    global_attn_indexes: [2, 5, 8, 11],
    out_chans: 256,
    mask_in_chans: 16,
    decoder_mlp_dim: 2048,
    decoder_num_heads: 8,
    iou_head_hidden_dim: 256,
    ...DEFAULTS,
  },
  /** The parity fixture's architecture at 64 px (8x8 tokens): fast enough for CPU training demos. */
  tiny: {
    image_size: 64,
    patch_size: 8,
    embed_dim: 32,
    depth: 4,
    num_heads: 2,
    window_size: 4,
    global_attn_indexes: [1, 3],
    out_chans: 32,
    mask_in_chans: 4,
    decoder_mlp_dim: 64,
    decoder_num_heads: 2,
    iou_head_hidden_dim: 32,
    ...DEFAULTS,
  },
};

export type PresetName = keyof typeof PRESETS;

/**
 * A preset's architecture with the encoder run at encoderSize (pos_embed and relative positions are resized
 * to it); a size that is not a multiple of the patch size is a ConfigError.
 */
export function presetAtSize(preset: PresetName, encoderSize: number): SamConfig {
  const sam = { ...structuredClone(PRESETS[preset]), image_size: encoderSize };
  if (encoderSize % sam.patch_size) {
    throw new ConfigError(
      `--encoder-size ${encoderSize} is not a multiple of the patch size ${sam.patch_size}`,
    );
  }
  return sam;
}

/** Side of the image embedding grid (64 for ViT-B). */
export function embeddingSize(cfg: SamConfig): number {
  return cfg.image_size / cfg.patch_size;
}

/** A value as JSON for a message, cut short: a hostile file's million-entry array stays one short line. */
function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function fail(file: string, msg: string): never {
  throw new ConfigError(`${file}: bad SAM config: ${msg}`);
}

/**
 * The largest value each number of a config may take: several times the largest official model (ViT-H:
 * embed 1280, depth 32, 16 heads), so any real architecture fits, while a typo or a hostile file
 * ("depth": 1000000000) fails here instead of after minutes of building a model that cannot fit in memory.
 */
export const SAM_CONFIG_MAX = {
  image_size: 4096,
  patch_size: 64,
  embed_dim: 4096,
  depth: 64,
  num_heads: 64,
  window_size: 256,
  out_chans: 4096,
  mask_in_chans: 1024,
  decoder_mlp_dim: 16384,
  decoder_num_heads: 64,
  iou_head_hidden_dim: 4096,
  mlp_ratio: 16,
  decoder_depth: 16,
  num_multimask_outputs: 256,
} as const;

/** The most parameters a config may describe (ViT-H has 641 million): 2^31, 8 GiB as float32. */
export const MAX_SAM_PARAMETERS = 2 ** 31;

/** pixel_mean / pixel_std are on the 0..255 scale; anything past this magnitude is not an image statistic. */
const MAX_PIXEL_STAT = 1e6;

function posInt(
  file: string,
  obj: Record<string, unknown>,
  key: keyof typeof SAM_CONFIG_MAX,
  min = 1,
): number {
  const v = obj[key];
  const max = SAM_CONFIG_MAX[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    fail(file, `"${key}" must be an integer >= ${min} and <= ${max}, got ${show(v)}`);
  }
  return v;
}

function triple(file: string, v: unknown, key: string, positive: boolean): [number, number, number] {
  const ok = Array.isArray(v) && v.length === 3 &&
    v.every((x) =>
      typeof x === "number" && Number.isFinite(x) && Math.abs(x) <= MAX_PIXEL_STAT &&
      (!positive || x >= 1e-6)
    );
  if (!ok) {
    fail(
      file,
      `"${key}" must be 3 ${positive ? "positive " : ""}numbers of magnitude at most ${MAX_PIXEL_STAT}` +
        `${positive ? " and at least 1e-6" : ""}, got ${show(v)}`,
    );
  }
  return v as [number, number, number];
}

/**
 * A close upper estimate of the parameter count (the big matrices of the encoder, neck, prompt encoder and
 * decoder), cheap enough to check before anything is built.
 */
export function estimateSamParameters(c: SamConfig): number {
  const e = c.embed_dim, o = c.out_chans, grid = c.image_size / c.patch_size;
  const mlp = e * c.mlp_ratio;
  const relPos = 2 * (2 * Math.max(grid, c.window_size) - 1) * (e / c.num_heads);
  const block = 4 * e * e + 2 * e * mlp + relPos + 9 * e;
  const encoder = 3 * c.patch_size ** 2 * e + grid * grid * e + c.depth * block + e * o + 9 * o * o;
  const prompt = c.mask_in_chans * (4 + c.mask_in_chans * 4 * 4) + c.mask_in_chans * o + 8 * o;
  const decoderLayer = 3 * 4 * o * o + 2 * o * c.decoder_mlp_dim + 8 * o;
  const heads = (c.num_multimask_outputs + 1) * (2 * o * o + o * (o / 8));
  const decoder = c.decoder_depth * decoderLayer + 4 * o * o + o * o + heads +
    o * c.iou_head_hidden_dim + c.iou_head_hidden_dim ** 2 + c.iou_head_hidden_dim * 4;
  return encoder + prompt + decoder;
}

/** Validates a parsed JSON config (file is only for messages); every problem is a one-line ConfigError. */
export function parseSamConfig(json: unknown, file: string): SamConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) fail(file, "expected a JSON object");
  const o = json as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) =>
    !(REQUIRED as readonly string[]).includes(k) && !OPTIONAL.has(k)
  );
  if (unknown.length) fail(file, `unknown field(s) ${unknown.map((k) => `"${k}"`).join(", ")}`);
  const missing = REQUIRED.filter((k) => !(k in o));
  if (missing.length) fail(file, `missing field(s) ${missing.map((k) => `"${k}"`).join(", ")}`);
  const cfg: SamConfig = {
    image_size: posInt(file, o, "image_size"),
    patch_size: posInt(file, o, "patch_size"),
    embed_dim: posInt(file, o, "embed_dim"),
    depth: posInt(file, o, "depth"),
    num_heads: posInt(file, o, "num_heads"),
    window_size: posInt(file, o, "window_size", 0),
    global_attn_indexes: [],
    out_chans: posInt(file, o, "out_chans"),
    mask_in_chans: posInt(file, o, "mask_in_chans"),
    decoder_mlp_dim: posInt(file, o, "decoder_mlp_dim"),
    decoder_num_heads: posInt(file, o, "decoder_num_heads"),
    iou_head_hidden_dim: posInt(file, o, "iou_head_hidden_dim"),
    mlp_ratio: "mlp_ratio" in o ? 0 : DEFAULTS.mlp_ratio,
    decoder_depth: "decoder_depth" in o ? posInt(file, o, "decoder_depth") : DEFAULTS.decoder_depth,
    num_multimask_outputs: "num_multimask_outputs" in o
      ? posInt(file, o, "num_multimask_outputs")
      : DEFAULTS.num_multimask_outputs,
    pixel_mean: "pixel_mean" in o
      ? triple(file, o.pixel_mean, "pixel_mean", false)
      : [...DEFAULTS.pixel_mean],
    pixel_std: "pixel_std" in o ? triple(file, o.pixel_std, "pixel_std", true) : [...DEFAULTS.pixel_std],
  };
  if ("mlp_ratio" in o) {
    const r = o.mlp_ratio;
    if (
      typeof r !== "number" || !(r > 0) || r > SAM_CONFIG_MAX.mlp_ratio ||
      !Number.isInteger(r * cfg.embed_dim)
    ) {
      fail(
        file,
        `"mlp_ratio" must be positive, at most ${SAM_CONFIG_MAX.mlp_ratio}, with embed_dim * mlp_ratio whole, ` +
          `got ${show(r)}`,
      );
    }
    cfg.mlp_ratio = r;
  }
  const g = o.global_attn_indexes;
  if (!Array.isArray(g) || !g.every((i) => Number.isSafeInteger(i) && i >= 0 && i < cfg.depth)) {
    fail(
      file,
      `"global_attn_indexes" must list block indexes in 0..${cfg.depth - 1}, got ${show(g)}`,
    );
  }
  if (new Set(g).size !== g.length) {
    fail(file, `"global_attn_indexes" repeats an index: ${show(g)}`);
  }
  cfg.global_attn_indexes = [...g as number[]];
  if ("prompt_embed_dim" in o && o.prompt_embed_dim !== cfg.out_chans) {
    fail(
      file,
      `"prompt_embed_dim" (${show(o.prompt_embed_dim)}) must equal out_chans (${cfg.out_chans})`,
    );
  }
  checkConsistent(cfg, file);
  return cfg;
}

/** The divisibility rules the official modules assert (or silently rely on). */
function checkConsistent(c: SamConfig, file: string): void {
  if (c.image_size % c.patch_size) {
    fail(file, `image_size ${c.image_size} is not a multiple of patch_size ${c.patch_size}`);
  }
  if (c.embed_dim % c.num_heads) {
    fail(file, `embed_dim ${c.embed_dim} is not a multiple of num_heads ${c.num_heads}`);
  }
  if (c.out_chans % 8) {
    fail(file, `out_chans ${c.out_chans} must be a multiple of 8 (mask upscaling to out_chans/8)`);
  }
  if ((c.out_chans / 2) % c.decoder_num_heads) {
    fail(
      file,
      `out_chans/2 = ${c.out_chans / 2} is not a multiple of decoder_num_heads ${c.decoder_num_heads}`,
    );
  }
  if (c.out_chans % c.decoder_num_heads) {
    fail(file, `out_chans ${c.out_chans} is not a multiple of decoder_num_heads ${c.decoder_num_heads}`);
  }
  if (c.mask_in_chans % 4) fail(file, `mask_in_chans ${c.mask_in_chans} must be a multiple of 4`);
  const params = estimateSamParameters(c);
  if (params > MAX_SAM_PARAMETERS) {
    fail(
      file,
      `the architecture has about ${(params / 1e9).toFixed(1)} billion parameters, over the limit of ` +
        `${MAX_SAM_PARAMETERS} (${
          (MAX_SAM_PARAMETERS * 4) / 2 ** 30
        } GiB as float32; ViT-H has 0.64 billion)`,
    );
  }
}

/** A preset by name (a fresh copy), or a config JSON file by path. */
export async function loadSamConfig(nameOrPath: string): Promise<SamConfig> {
  if (Object.hasOwn(PRESETS, nameOrPath)) return structuredClone(PRESETS[nameOrPath as PresetName]);
  let text: string;
  try {
    text = await readInputText(nameOrPath, { maxBytes: 1 << 20, what: "SAM config file" });
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    const problem = err.message.slice(nameOrPath.length + 2);
    if (problem === "not found") {
      throw new ConfigError(
        `${nameOrPath}: no such config file (or preset: ${Object.keys(PRESETS).join(", ")})`,
      );
    }
    if (problem === "is a folder, not a file") {
      throw new ConfigError(`${nameOrPath}: is a directory, not a config`);
    }
    throw new ConfigError(err.message);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${nameOrPath}: bad SAM config: not JSON (${(err as Error).message})`);
  }
  return parseSamConfig(json, nameOrPath);
}
