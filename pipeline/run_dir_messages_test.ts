/** Issue #13 item 11: a run directory's errors name each file once, whichever layer found the problem. */
import assert from "node:assert/strict";
import { CheckpointError } from "../model/checkpoint.ts";
import { writeSafetensors } from "../io/safetensors.ts";
import { hostTensor } from "../io/host_tensor.ts";
import { loadCheckpoint, loadTrainable, readJson, RUN_FILES } from "./run_dir.ts";

const TORCH_ZIP = new URL("../fixtures/samples/pth/test.pt", import.meta.url).pathname;

/** The error's message, checked to be one line with path in it exactly once. */
async function messageOf(run: () => Promise<unknown>, path: string): Promise<string> {
  let message = "";
  await assert.rejects(run, (e: Error) => {
    assert.ok(e instanceof CheckpointError, `${e.name}: ${e.message}`);
    message = e.message;
    return true;
  });
  assert.ok(!message.includes("\n"), message);
  assert.equal(message.split(path).length - 1, 1, `"${path}" should appear once in: ${message}`);
  return message;
}

Deno.test("run directory errors name the file once (bad weights, unreadable JSON, a folder)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const t = `${dir}/${RUN_FILES.trainable}`, o = `${dir}/${RUN_FILES.optimizer}`;
    await Deno.copyFile(TORCH_ZIP, t);
    await Deno.writeFile(o, new Uint8Array(16));
    assert.match(
      await messageOf(() => loadTrainable(t), t),
      /not a safetensors file \(looks like a PyTorch zip/,
    );
    assert.match(await messageOf(() => loadCheckpoint(dir), t), /not a safetensors file/);
    await writeSafetensors(t, new Map([["w", hostTensor("float32", [1], new Float32Array(1))]]));
    assert.match(await messageOf(() => loadCheckpoint(dir), o), /header length/);
    const missing = `${dir}/${RUN_FILES.config}`;
    assert.match(await messageOf(() => readJson(missing), missing), /not found/);
    assert.match(await messageOf(() => readJson(dir), dir), /folder|directory/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
