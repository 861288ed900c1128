import assert from "node:assert/strict";
import {
  embeddingSize,
  estimateSamParameters,
  loadSamConfig,
  MAX_SAM_PARAMETERS,
  parseSamConfig,
  PRESETS,
} from "./config.ts";
import { samParamShapes } from "./params.ts";
import { shapeCount } from "../sam_weights.ts";
import { TINY_CONFIG } from "./test_util.ts";

Deno.test("the fixture config parses, with the official defaults filled in", async () => {
  const cfg = await loadSamConfig(TINY_CONFIG);
  assert.equal(cfg.image_size, 80);
  assert.deepEqual(cfg.global_attn_indexes, [1, 3]);
  assert.equal(cfg.mlp_ratio, 4);
  assert.equal(cfg.decoder_depth, 2);
  assert.equal(cfg.num_multimask_outputs, 3);
  assert.deepEqual(cfg.pixel_mean, [123.675, 116.28, 103.53]);
  assert.equal(embeddingSize(cfg), 10);
});

Deno.test("presets load by name as independent copies", async () => {
  const a = await loadSamConfig("vit_b");
  a.global_attn_indexes.push(0);
  assert.deepEqual(PRESETS.vit_b.global_attn_indexes, [2, 5, 8, 11]);
  assert.equal((await loadSamConfig("tiny")).image_size, 64);
  assert.deepEqual(parseSamConfig(JSON.parse(JSON.stringify(PRESETS.vit_b)), "x"), PRESETS.vit_b);
});

Deno.test("bad configs are one-line user errors naming the file and field", async () => {
  const good = JSON.parse(await Deno.readTextFile(TINY_CONFIG));
  const cases: [unknown, RegExp][] = [
    [[1, 2], /expected a JSON object/],
    [{ ...good, depth: 0 }, /"depth" must be an integer >= 1 and <= 64, got 0/],
    [{ ...good, embed_dim: "32" }, /"embed_dim" must be an integer/],
    [{ ...good, image_sise: 3 }, /unknown field\(s\) "image_sise"/],
    [(({ out_chans: _, ...rest }) => rest)(good), /missing field\(s\) "out_chans"/],
    [{ ...good, global_attn_indexes: [1, 4] }, /"global_attn_indexes" must list block indexes in 0\.\.3/],
    [{ ...good, image_size: 81 }, /not a multiple of patch_size/],
    [{ ...good, num_heads: 3 }, /not a multiple of num_heads/],
    [{ ...good, pixel_std: [1, 0, 1] }, /"pixel_std" must be 3 positive numbers/],
    [{ ...good, prompt_embed_dim: 16 }, /must equal out_chans/],
    // Issue #13 item 10: every number has an upper bound, checked before anything is built.
    [{ ...good, depth: 1_000_000_000 }, /"depth" must be an integer >= 1 and <= 64, got 1000000000/],
    [{ ...good, embed_dim: 2 ** 20 }, /"embed_dim" must be an integer >= 1 and <= 4096/],
    [{ ...good, image_size: 1e9 }, /"image_size" must be an integer >= 1 and <= 4096/],
    [{ ...good, patch_size: 1000 }, /"patch_size" must be an integer >= 1 and <= 64/],
    [{ ...good, num_heads: 1e6 }, /"num_heads" must be an integer >= 1 and <= 64/],
    [{ ...good, window_size: 1e7 }, /"window_size" must be an integer >= 0 and <= 256/],
    [{ ...good, out_chans: 2 ** 30 }, /"out_chans" must be an integer >= 1 and <= 4096/],
    [{ ...good, mask_in_chans: 1e5 }, /"mask_in_chans" must be an integer >= 1 and <= 1024/],
    [{ ...good, decoder_mlp_dim: 1e8 }, /"decoder_mlp_dim" must be an integer >= 1 and <= 16384/],
    [{ ...good, decoder_num_heads: 999 }, /"decoder_num_heads" must be an integer >= 1 and <= 64/],
    [{ ...good, iou_head_hidden_dim: 1e6 }, /"iou_head_hidden_dim" must be an integer >= 1 and <= 4096/],
    [{ ...good, decoder_depth: 1e9 }, /"decoder_depth" must be an integer >= 1 and <= 16/],
    [{ ...good, num_multimask_outputs: 1e6 }, /"num_multimask_outputs" must be an integer >= 1 and <= 256/],
    [{ ...good, mlp_ratio: 1e6 }, /"mlp_ratio" must be positive, at most 16/],
    [{ ...good, depth: 1e300 }, /"depth" must be an integer/],
    [{ ...good, pixel_mean: [1e300, 0, 0] }, /"pixel_mean" must be 3 numbers of magnitude at most/],
    [{ ...good, pixel_std: [1e-300, 1, 1] }, /"pixel_std" must be 3 positive numbers/],
    [
      { ...good, global_attn_indexes: Array.from({ length: 1e6 }, (_, i) => i) },
      /"global_attn_indexes" must list block indexes in 0\.\.3, got \[0,1,2,3,4,5,.{40,70}\.\.\.$/,
    ],
    // Each number within its bound, together far too big: ViT-H is 0.64 billion.
    [
      { ...good, embed_dim: 4096, num_heads: 64, depth: 64, mlp_ratio: 16 },
      /about 38\.7 billion parameters, over the limit of 2147483648 \(8 GiB as float32/,
    ],
  ];
  for (const [json, re] of cases) {
    const t0 = performance.now();
    assert.throws(
      () => parseSamConfig(json, "cfg.json"),
      (e: Error) =>
        e.name === "ConfigError" && /^cfg\.json: /.test(e.message) && re.test(e.message) &&
        !e.message.includes("\n"),
      String(re),
    );
    assert.ok(performance.now() - t0 < 1000, `${re}: took ${performance.now() - t0} ms`);
  }
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/bad.json`, "{nope");
    await assert.rejects(() => loadSamConfig(`${dir}/bad.json`), /bad\.json: bad SAM config: not JSON/);
    await assert.rejects(() => loadSamConfig(`${dir}/none.json`), /none\.json: no such config file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("estimateSamParameters is a close upper bound of the real count (ViT-B, ViT-L, ViT-H, tiny)", () => {
  const h = {
    ...PRESETS.vit_b,
    embed_dim: 1280,
    depth: 32,
    num_heads: 16,
    global_attn_indexes: [7, 15, 23, 31],
  };
  const l = {
    ...PRESETS.vit_b,
    embed_dim: 1024,
    depth: 24,
    num_heads: 16,
    global_attn_indexes: [5, 11, 17, 23],
  };
  for (const cfg of [PRESETS.vit_b, PRESETS.tiny, h, l]) {
    const real = shapeCount(samParamShapes(cfg)), estimate = estimateSamParameters(cfg);
    assert.ok(
      estimate >= real && estimate < real * 1.1,
      `${cfg.embed_dim}: estimate ${estimate}, real ${real}`,
    );
  }
  assert.ok(estimateSamParameters(h) < MAX_SAM_PARAMETERS / 3, "ViT-H is far inside the bound");
});
