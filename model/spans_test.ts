import assert from "node:assert/strict";
import { spans } from "./spans.ts";

Deno.test("spans: pieces of at most size, the last one short, nothing for nothing", () => {
  assert.deepEqual(spans(10, 4), [[0, 4], [4, 4], [8, 2]]);
  assert.deepEqual(spans(8, 4), [[0, 4], [4, 4]]);
  assert.deepEqual(spans(3, 10), [[0, 3]]);
  assert.deepEqual(spans(0, 4), []);
});
