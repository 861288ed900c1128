/**
 * `deno task bench` as a user runs it: named benchmarks in child processes, a JSON report keyed by
 * benchmark and backend, the same-shape PyTorch figure beside ours where torch is installed, and one-line
 * errors for bad names. Shapes are tiny here; the real figures are in the README.
 */
import { runScript } from "./run_script.ts";
import assert from "node:assert/strict";

const bench = (args: string[]) => runScript("bench/main.ts", args);

const hasTorch = await new Deno.Command("/usr/bin/python3", {
  args: ["-c", "import torch"],
  stdout: "null",
  stderr: "null",
}).output().then((o) => o.success, () => false);

Deno.test("bench --json: the encoder at 32 px on wasm, and PyTorch's same-shape figure beside it", async () => {
  const r = await bench(["--only", "encoder_forward", "--size", "32", "--backends", "wasm,torch", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assert.ok(report.encoder_forward_32_s.wasm > 0, r.stdout);
  assert.ok(report.encoder_forward_32_peak_rss_mib.wasm > 100, "ViT-B weights alone are ~360 MB");
  assert.ok(report.encoder_forward_32_peak_tensor_mib.wasm > 300);
  if (hasTorch) assert.ok(report.encoder_forward_32_s.torch > 0, r.stdout);
  else assert.match(report.encoder_forward_32_skipped.torch, /no python3 with torch/);
  assert.equal(report.machine.cores, navigator.hardwareConcurrency);
});

Deno.test("bench: an unknown benchmark or backend, or a bad size, is one line and exit 2", async () => {
  for (
    const [args, re] of [
      [["--only", "nope"], /--only: unknown nope \(expected encoder_forward, train_step_tiny/],
      [["--backends", "tpu"], /--backends: unknown tpu/],
      [["--size", "33"], /--size: 33 is not a multiple of the patch size 16/],
    ] as [string[], RegExp][]
  ) {
    const r = await bench(args);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});
