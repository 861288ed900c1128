import assert from "node:assert/strict";
import { checkpointInfo } from "./checkpoint_info.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;

Deno.test("checkpointInfo: describes a checkpoint from its pickle/header, under official names", async () => {
  const tiny = await checkpointInfo(`${FIXTURES}reference/tiny_sam.pth`, { keys: true });
  assert.equal(tiny.format, "pth-zip");
  assert.equal(tiny.tensors, 202);
  assert.equal(tiny.parameters, 113251);
  assert.deepEqual(tiny.dtypes, { float32: 202 });
  assert.deepEqual(tiny.keys!["image_encoder.pos_embed"], { dtype: "float32", shape: [1, 10, 10, 32] });
  const nested = await checkpointInfo(`${FIXTURES}samples/pth/test_with_key.pt`, {
    sha256: true,
    keys: true,
  });
  assert.deepEqual(Object.keys(nested.keys!), ["test"]);
  assert.equal(nested.sha256, "2775d95f17d2630e2534e3ae09462624955031407a67f0f3b52115c49601b747");
});

Deno.test("checkpoint-info CLI: a non-checkpoint is one line on stderr and exit code 2", async () => {
  const cli = new URL("./checkpoint_info.ts", import.meta.url).pathname;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", cli, `${FIXTURES}samples/SOURCES.md`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(r.code, 2);
  const err = new TextDecoder().decode(r.stderr).trim();
  assert.match(err, /^error: .*SOURCES\.md: not a checkpoint/);
  assert.equal(err.split("\n").length, 1);
});
