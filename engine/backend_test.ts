import assert from "node:assert/strict";
import { UserError } from "../errors.ts";
import { tf } from "./tf.ts";
import { BindingLimitError, missingKernels, selectBackend } from "./backend.ts";

const quiet = () => {};
const hasAdapter = !!(await (navigator as Navigator & { gpu?: GPU }).gpu?.requestAdapter().catch(() => null));

Deno.test("cpu and wasm are selectable by name", async () => {
  for (const name of ["cpu", "wasm"] as const) {
    const c = await selectBackend(name, {}, quiet);
    assert.equal(c.backend, name);
    assert.equal(tf.getBackend(), name);
    assert.deepEqual(Array.from(await tf.add(tf.scalar(1), tf.scalar(2)).data()), [3]);
  }
});

Deno.test("wasm is known to lack Conv2DBackpropFilter; asking for it by name fails clearly", async () => {
  assert.deepEqual(missingKernels("wasm", ["Conv2DBackpropFilter", "BatchMatMul"]), ["Conv2DBackpropFilter"]);
  await assert.rejects(
    () => selectBackend("wasm", { kernels: ["Conv2DBackpropFilter"] }, quiet),
    /lacks kernel\(s\) Conv2DBackpropFilter/,
  );
});

Deno.test("auto never picks a software adapter and explains its choice", async () => {
  const lines: string[] = [];
  const c = await selectBackend("auto", { kernels: ["Conv2DBackpropFilter"] }, (s) => lines.push(s));
  assert.ok(c.backend === "cpu" || (c.backend === "webgpu" && c.hardware));
  assert.ok(lines[0].startsWith(`backend: ${c.backend} (auto:`), lines[0]);
  const w = await selectBackend("auto", { kernels: ["BatchMatMul"] }, quiet);
  assert.ok(w.backend === "wasm" || (w.backend === "webgpu" && w.hardware));
});

Deno.test("an unknown backend name or one that lacks a needed kernel is a user error naming the flag", async () => {
  await assert.rejects(
    () => selectBackend("tpu" as never, {}, quiet),
    (e: Error) =>
      e instanceof UserError && /--backend: "tpu" is not one of auto, webgpu, wasm, cpu/.test(e.message),
  );
  await assert.rejects(
    () => selectBackend("cpu", { kernels: ["NoSuchKernel"] }, quiet),
    (e: Error) => e instanceof UserError && /--backend cpu: lacks kernel\(s\) NoSuchKernel/.test(e.message),
  );
});

Deno.test({
  name: "webgpu: results match cpu, and an over-limit tensor is refused instead of reading zeros",
  ignore: !hasAdapter,
  async fn() {
    const c = await selectBackend("webgpu", {}, quiet);
    assert.ok(c.maxBindingBytes! > 0);
    const x = tf.tensor2d([[1, 2], [3, 4]]);
    assert.deepEqual(Array.from(await tf.matMul(x, x).data()), [7, 10, 15, 22]);
    const side = Math.ceil(Math.sqrt(c.maxBindingBytes! / 4)) + 1; // one row over the limit
    assert.throws(() => tf.zeros([side, side]), BindingLimitError);
    assert.throws(() => tf.tensor1d(new Float32Array(side * side)), BindingLimitError);
    await selectBackend("cpu", {}, quiet);
  },
});
if (!hasAdapter) console.error("backend_test: webgpu tests skipped: no WebGPU adapter on this machine");

Deno.test({
  name:
    "webgpu: the granted device limits are read and logged; the binding limit is the smaller of binding and buffer",
  ignore: !hasAdapter,
  async fn() {
    const lines: string[] = [];
    const choice = await selectBackend("webgpu", {}, (l) => lines.push(l));
    const l = choice.limits!;
    assert.ok(l.maxStorageBufferBindingSize >= 2 ** 27 && l.maxBufferSize >= 2 ** 27, JSON.stringify(l));
    assert.equal(choice.maxBindingBytes, Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize));
    assert.ok(lines.some((s) => /^webgpu device limits: storage binding \d+ MiB/.test(s)), lines.join("\n"));
  },
});
