import assert from "node:assert/strict";
import type { OpenedRun } from "../pipeline/eval_run.ts";
import { ModelCache } from "./model_cache.ts";

const tick = () => new Promise((r) => setTimeout(r, 0));

/** Run folders with a weights file each, and a fake opener that counts opens and disposals. */
async function setup(max: number) {
  const root = await Deno.makeTempDir({ prefix: "model_cache_" });
  const opened: string[] = [], disposed: string[] = [];
  for (const r of ["a", "b", "c"]) {
    await Deno.mkdir(`${root}/${r}/best`, { recursive: true });
    await Deno.writeTextFile(`${root}/${r}/trainable.safetensors`, "x");
    await Deno.writeTextFile(`${root}/${r}/best/trainable.safetensors`, "x");
  }
  const cache = new ModelCache({
    max,
    open: (dir, weights) => {
      const name = `${dir.slice(root.length + 1)}:${weights}`;
      if (dir.endsWith("/c")) return Promise.reject(new Error(`cannot open ${name}`));
      opened.push(name);
      return Promise.resolve({ model: { dispose: () => disposed.push(name) } } as unknown as OpenedRun);
    },
  });
  return { root, cache, opened, disposed };
}

Deno.test("ModelCache: reuses a loaded model, evicts the least recently used, disposes what it evicts", async () => {
  const { root, cache, opened, disposed } = await setup(2);
  for (
    const [r, w] of [["a", "final"], ["a", "final"], ["b", "final"], ["a", "final"], ["a", "best"]] as const
  ) {
    (await cache.acquire(`${root}/${r}`, w)).release();
  }
  assert.deepEqual(opened, ["a:final", "b:final", "a:best"]);
  assert.deepEqual(disposed, ["b:final"]); // a:final was used after b:final
  assert.equal(cache.size, 2);
  await cache.close();
  assert.deepEqual(disposed.sort(), ["a:best", "a:final", "b:final"]);
});

Deno.test("ModelCache: a leased model is not disposed until released; a failed open is not kept", async () => {
  const { root, cache, disposed } = await setup(1);
  const lease = await cache.acquire(`${root}/a`, "final");
  (await cache.acquire(`${root}/b`, "final")).release();
  assert.deepEqual(disposed, [], "a is still leased");
  lease.release();
  lease.release(); // a second release is harmless
  await tick(); // disposal waits for the open promise
  assert.deepEqual(disposed, ["a:final"]);
  await assert.rejects(cache.acquire(`${root}/c`, "final"), /cannot open c:final/);
  assert.equal(cache.size, 1);
  await cache.close();
});

Deno.test("ModelCache: a run whose weights file changed is opened afresh and the old model disposed", async () => {
  const { root, cache, opened, disposed } = await setup(2);
  (await cache.acquire(`${root}/a`, "final")).release();
  await Deno.utime(`${root}/a/trainable.safetensors`, new Date(), new Date(Date.now() + 5000));
  (await cache.acquire(`${root}/a`, "final")).release();
  await tick();
  assert.deepEqual(opened, ["a:final", "a:final"]);
  assert.deepEqual(disposed, ["a:final"]);
  assert.equal(cache.size, 1);
  await cache.close();
});
