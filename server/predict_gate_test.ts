import assert from "node:assert/strict";
import { HttpError } from "./http_error.ts";
import { PredictGate } from "./predict_gate.ts";

/** A promise with its resolver, to hold a place in the gate as long as a test wants. */
function held() {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  return { done, release };
}

Deno.test("PredictGate: runs `running` at once, queues `waiting`, refuses the rest with 503 + Retry-After", async () => {
  const gate = new PredictGate(1, 1);
  const order: string[] = [];
  const a = held(), b = held();
  const first = gate.run(async () => (order.push("a"), await a.done));
  const second = gate.run(async () => (order.push("b"), await b.done));
  await Promise.resolve();
  assert.deepEqual(gate.load, { running: 1, waiting: 1 });
  await assert.rejects(gate.run(() => Promise.resolve()), (err: unknown) => {
    assert.ok(err instanceof HttpError);
    assert.equal(err.status, 503);
    assert.match(err.headers["Retry-After"], /^[1-9]\d*$/);
    return true;
  });
  a.release();
  await first;
  b.release();
  await second;
  assert.deepEqual(order, ["a", "b"]);
  assert.deepEqual(gate.load, { running: 0, waiting: 0 });
});

Deno.test("PredictGate: a failing prediction frees its place", async () => {
  const gate = new PredictGate(1, 0);
  await assert.rejects(gate.run(() => Promise.reject(new Error("boom"))), /boom/);
  assert.equal(await gate.run(() => Promise.resolve(7)), 7);
  assert.deepEqual(gate.load, { running: 0, waiting: 0 });
});
