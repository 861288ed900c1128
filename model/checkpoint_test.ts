import assert from "node:assert/strict";
import {
  CheckpointError,
  checkStrict,
  detectFormat,
  hfToOfficial,
  officialToHf,
  planKeys,
  readStateDict,
  sha256File,
} from "./checkpoint.ts";
import { writeSafetensors } from "../io/safetensors.ts";
import { type HostTensor, hostTensor } from "../io/host_tensor.ts";
import { readPth } from "../io/pth.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;
const TINY = `${FIXTURES}reference/tiny_sam.pth`;
const VIT_B: Record<string, number[]> =
  JSON.parse(await Deno.readTextFile(`${FIXTURES}reference/sam_vit_b.keys.json`))
    .keys;

Deno.test("HF key map: every ViT-B key round-trips, the map is one-to-one, and matches docs/methods.md 1.4", () => {
  const keys = Object.keys(VIT_B);
  assert.equal(keys.length > 200, true);
  const hf = keys.map(officialToHf);
  for (let i = 0; i < keys.length; i++) assert.equal(hfToOfficial(hf[i]), keys[i], `${keys[i]} -> ${hf[i]}`);
  assert.equal(new Set(hf).size, keys.length, "no two official keys share an HF name");
  const spot: [string, string][] = [
    ["image_encoder.patch_embed.proj.weight", "vision_encoder.patch_embed.projection.weight"],
    ["image_encoder.pos_embed", "vision_encoder.pos_embed"],
    ["image_encoder.blocks.11.norm1.weight", "vision_encoder.layers.11.layer_norm1.weight"],
    ["image_encoder.blocks.2.attn.rel_pos_h", "vision_encoder.layers.2.attn.rel_pos_h"],
    ["image_encoder.blocks.0.attn.qkv.bias", "vision_encoder.layers.0.attn.qkv.bias"],
    ["image_encoder.blocks.5.mlp.lin2.weight", "vision_encoder.layers.5.mlp.lin2.weight"],
    ["image_encoder.neck.0.weight", "vision_encoder.neck.conv1.weight"],
    ["image_encoder.neck.1.bias", "vision_encoder.neck.layer_norm1.bias"],
    ["image_encoder.neck.3.weight", "vision_encoder.neck.layer_norm2.weight"],
    [
      "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
      "prompt_encoder.shared_embedding.positional_embedding",
    ],
    ["prompt_encoder.point_embeddings.3.weight", "prompt_encoder.point_embed.3.weight"],
    ["prompt_encoder.not_a_point_embed.weight", "prompt_encoder.not_a_point_embed.weight"],
    ["prompt_encoder.mask_downscaling.4.bias", "prompt_encoder.mask_embed.layer_norm2.bias"],
    ["prompt_encoder.mask_downscaling.6.weight", "prompt_encoder.mask_embed.conv3.weight"],
    [
      "mask_decoder.transformer.layers.1.norm4.weight",
      "mask_decoder.transformer.layers.1.layer_norm4.weight",
    ],
    [
      "mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight",
      "mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight",
    ],
    ["mask_decoder.transformer.norm_final_attn.bias", "mask_decoder.transformer.layer_norm_final_attn.bias"],
    ["mask_decoder.output_upscaling.1.weight", "mask_decoder.upscale_layer_norm.weight"],
    ["mask_decoder.output_upscaling.3.bias", "mask_decoder.upscale_conv2.bias"],
    [
      "mask_decoder.output_hypernetworks_mlps.3.layers.0.weight",
      "mask_decoder.output_hypernetworks_mlps.3.proj_in.weight",
    ],
    [
      "mask_decoder.output_hypernetworks_mlps.0.layers.1.bias",
      "mask_decoder.output_hypernetworks_mlps.0.layers.0.bias",
    ],
    ["mask_decoder.iou_prediction_head.layers.2.weight", "mask_decoder.iou_prediction_head.proj_out.weight"],
    ["mask_decoder.iou_token.weight", "mask_decoder.iou_token.weight"],
  ];
  for (const [official, want] of spot) {
    assert.ok(official in VIT_B, official);
    assert.equal(officialToHf(official), want);
  }
  assert.equal(
    hfToOfficial("shared_image_embedding.positional_embedding"),
    "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
  );
});

Deno.test("readStateDict: tiny_sam.pth loads with official keys, identical to readPth", async () => {
  const sd = await readStateDict(TINY);
  const raw = await readPth(TINY);
  assert.deepEqual([...sd.keys()], [...raw.keys()]);
  assert.deepEqual(sd.get("image_encoder.pos_embed"), raw.get("image_encoder.pos_embed"));
  assert.equal(await detectFormat(TINY), "pth-zip");
  const nested = await readStateDict(`${FIXTURES}samples/pth/test_with_key.pt`);
  assert.deepEqual([...nested.keys()], ["test"], "the model_state_dict entry is unwrapped");
});

Deno.test("readStateDict: HF safetensors, module. prefix and a lying extension all map to official keys", async () => {
  const official = await readPth(TINY);
  const dir = await Deno.makeTempDir();
  try {
    const hf = new Map([...official].map(([k, t]) => [officialToHf(k), t]));
    const pe = hf.get("prompt_encoder.shared_embedding.positional_embedding")!;
    hf.set("shared_image_embedding.positional_embedding", pe); // the converter's duplicate
    await writeSafetensors(`${dir}/model.safetensors`, hf);
    assert.deepEqual(await readStateDict(`${dir}/model.safetensors`), official);

    // SFConvertbot drops one of a pair of tied tensors: the top-level copy alone must still load.
    hf.delete("prompt_encoder.shared_embedding.positional_embedding");
    await writeSafetensors(`${dir}/model.pth`, hf); // safetensors bytes under a .pth name
    assert.equal(await detectFormat(`${dir}/model.pth`), "safetensors");
    const fromDup = await readStateDict(`${dir}/model.pth`);
    assert.deepEqual(new Set(fromDup.keys()), new Set(official.keys()));

    const wrapped = new Map([...official].map(([k, t]) => [`module.${k}`, t]));
    wrapped.set("module.pixel_mean", hostTensor("float32", [3, 1, 1], new Float32Array(3)));
    await writeSafetensors(`${dir}/dp.safetensors`, wrapped);
    assert.deepEqual(await readStateDict(`${dir}/dp.safetensors`), official);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readStateDict: empty, random, missing and directory inputs are CheckpointErrors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/empty.pth`, new Uint8Array(0));
    await Deno.writeFile(
      `${dir}/random.pth`,
      crypto.getRandomValues(new Uint8Array(1000)).map((v, i) => (i ? v : 1)),
    );
    const cases: [string, RegExp][] = [
      [`${dir}/empty.pth`, /empty file, not a checkpoint/],
      [`${dir}/random.pth`, /not a checkpoint \(expected a PyTorch/],
      [`${dir}/nope.pth`, /no such file/],
      [dir, /is a directory/],
    ];
    for (const [path, re] of cases) {
      await assert.rejects(() => readStateDict(path), (e: Error) => {
        assert.ok(e instanceof CheckpointError, `${path}: ${e}`);
        assert.equal(e.name, "CheckpointError");
        assert.match(e.message, re);
        assert.ok(e.message.startsWith(path));
        return true;
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planKeys: two names landing on one key is an error, not a silent overwrite", () => {
  assert.throws(
    () => planKeys(["a.w", "module.a.w"], "f.pth"),
    /f\.pth: "a\.w" and "module\.a\.w" both map to "a\.w"/,
  );
});

Deno.test("checkStrict: one error lists every missing, unexpected and mis-shaped key", () => {
  const t = (shape: number[]): HostTensor =>
    hostTensor("float32", shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));
  const expected = new Map([["a", [2, 3]], ["b", [4]], ["c", [1]], ["d", [5]], ["skip.me", [1]]]);
  const good = new Map([["a", t([2, 3])], ["b", t([4])], ["c", t([1])], ["d", t([5])]]);
  checkStrict(expected, good, "ok.pth", { ignore: (k) => k.startsWith("skip.") });
  const bad = new Map([["a", t([3, 2])], ["b", t([4])], ["x", t([1])], ["y", t([2])]]);
  assert.throws(() => checkStrict(expected, bad, "w.pth"), (e: Error) => {
    assert.ok(e instanceof CheckpointError);
    assert.equal(
      e.message,
      "w.pth: weights do not fit the model; 3 missing: c, d, skip.me; 2 unexpected: x, y; " +
        "1 shape mismatches: a (file [3,2], model [2,3])",
    );
    return true;
  });
  assert.throws(() => checkStrict(expected, good, "w.pth"), /1 missing: skip\.me/);
});

Deno.test("sha256File matches the published digest of a sample", async () => {
  assert.equal(
    await sha256File(`${FIXTURES}samples/pth/test.pt`),
    "2bc164fa96f78ef8fcb8eab5fdae9b991efe946b9b63071fdf1769dba5d3fe25",
  );
});
