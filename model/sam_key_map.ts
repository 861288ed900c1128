/**
 * Key names of the official SAM state dict versus the Hugging Face port (transformers convert_sam_to_hf.py),
 * so a model.safetensors from facebook/sam-vit-base or wanglab/medsam-vit-base loads into our official layout.
 */

/** The converter's substring replacements, applied in this order to every key (docs/methods.md 1.4). */
const TO_HF: [string, string][] = [
  ["iou_prediction_head.layers.0", "iou_prediction_head.proj_in"],
  ["iou_prediction_head.layers.1", "iou_prediction_head.layers.0"],
  ["iou_prediction_head.layers.2", "iou_prediction_head.proj_out"],
  ["mask_decoder.output_upscaling.0", "mask_decoder.upscale_conv1"],
  ["mask_decoder.output_upscaling.1", "mask_decoder.upscale_layer_norm"],
  ["mask_decoder.output_upscaling.3", "mask_decoder.upscale_conv2"],
  ["mask_downscaling.0", "mask_embed.conv1"],
  ["mask_downscaling.1", "mask_embed.layer_norm1"],
  ["mask_downscaling.3", "mask_embed.conv2"],
  ["mask_downscaling.4", "mask_embed.layer_norm2"],
  ["mask_downscaling.6", "mask_embed.conv3"],
  ["point_embeddings", "point_embed"],
  ["pe_layer.positional_encoding_gaussian_matrix", "shared_embedding.positional_embedding"],
  ["image_encoder", "vision_encoder"],
  ["neck.0", "neck.conv1"],
  ["neck.1", "neck.layer_norm1"],
  ["neck.2", "neck.conv2"],
  ["neck.3", "neck.layer_norm2"],
  ["patch_embed.proj", "patch_embed.projection"],
  [".norm", ".layer_norm"],
  ["blocks", "layers"],
];

/**
 * The inverse, hand-ordered: the generic ".layer_norm" and "layers" rules would also hit neck.layer_norm1,
 * mask_embed.layer_norm1 and the mask decoder's transformer.layers, so the specific fragments go first and
 * "layers" -> "blocks" is confined to the vision encoder.
 */
const FROM_HF: [string, string][] = [
  ["vision_encoder.layers.", "image_encoder.blocks."],
  ["vision_encoder.", "image_encoder."],
  ["patch_embed.projection", "patch_embed.proj"],
  ["neck.conv1", "neck.0"],
  ["neck.layer_norm1", "neck.1"],
  ["neck.conv2", "neck.2"],
  ["neck.layer_norm2", "neck.3"],
  ["mask_decoder.upscale_conv1", "mask_decoder.output_upscaling.0"],
  ["mask_decoder.upscale_layer_norm", "mask_decoder.output_upscaling.1"],
  ["mask_decoder.upscale_conv2", "mask_decoder.output_upscaling.3"],
  ["mask_embed.conv1", "mask_downscaling.0"],
  ["mask_embed.layer_norm1", "mask_downscaling.1"],
  ["mask_embed.conv2", "mask_downscaling.3"],
  ["mask_embed.layer_norm2", "mask_downscaling.4"],
  ["mask_embed.conv3", "mask_downscaling.6"],
  ["prompt_encoder.point_embed.", "prompt_encoder.point_embeddings."],
  ["shared_embedding.positional_embedding", "pe_layer.positional_encoding_gaussian_matrix"],
  [".layer_norm", ".norm"],
];

/** The 3-layer MLPs the converter renames layer by layer: layers.0/1/2 <-> proj_in/layers.0/proj_out. */
const MLP_OFFICIAL = /^(.*(?:iou_prediction_head|output_hypernetworks_mlps\.\d+))\.layers\.([012])(\..*)?$/;
const MLP_HF =
  /^(.*(?:iou_prediction_head|output_hypernetworks_mlps\.\d+))\.(proj_in|layers\.0|proj_out)(\..*)?$/;
const MLP_NAMES = ["proj_in", "layers.0", "proj_out"];

/** HF keeps the prompt encoder's positional matrix a second time at the top level (a tied module). */
export const HF_SHARED_DUPLICATE = "shared_image_embedding.positional_embedding";
const PE_OFFICIAL = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix";

/** Official SAM key -> Hugging Face SamModel key. */
export function officialToHf(key: string): string {
  const mlp = MLP_OFFICIAL.exec(key);
  let k = mlp ? `${mlp[1]}.#${mlp[2]}${mlp[3] ?? ""}` : key; // shield the MLP index from the table
  for (const [from, to] of TO_HF) if (k.includes(from)) k = k.replaceAll(from, to);
  return k.replace(/#([012])/, (_, i) => MLP_NAMES[Number(i)]);
}

/** Hugging Face SamModel key -> official SAM key (the top-level shared duplicate maps to the prompt encoder's). */
export function hfToOfficial(key: string): string {
  if (key === HF_SHARED_DUPLICATE) return PE_OFFICIAL;
  const mlp = MLP_HF.exec(key);
  let k = mlp ? `${mlp[1]}.#${MLP_NAMES.indexOf(mlp[2])}${mlp[3] ?? ""}` : key;
  for (const [from, to] of FROM_HF) if (k.includes(from)) k = k.replaceAll(from, to);
  return k.replace(/#([012])/, "layers.$1");
}

/** True when the keys look like a Hugging Face SAM checkpoint rather than the official layout. */
export function isHfSamKeys(keys: Iterable<string>): boolean {
  for (const k of keys) if (k.startsWith("vision_encoder.") || k === HF_SHARED_DUPLICATE) return true;
  return false;
}
