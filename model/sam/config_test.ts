import assert from "node:assert/strict";
import { embeddingSize, loadSamConfig, parseSamConfig, PRESETS } from "./config.ts";
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
    [{ ...good, depth: 0 }, /"depth" must be an integer >= 1, got 0/],
    [{ ...good, embed_dim: "32" }, /"embed_dim" must be an integer/],
    [{ ...good, image_sise: 3 }, /unknown field\(s\) "image_sise"/],
    [(({ out_chans: _, ...rest }) => rest)(good), /missing field\(s\) "out_chans"/],
    [{ ...good, global_attn_indexes: [1, 4] }, /"global_attn_indexes" must list block indexes in 0\.\.3/],
    [{ ...good, image_size: 81 }, /not a multiple of patch_size/],
    [{ ...good, num_heads: 3 }, /not a multiple of num_heads/],
    [{ ...good, pixel_std: [1, 0, 1] }, /"pixel_std" must be 3 positive numbers/],
    [{ ...good, prompt_embed_dim: 16 }, /must equal out_chans/],
  ];
  for (const [json, re] of cases) {
    assert.throws(
      () => parseSamConfig(json, "cfg.json"),
      (e: Error) =>
        e.name === "ConfigError" && /^cfg\.json: /.test(e.message) && re.test(e.message) &&
        !e.message.includes("\n"),
      String(re),
    );
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
