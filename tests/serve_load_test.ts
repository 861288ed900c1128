/**
 * The server under a small mixed loopback load (bench/serve_load.ts at suite size): every request gets the
 * status the contract promises, the server logs no internal error, its tensor count is unchanged after
 * warm-up, its RSS stays within a bound, and it still answers health and a prediction afterwards.
 */
import assert from "node:assert/strict";
import { serveLoad } from "../bench/serve_load.ts";

Deno.test("serve under load: 60 mixed requests at 10 concurrent, every one answered as promised", async () => {
  const r = await serveLoad({ requests: 60, concurrency: 10, imageSize: 32, timeLimitS: 240 });
  console.log(
    `serve load: ${r.requests_per_s} requests/s, predict p50 ${r.predict_ms.p50} ms p95 ${r.predict_ms.p95} ms; ` +
      `tensors ${r.tensors.warm} -> ${r.tensors.end}; RSS ${r.rss_mb.warm} -> ${r.rss_mb.end} MB`,
  );
  assert.deepEqual(r.wrong, []);
  assert.equal(r.requests, 60);
  assert.deepEqual(r.server_errors, []);
  assert.equal(r.tensors.end, r.tensors.warm, "tensors leaked");
  // Measured: +10..30 MB after a warm-up round (allocator and V8 heap settling); a leak of the uploads
  // (100 KB to 6 MB each) would show as far more.
  assert.ok(r.rss_mb.end - r.rss_mb.warm < 96, `RSS grew from ${r.rss_mb.warm} to ${r.rss_mb.end} MB`);
  assert.equal(r.healthy_after, true);
  for (const kind of ["predict", "garbage", "oversized", "bad_token", "drop_upload", "drop_stream"]) {
    assert.ok(r.statuses[kind], `no ${kind} request was sent`);
  }
});
