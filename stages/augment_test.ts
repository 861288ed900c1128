import assert from "node:assert/strict";
import { collect, pipe } from "./pipe.ts";
import { Rng } from "../engine/rng.ts";
import { augment, type AugmentConfig, augmentSlice, DEFAULT_AUGMENT, resolveAugment } from "./augment.ts";
import { boxWidths, smoothField, smoothNoise, smoothNoiseExact } from "./spatial.ts";
import type { SliceItem } from "./volume.ts";

/** A disc slice whose image encodes its label (image = 10 * label on every channel) plus a column ramp. */
function discSlice(size: number, id = "p_frame01_z00", ramp = 0): SliceItem {
  const image = new Float32Array(size * size * 3);
  const label = new Uint8Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      const r = Math.hypot(i - size * 0.4, j - size * 0.55) / size;
      const k = r < 0.1 ? 3 : r < 0.18 ? 2 : r < 0.26 && j < size * 0.5 ? 1 : 0;
      label[i * size + j] = k;
      for (let c = 0; c < 3; c++) image[(i * size + j) * 3 + c] = 10 * k + ramp * j;
    }
  }
  return {
    id,
    volumeId: "p_frame01",
    patient: "p",
    z: 0,
    height: size,
    width: size,
    channels: 3,
    image,
    label,
    originalHeight: size,
    originalWidth: size,
  };
}

/** Only the named transforms, with probability 1. */
function only(names: (keyof typeof DEFAULT_AUGMENT)[], extra: AugmentConfig = {}) {
  const cfg: AugmentConfig = {};
  for (const k of Object.keys(DEFAULT_AUGMENT) as (keyof typeof DEFAULT_AUGMENT)[]) {
    cfg[k] = { p: names.includes(k) ? 1 : 0, ...(extra[k] ?? {}) } as never;
  }
  return resolveAugment(cfg);
}

Deno.test("augment: seeded and reproducible, input untouched, labels only ever original values", () => {
  const item = discSlice(48);
  const before = item.image.slice();
  const opts = resolveAugment({ elastic: { alpha: [300, 300], sigma: [6, 6] } });
  const a = augmentSlice(item, new Rng(1).fork(item.id), opts);
  const b = augmentSlice(item, new Rng(1).fork(item.id), opts);
  assert.deepEqual(a.image, b.image);
  assert.deepEqual(a.label, b.label);
  const others = [2, 3, 4, 5].map((s) => augmentSlice(item, new Rng(s).fork(item.id), opts));
  assert.ok(others.some((o) => o.image.some((v, i) => v !== a.image[i])), "seeds give different draws");
  assert.deepEqual(item.image, before, "input modified");
  for (const o of [a, ...others]) {
    assert.ok(o.label.every((k) => k <= 3) && o.image.every(Number.isFinite));
    assert.equal(o.image.length, 48 * 48 * 3);
  }
  // labels 0 and 3 only: any blending (e.g. bilinear) would create 1s and 2s at the edges
  const binary = { ...item, label: item.label.map((k) => (k === 3 ? 3 : 0)) };
  for (let s = 0; s < 5; s++) {
    const o = augmentSlice(binary, new Rng(s), opts);
    assert.ok(o.label.every((k) => k === 0 || k === 3), "labels were blended");
    assert.ok(o.label.some((k) => k === 3));
  }
});

Deno.test("augment: brightness adds one offset to all channels by default, per channel when asked", () => {
  const item = discSlice(16);
  const shared = augmentSlice(item, new Rng(3), only(["brightness"], { brightness: { mu: 0.5, sigma: 0 } }));
  assert.ok(shared.image.every((v, i) => Math.abs(v - item.image[i] - 0.5) < 1e-5));
  assert.equal(shared.label, item.label);
  const per = augmentSlice(item, new Rng(3), only(["brightness"], { brightness: { perChannel: true } }));
  const d = [0, 1, 2].map((c) => per.image[c] - item.image[c]);
  assert.ok(d[0] !== d[1] && d[1] !== d[2], `offsets ${d}`);
});

Deno.test("augment: gamma keeps the range and bends the middle; noise has the drawn std", () => {
  const item = discSlice(32, "g", 1);
  const g = augmentSlice(item, new Rng(2), only(["gamma"], { gamma: { range: [2, 2] } })).image;
  const min = Math.min(...item.image);
  const max = Math.max(...item.image);
  assert.ok(Math.abs(Math.min(...g) - min) < 1e-4 && Math.abs(Math.max(...g) - max) < 1e-3);
  const mid = item.image.findIndex((v) => v > min + 0.3 * (max - min) && v < min + 0.7 * (max - min));
  assert.ok(g[mid] < item.image[mid] - 1, "gamma 2 should lower mid-range values");
  const n = augmentSlice(item, new Rng(2), only(["noise"], { noise: { variance: [0.5, 0.5] } })).image;
  const diff = n.map((v, i) => v - item.image[i]);
  const sd = Math.sqrt(diff.reduce((s, v) => s + v * v, 0) / diff.length);
  assert.ok(Math.abs(sd - 0.5) < 0.03, `noise sd ${sd}`);
});

Deno.test("augment: mirror flips columns of image and label together; rotation by 90 degrees is exact", () => {
  const s = 20;
  const item = discSlice(s, "m", 1);
  const m = augmentSlice(item, new Rng(0), only(["mirror"]));
  for (let i = 0; i < s; i++) {
    for (let j = 0; j < s; j++) {
      assert.equal(m.label[i * s + j], item.label[i * s + (s - 1 - j)]);
      assert.ok(Math.abs(m.image[(i * s + j) * 3] - item.image[(i * s + (s - 1 - j)) * 3]) < 1e-4);
    }
  }
  const r = augmentSlice(
    item,
    new Rng(0),
    only(["rotation"], { rotation: { range: [Math.PI / 2, Math.PI / 2] } }),
  );
  let same = 0;
  for (let i = 0; i < s; i++) {
    for (let j = 0; j < s; j++) {
      // out(i, j) samples in(row = j, col = s-1-i) for +90 degrees
      if (r.label[i * s + j] === item.label[j * s + (s - 1 - i)]) same++;
    }
  }
  assert.equal(same, s * s);
});

Deno.test("augment: scale 2 zooms out about the centre", () => {
  const s = 41;
  const item = discSlice(s);
  const z = augmentSlice(item, new Rng(0), only(["scale"], { scale: { range: [2, 2] } }));
  const count = (l: Uint8Array) => l.filter((k) => k === 3).length;
  assert.ok(count(z.label) < count(item.label) / 2.5, `${count(z.label)} vs ${count(item.label)}`);
  assert.equal(z.label[20 * s + 20], item.label[20 * s + 20], "centre is the fixed point");
});

Deno.test("augment: elastic and all spatial transforms move image and label with one draw", () => {
  const item = discSlice(64);
  const opts = only(["elastic", "rotation", "scale", "mirror"], {
    elastic: { alpha: [400, 400], sigma: [5, 5] },
    rotation: { range: [-0.3, 0.3] },
  });
  const a = augmentSlice(item, new Rng(9), opts);
  const changed = a.label.filter((k, i) => k !== item.label[i]).length;
  assert.ok(changed > 50, `labels barely moved (${changed})`);
  const agree = a.label.filter((k, i) => Math.abs(a.image[i * 3] / 10 - k) < 0.5).length;
  assert.ok(agree / a.label.length > 0.95, `image and label disagree at ${a.label.length - agree} pixels`);
});

Deno.test("spatial: three box passes approximate the Gaussian's variance and keep the mean", () => {
  for (const [sigma, tol] of [[2, 0.1], [5, 0.05], [40, 0.01], [60, 0.01]]) {
    const var3 = boxWidths(sigma).reduce((v, w) => v + (w * w - 1) / 12, 0);
    assert.ok(Math.abs(Math.sqrt(var3) - sigma) / sigma < tol, `sigma ${sigma}: ${Math.sqrt(var3)}`);
  }
  const n = 64;
  const delta = new Float32Array(n * n);
  delta[32 * n + 32] = 1;
  const sm = smoothField(delta, n, n, 4);
  assert.ok(Math.abs(sm.reduce((a, b) => a + b) - 1) < 1e-5);
  assert.ok(sm[32 * n + 32] > sm[32 * n + 40] && sm[32 * n + 40] > 0);
});

Deno.test("augment: the stage keys draws by slice id, so order does not matter", async () => {
  const items = ["a", "b", "c"].map((id) => discSlice(24, id));
  const rng = new Rng(5).fork("epoch0");
  const opts = resolveAugment();
  const fwd = await collect(pipe(items, augment(rng, opts)));
  const rev = await collect(pipe([...items].reverse(), augment(rng, opts)));
  assert.deepEqual(fwd.map((x) => x.image), rev.reverse().map((x) => x.image));
});

Deno.test("resolveAugment: defaults are docs/methods.md 3.3; bad options name the field", () => {
  const d = resolveAugment();
  assert.deepEqual(d.elastic, { p: 1, alpha: [100, 350], sigma: [40, 60] });
  assert.deepEqual(d.brightness, { p: 0.5, mu: 1, sigma: 1, perChannel: false });
  assert.equal(resolveAugment({ gamma: { p: 0 } }).gamma.p, 0);
  assert.throws(() => resolveAugment({ gamma: { p: 2 } }), /augment\.gamma\.p/);
  assert.throws(() => resolveAugment({ rotation: { range: [1, -1] } }), /augment\.rotation\.range/);
  assert.throws(() => resolveAugment({ blur: {} } as never), /augment\.blur: unknown/);
  assert.throws(() => resolveAugment({ noise: { std: 1 } } as never), /augment\.noise\.std: unknown/);
  assert.throws(() => resolveAugment({ mirror: { axes: ["z"] } } as never), /augment\.mirror\.axes/);
});

Deno.test("spatial: the coarse-grid elastic field has the exact field's spread (sigma 40, 224 px)", () => {
  const spread = (f: Float32Array) => Math.sqrt(f.reduce((a, v) => a + v * v, 0) / f.length);
  let exact = 0;
  let fast = 0;
  for (let s = 0; s < 6; s++) {
    exact += spread(smoothNoiseExact(224, 224, 40, new Rng(s)));
    fast += spread(smoothNoise(224, 224, 40, new Rng(100 + s)));
  }
  assert.ok(Math.abs(fast / exact - 1) < 0.2, `coarse ${fast / 6} vs exact ${exact / 6}`);
  const f = smoothNoise(224, 224, 40, new Rng(1));
  let jump = 0;
  for (let i = 1; i < f.length; i++) if (i % 224) jump = Math.max(jump, Math.abs(f[i] - f[i - 1]));
  assert.ok(jump < spread(f) * 0.2, "the field must be smooth");
});
