import assert from "node:assert/strict";
import {
  checkedNumel,
  floatToBfloat16,
  floatToHalf,
  fromFloat32,
  halfToFloat,
  hostTensor,
  tensorProblem,
  toFloat32,
} from "./host_tensor.ts";

Deno.test("half and bfloat16: every bit pattern survives decode then encode", () => {
  for (let h = 0; h < 65536; h++) {
    const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (!isNaN) assert.equal(floatToHalf(halfToFloat(h)), h, `half 0x${h.toString(16)}`);
  }
  const bf = new Uint16Array(65536).map((_, i) => i);
  const f = toFloat32({ dtype: "bfloat16", shape: [65536], data: bf });
  for (let h = 0; h < 65536; h++) {
    if (!Number.isNaN(f[h])) assert.equal(floatToBfloat16(f[h]), h, `bf16 0x${h.toString(16)}`);
  }
});

Deno.test("half and bfloat16 encode round to nearest even and saturate like torch", () => {
  assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // tie -> even
  assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
  assert.equal(floatToHalf(65520), 0x7c00); // rounds past max half -> inf
  assert.equal(floatToHalf(2 ** -25), 0x0000); // tie at half the smallest subnormal -> 0
  assert.equal(floatToHalf(-(2 ** -24)), 0x8001);
  assert.equal(floatToBfloat16(1 + 2 ** -8), 0x3f80);
  assert.equal(floatToBfloat16(1 + 3 * 2 ** -8), 0x3f82);
  const t = fromFloat32(new Float32Array([0.5, -2, 3.7]), [3], "float16");
  assert.deepEqual(Array.from(toFloat32(t)), [0.5, -2, 3.69921875]);
});

Deno.test("toFloat32 returns float32 data as is and converts ints", () => {
  const f = new Float32Array([1, 2]);
  assert.equal(toFloat32(hostTensor("float32", [2], f)), f, "no copy for float32");
  assert.deepEqual(Array.from(toFloat32(hostTensor("int64", [2], new BigInt64Array([-3n, 2n ** 40n])))), [
    -3,
    2 ** 40,
  ]);
  assert.deepEqual(Array.from(toFloat32(hostTensor("bool", [2], new Uint8Array([1, 0])))), [1, 0]);
});

Deno.test("shape and data checks catch wrong array classes, lengths and absurd shapes", () => {
  assert.equal(checkedNumel([2 ** 30, 2 ** 30, 2 ** 30]), undefined);
  assert.equal(checkedNumel([2, -1]), undefined);
  assert.equal(checkedNumel([]), 1);
  assert.match(
    tensorProblem({ dtype: "int64", shape: [1], data: new Int32Array(1) })!,
    /needs a BigInt64Array/,
  );
  assert.throws(() => hostTensor("float32", [2, 2], new Float32Array(3)), /needs 4 elements, data has 3/);
});
