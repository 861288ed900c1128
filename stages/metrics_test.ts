import assert from "node:assert/strict";
import { dice, distanceToSet, hd95 } from "./metrics.ts";

Deno.test("dice: overlap, empty vs empty = 1, one empty = 0", () => {
  const p = Uint8Array.from([1, 1, 0, 2, 0]);
  const g = Uint8Array.from([1, 0, 0, 2, 2]);
  assert.equal(dice(p, g, 1), 2 / 3);
  assert.equal(dice(p, g, 2), 2 / 3);
  assert.equal(dice(p, g, 3), 1);
  assert.equal(dice(Uint8Array.from([0, 0]), Uint8Array.from([3, 0]), 3), 0);
});

Deno.test("distance transform: exact Euclidean distances with anisotropic spacing", () => {
  const dims = [7, 5, 3];
  const seed = new Uint8Array(7 * 5 * 3);
  seed[2 + 7 * (1 + 5 * 1)] = 1;
  seed[6 + 7 * (4 + 5 * 0)] = 1;
  const sp = [1.5, 0.7, 4];
  const d = distanceToSet(seed, dims, sp);
  for (let z = 0; z < 3; z++) {
    for (let y = 0; y < 5; y++) {
      for (let x = 0; x < 7; x++) {
        const a = Math.hypot((x - 2) * sp[0], (y - 1) * sp[1], (z - 1) * sp[2]);
        const b = Math.hypot((x - 6) * sp[0], (y - 4) * sp[1], z * sp[2]);
        assert.ok(Math.abs(d[x + 7 * (y + 5 * z)] - Math.min(a, b)) < 1e-9);
      }
    }
  }
});

Deno.test("hd95: identical masks 0, shifted square = shift in mm, undefined when one side is empty", () => {
  const dims = [20, 20, 1];
  const sq = (x0: number) => {
    const a = new Uint8Array(400);
    for (let y = 5; y < 15; y++) for (let x = x0; x < x0 + 8; x++) a[x + 20 * y] = 3;
    return { data: a, dims };
  };
  assert.equal(hd95(sq(4), sq(4), 3, [1, 1, 1]), 0);
  assert.ok(Math.abs(hd95(sq(4), sq(7), 3, [2, 1, 1])! - 6) < 1e-9);
  assert.equal(hd95(sq(4), { data: new Uint8Array(400), dims }, 3, [1, 1, 1]), null);
  assert.equal(
    hd95({ data: new Uint8Array(400), dims }, { data: new Uint8Array(400), dims }, 3, [1, 1, 1]),
    0,
  );
});

const scipy = (() => {
  try {
    return new Deno.Command("/usr/bin/python3", { args: ["-c", "import scipy.ndimage"], stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();
if (!scipy) {
  console.error("metrics_test: scipy cross-check of hd95 skipped: /usr/bin/python3 with scipy not found");
}

Deno.test({
  name: "hd95 matches medpy's definition computed with scipy on random blobs",
  ignore: !scipy,
  async fn() {
    const dims = [23, 19, 6];
    const n = 23 * 19 * 6;
    const blob = (cx: number, cy: number, r: number) => {
      const a = new Uint8Array(n);
      for (let z = 1; z < 5; z++) {
        for (let y = 0; y < 19; y++) {
          for (let x = 0; x < 23; x++) {
            if ((x - cx) ** 2 + (y - cy) ** 2 + ((z - 2.5) * 2) ** 2 < r * r) a[x + 23 * (y + 19 * z)] = 1;
          }
        }
      }
      return a;
    };
    const p = blob(10, 9, 7), g = blob(12, 8, 6);
    const sp = [1.3, 0.9, 5];
    const ours = hd95({ data: p, dims }, { data: g, dims }, 1, sp)!;
    const script = `
import json, sys, numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt, generate_binary_structure
d = json.loads(sys.stdin.read())
p = np.array(d['p'], bool).reshape(6, 19, 23).transpose(2, 1, 0); g = np.array(d['g'], bool).reshape(6, 19, 23).transpose(2, 1, 0)
fp = generate_binary_structure(3, 1)
def sds(a, b):
    ab = a ^ binary_erosion(a, structure=fp, iterations=1); bb = b ^ binary_erosion(b, structure=fp, iterations=1)
    return distance_transform_edt(~bb, sampling=d['sp'])[ab]
print(max(np.percentile(sds(p, g), 95), np.percentile(sds(g, p), 95)))
`;
    const cmd = new Deno.Command("/usr/bin/python3", {
      args: ["-c", script],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const w = cmd.stdin.getWriter();
    await w.write(new TextEncoder().encode(JSON.stringify({ p: Array.from(p), g: Array.from(g), sp })));
    await w.close();
    const ref = Number(new TextDecoder().decode((await cmd.output()).stdout));
    assert.ok(Math.abs(ours - ref) < 1e-6, `ours ${ours} vs scipy ${ref}`);
  },
});
