import assert from "node:assert/strict";
import { collect, fromIterable, map, pipe, type Stage, take } from "./pipe.ts";

const double: Stage<number, number> = async function* (source) {
  for await (const x of source) yield x * 2;
};

Deno.test("pipe: composes stages left to right over arrays and async sources", async () => {
  const toStr = map((x: number) => `n${x}`);
  assert.deepEqual(await collect(pipe([1, 2, 3], double, map((x: number) => x + 1), toStr)), [
    "n3",
    "n5",
    "n7",
  ]);
  assert.deepEqual(await collect(pipe(fromIterable([4]))), [4]);
  assert.deepEqual(await collect(pipe([1, 2], map((x: number) => Promise.resolve(x * 10)))), [10, 20]);
});

Deno.test("pipe: is lazy and pull-based; take closes the source", async () => {
  let pulled = 0;
  let closed = false;
  async function* naturals() {
    try {
      for (let i = 0;; i++) {
        pulled++;
        yield i;
      }
    } finally {
      closed = true;
    }
  }
  const stream = pipe(naturals(), double, take(3));
  assert.equal(pulled, 0, "nothing runs before iteration");
  assert.deepEqual(await collect(stream), [0, 2, 4]);
  assert.equal(pulled, 3);
  assert.ok(closed, "the infinite source was closed");
});

Deno.test("pipe: errors propagate to the consumer", async () => {
  const boom = map((x: number) => {
    if (x === 2) throw new Error("bad item 2");
    return x;
  });
  await assert.rejects(collect(pipe([1, 2, 3], boom)), /bad item 2/);
});
