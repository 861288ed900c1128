import assert from "node:assert/strict";
import { ConfigError } from "../errors.ts";
import { MAX_WASM_THREADS, wasmThreadsWanted } from "./wasm_threads.ts";

const root = new URL("..", import.meta.url).pathname;

/**
 * Runs a matmul and a convolution on wasm in a fresh `deno` with TFJS_WASM_THREADS set, so each run gets
 * its own backend; returns the backend's thread count, the results' bytes, and how long it took to exit.
 */
async function probe(threads: string) {
  const code = `
    import { tf } from "${new URL("./tf.ts", import.meta.url).href}";
    import { selectBackend } from "${new URL("./backend.ts", import.meta.url).href}";
    const choice = await selectBackend("wasm", {}, () => {});
    const a = tf.randomNormal([300, 517], 0, 1, "float32", 1);
    const b = tf.randomNormal([517, 260], 0, 1, "float32", 2);
    const x = tf.randomNormal([2, 40, 40, 24], 0, 1, "float32", 3);
    const f = tf.randomNormal([3, 3, 24, 48], 0, 1, "float32", 4);
    const mm = await tf.matMul(a, b).data();
    const conv = await tf.conv2d(x, f, 1, "same").data();
    const hex = (v) => Array.from(new Uint8Array(v.buffer), (n) => n.toString(16).padStart(2, "0")).join("");
    const { threads, reason } = choice;
    console.log(JSON.stringify({ threads, reason, mm: hex(mm), conv: hex(conv) }));
  `;
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    cwd: root,
    env: { TFJS_WASM_THREADS: threads, XDG_RUNTIME_DIR: "/tmp" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const seconds = (performance.now() - t0) / 1000;
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, err);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return { ...JSON.parse(lines[lines.length - 1]), seconds, stderr: err };
}

Deno.test("TFJS_WASM_THREADS=2 runs threaded, bit-identical to 1 thread, and deno exits", async () => {
  const one = await probe("1");
  const two = await probe("2");
  assert.equal(one.threads, 1, one.reason);
  // Fails when the threaded build is silently not in use (tfjs's own init gives one thread under Deno).
  assert.equal(two.threads, 2, `${two.reason}\n${two.stderr}`);
  assert.match(two.reason, /2 threads/);
  assert.equal(two.stderr, "", "the threaded build starts without a word on stderr");
  assert.ok(two.mm === one.mm, "matmul differs between 1 and 2 threads");
  assert.ok(two.conv === one.conv, "conv2d differs between 1 and 2 threads");
  // The pthread workers must not keep deno alive after the script ends (an abort at 120 s would fail above).
  assert.ok(two.seconds < 60, `exit took ${two.seconds.toFixed(1)} s`);
});

Deno.test("TFJS_WASM_THREADS outside 1..8 or not a whole number is a one-line ConfigError naming it", () => {
  const before = Deno.env.get("TFJS_WASM_THREADS");
  try {
    for (const bad of ["0", "abc", "2.5", String(MAX_WASM_THREADS + 1), "-1"]) {
      Deno.env.set("TFJS_WASM_THREADS", bad);
      assert.throws(
        () => wasmThreadsWanted(),
        (e: Error) => e instanceof ConfigError && e.message.startsWith(`TFJS_WASM_THREADS: "${bad}"`),
      );
    }
    Deno.env.set("TFJS_WASM_THREADS", "3");
    assert.equal(wasmThreadsWanted(), 3);
    Deno.env.delete("TFJS_WASM_THREADS");
    assert.equal(wasmThreadsWanted(), Math.min(MAX_WASM_THREADS, navigator.hardwareConcurrency));
  } finally {
    if (before === undefined) Deno.env.delete("TFJS_WASM_THREADS");
    else Deno.env.set("TFJS_WASM_THREADS", before);
  }
});
