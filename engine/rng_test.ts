import assert from "node:assert/strict";
import { Rng } from "./rng.ts";

function draws(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.next());
}

Deno.test("Rng: same seed gives the same stream, other seeds differ", () => {
  assert.deepEqual(draws(new Rng(42), 20), draws(new Rng(42), 20));
  assert.notDeepEqual(draws(new Rng(42), 5), draws(new Rng(43), 5));
  assert.notDeepEqual(draws(new Rng(1), 5), draws(new Rng(2 ** 32 + 1), 5));
  assert.notDeepEqual(draws(new Rng(1), 5), draws(new Rng(-1), 5));
});

Deno.test("Rng: next is in [0, 1) and roughly uniform; normal has mean 0, sd 1", () => {
  const rng = new Rng(7);
  const xs = draws(rng, 20000);
  assert(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((a, b) => a + b) / xs.length;
  assert(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
  const ns = Array.from({ length: 20000 }, () => rng.normal());
  const m = ns.reduce((a, b) => a + b) / ns.length;
  const sd = Math.sqrt(ns.reduce((a, b) => a + (b - m) ** 2, 0) / ns.length);
  assert(Math.abs(m) < 0.03 && Math.abs(sd - 1) < 0.03, `normal mean ${m} sd ${sd}`);
  const filled = rng.fillNormal(new Float32Array(20001), 2, 3);
  const fm = filled.reduce((a, b) => a + b) / filled.length;
  assert(Math.abs(fm - 2) < 0.1 && Number.isFinite(filled[20000]), `fillNormal mean ${fm}`);
});

Deno.test("Rng: int is within range and hits every value", () => {
  const rng = new Rng(3);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const k = rng.int(7);
    assert(Number.isInteger(k) && k >= 0 && k < 7);
    seen.add(k);
  }
  assert.deepEqual(seen.size, 7);
  assert.throws(() => rng.int(0), RangeError);
  assert.throws(() => rng.int(2.5), RangeError);
});

Deno.test("Rng: fork is keyed, does not advance the parent, and differs by label", () => {
  const a = new Rng(5);
  const b = new Rng(5);
  const fa = a.fork("epoch1");
  b.fork("something else");
  assert.deepEqual(draws(a, 5), draws(b, 5), "forking must not advance the parent");
  const again = new Rng(5).fork("epoch1");
  assert.deepEqual(draws(fa, 5), draws(again, 5));
  assert.notDeepEqual(draws(new Rng(5).fork("epoch1"), 5), draws(new Rng(5).fork("epoch2"), 5));
  assert.deepEqual(draws(new Rng(5).fork(3), 3), draws(new Rng(5).fork("3"), 3));
  assert.notDeepEqual(draws(new Rng(5).fork("x"), 3), draws(new Rng(5), 3), "child differs from parent");
  const [s0, s1] = new Rng(5).split(2);
  assert.notDeepEqual(draws(s0, 3), draws(s1, 3));
});

Deno.test("Rng: state round-trips through JSON and resumes the exact stream", () => {
  const rng = new Rng(11);
  draws(rng, 13);
  const saved = JSON.parse(JSON.stringify(rng.state()));
  const expected = draws(rng, 10);
  assert.deepEqual(draws(Rng.fromState(saved), 10), expected);
  assert.throws(() => Rng.fromState([0, 0, 0, 0]), RangeError);
  assert.throws(() => Rng.fromState([1, 2, 3]), RangeError);
  assert.throws(() => Rng.fromState([1, 2, 3, 2 ** 32]), RangeError);
});

Deno.test("Rng: shuffle is a permutation and seeded", () => {
  const items = Array.from({ length: 50 }, (_, i) => i);
  const s1 = new Rng(9).shuffle(items);
  assert.deepEqual([...s1].sort((x, y) => x - y), items);
  assert.deepEqual(s1, new Rng(9).shuffle(items));
  assert.notDeepEqual(s1, items);
  assert.notDeepEqual(s1, new Rng(10).shuffle(items));
});

Deno.test("Rng: fillNormal's inlined generator advances the state exactly like next()", () => {
  const a = new Rng(21);
  const b = new Rng(21);
  const filled = a.fillNormal(new Float32Array(6), 1, 2);
  const expected: number[] = [];
  for (let i = 0; i < 3; i++) {
    let u: number, v: number, q: number;
    do {
      u = 2 * b.next() - 1;
      v = 2 * b.next() - 1;
      q = u * u + v * v;
    } while (q >= 1 || q === 0);
    const r = Math.sqrt((-2 * Math.log(q)) / q) * 2;
    expected.push(1 + u * r, 1 + v * r);
  }
  assert.deepEqual(Array.from(filled), Array.from(Float32Array.from(expected)));
  assert.deepEqual(a.state(), b.state());
});
