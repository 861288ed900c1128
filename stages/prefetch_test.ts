import assert from "node:assert/strict";
import { collect, pipe } from "./pipe.ts";
import { prefetch } from "./prefetch.ts";

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 1));

Deno.test("prefetch: keeps order and passes everything through", async () => {
  const items = Array.from({ length: 25 }, (_, i) => i);
  assert.deepEqual(await collect(pipe(items, prefetch(3))), items);
  assert.deepEqual(await collect(pipe([], prefetch(2))), []);
  assert.throws(() => prefetch(0), RangeError);
});

Deno.test("prefetch: the source runs ahead while the consumer awaits, but only `size` items", async () => {
  let produced = 0;
  async function* source() {
    for (let i = 0; i < 12; i++) {
      await tick();
      produced++;
      yield i;
    }
  }
  let consumed = 0;
  let maxAhead = 0;
  let overlapped = false;
  for await (const _ of pipe(source(), prefetch(2))) {
    const before = produced;
    await new Promise((resolve) => setTimeout(resolve, 15)); // a "training step"
    if (produced > before) overlapped = true;
    consumed++;
    maxAhead = Math.max(maxAhead, produced - consumed);
  }
  assert.equal(consumed, 12);
  assert.ok(overlapped, "the source never ran during a consumer step");
  // queue of 2 plus the one item handed to the consumer
  assert.ok(maxAhead <= 2, `read ${maxAhead} items ahead with size 2`);
});

Deno.test("prefetch: an early stop closes the source and disposes unread items", async () => {
  let closed = false;
  const disposed: number[] = [];
  async function* source() {
    try {
      for (let i = 0; i < 100; i++) {
        await tick();
        yield i;
      }
    } finally {
      closed = true;
    }
  }
  const seen: number[] = [];
  for await (const x of pipe(source(), prefetch(3, { dispose: (x) => disposed.push(x) }))) {
    seen.push(x);
    await new Promise((resolve) => setTimeout(resolve, 10));
    if (x === 2) break;
  }
  assert.deepEqual(seen, [0, 1, 2]);
  assert.ok(closed, "source not closed");
  assert.ok(disposed.length >= 1 && disposed.length <= 4, `disposed ${disposed}`);
  assert.deepEqual(disposed, disposed.map((_, i) => 3 + i), "unread items are exactly the ones after 2");
});

Deno.test("prefetch: a source error reaches the consumer after the items before it", async () => {
  async function* source() {
    yield 1;
    yield 2;
    throw new Error("disk gone");
  }
  const seen: number[] = [];
  await assert.rejects(async () => {
    for await (const x of pipe(source(), prefetch(4))) seen.push(x);
  }, /disk gone/);
  assert.deepEqual(seen, [1, 2]);
});
