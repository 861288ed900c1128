import assert from "node:assert/strict";
import { tf } from "../../engine/tf.ts";
import { selectBackend } from "../../engine/backend.ts";
import { readStateDict } from "../checkpoint.ts";
import { loadSamConfig } from "./config.ts";
import { disposeParams, paramsFromStateDict } from "./params.ts";
import { PARITY_NAMES, parityOutputs } from "./parity_outputs.ts";
import { compareAll, hasAdapter, readFixture, TINY_CONFIG, TINY_PTH, toTensor } from "./test_util.ts";

const quiet = () => {};

/** Runs the tiny reference model on the fixture's inputs and checks every tensor to 1e-4 x max|ref|. */
async function checkParity(backend: "cpu" | "webgpu" | "wasm", chunkBytes?: number) {
  await selectBackend(backend, {}, quiet);
  const cfg = await loadSamConfig(TINY_CONFIG);
  const refs = await readFixture();
  assert.deepEqual([...refs.keys()].sort(), [...PARITY_NAMES].sort());
  const p = paramsFromStateDict(await readStateDict(TINY_PTH), cfg, TINY_PTH);
  const raw = toTensor(refs.get("raw_image")!) as tf.Tensor4D;
  const box = toTensor(refs.get("box")!) as tf.Tensor2D;
  const before = tf.memory().numTensors;
  const ours = parityOutputs(p, cfg, raw, box, { maxChunkBytes: chunkBytes });
  assert.equal(tf.memory().numTensors, before + PARITY_NAMES.length, "parityOutputs leaks no intermediates");
  try {
    const { lines, failed } = await compareAll(ours, refs);
    console.error(
      `sam parity on ${backend}${chunkBytes ? ` (chunks <= ${chunkBytes} B)` : ""}:\n  ${lines.join("\n  ")}`,
    );
    assert.deepEqual(failed, []);
  } finally {
    for (const t of ours.values()) t.dispose();
    disposeParams(p);
    raw.dispose();
    box.dispose();
  }
}

Deno.test("sam parity with the official PyTorch model: every fixture tensor on cpu", async () => {
  await checkParity("cpu");
});

Deno.test("sam parity on cpu with attention cut into one-row chunks", async () => {
  await checkParity("cpu", 2048);
});

Deno.test("sam parity on wasm", async () => {
  await checkParity("wasm");
});

Deno.test({
  name: "sam parity with the official PyTorch model: every fixture tensor on webgpu",
  ignore: !hasAdapter,
  async fn() {
    try {
      await checkParity("webgpu");
    } finally {
      await selectBackend("cpu", {}, quiet);
    }
  },
});
if (!hasAdapter) console.error("sam_parity_test: webgpu parity skipped: no WebGPU adapter on this machine");
