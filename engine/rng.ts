/**
 * A small seedable random generator (xoshiro128**) whose streams fork by label and whose state serialises,
 * so data order, augmentation and initialisation replay exactly on resume, whatever order items are made in.
 */

const U32 = 0x1_0000_0000;

/** splitmix32 step: spreads a 32-bit seed into well-mixed words (never all zero for xoshiro). */
function splitmix32(x: number): [number, number] {
  const next = (x + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return [next, (z ^ (z >>> 16)) >>> 0];
}

/** FNV-1a over the label's UTF-16 code units: labels are short, and only stability matters. */
function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Seeds 4 state words from any number of 32-bit inputs through one splitmix chain. */
function seedWords(inputs: number[]): number[] {
  let x = 0x243f6a88;
  for (const v of inputs) x = (splitmix32((x ^ v) >>> 0)[1] + 0x6a09e667) >>> 0;
  const words: number[] = [];
  for (let i = 0; i < 4; i++) {
    const [nx, out] = splitmix32(x);
    x = nx;
    words.push(out);
  }
  if (!words.some((w) => w !== 0)) words[0] = 1;
  return words;
}

/** Seedable PRNG; `fork(label)` derives an independent child stream without advancing this one. */
export class Rng {
  private s: Uint32Array; // [4] xoshiro128** state

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`Rng seed must be a finite number, got ${seed}`);
    const whole = Math.trunc(seed);
    // Seeds beyond 32 bits keep their high part, so 1 and 2**32 + 1 give different streams.
    const lo = whole >>> 0;
    const hi = Math.floor(Math.abs(whole) / U32) >>> 0;
    this.s = Uint32Array.from(seedWords([lo, hi, whole < 0 ? 1 : 0]));
  }

  /** Rebuilds a generator from `state()`, to resume a run exactly. */
  static fromState(state: readonly number[]): Rng {
    const ok = Array.isArray(state) && state.length === 4 &&
      state.every((w) => Number.isInteger(w) && w >= 0 && w < U32) && state.some((w) => w !== 0);
    if (!ok) throw new RangeError(`Rng state must be 4 unsigned 32-bit integers, not all zero`);
    const rng = new Rng(0);
    rng.s = Uint32Array.from(state);
    return rng;
  }

  /** The 4 state words (plain numbers, JSON-safe). */
  state(): number[] {
    return Array.from(this.s);
  }

  /** Next raw 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32-bit resolution. */
  next(): number {
    return this.nextU32() / U32;
  }

  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > U32) {
      throw new RangeError(`Rng.int needs 1 <= n <= 2**32, got ${n}`);
    }
    const limit = U32 - (U32 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal draw (Box-Muller; one of the pair is discarded so the state stays 4 words). */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]: log stays finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /**
   * Fills out with N(mean, std) draws (both outputs of each pair used). The generator is inlined on local
   * words: noise fields are ~150k values per slice and the call overhead would dominate augmentation.
   */
  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    let s0 = this.s[0], s1 = this.s[1], s2 = this.s[2], s3 = this.s[3];
    const draw = () => {
      const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
      const t = (s1 << 9) >>> 0;
      s2 = (s2 ^ s0) >>> 0;
      s3 = (s3 ^ s1) >>> 0;
      s1 = (s1 ^ s2) >>> 0;
      s0 = (s0 ^ s3) >>> 0;
      s2 = (s2 ^ t) >>> 0;
      s3 = rotl(s3, 11);
      return result / U32;
    };
    // Marsaglia's polar method: one log and one sqrt per pair, no trigonometry.
    for (let i = 0; i < out.length; i += 2) {
      let u: number, v: number, q: number;
      do {
        u = 2 * draw() - 1;
        v = 2 * draw() - 1;
        q = u * u + v * v;
      } while (q >= 1 || q === 0);
      const r = Math.sqrt((-2 * Math.log(q)) / q) * std;
      out[i] = mean + u * r;
      if (i + 1 < out.length) out[i + 1] = mean + v * r;
    }
    this.s[0] = s0;
    this.s[1] = s1;
    this.s[2] = s2;
    this.s[3] = s3;
    return out;
  }

  /** A new shuffled copy of items (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  /**
   * Child stream keyed by label and this generator's current state; this generator does not advance, so
   * `rng.fork("epoch3").fork("patient001_frame01_z4")` is the same whatever else was drawn or forked.
   * Numbers and their decimal strings are the same label.
   */
  fork(label: string | number): Rng {
    const child = new Rng(0);
    child.s = Uint32Array.from(seedWords([...this.s, hashLabel(String(label)), String(label).length]));
    return child;
  }

  /** n independent children, keyed 0..n-1. */
  split(n: number): Rng[] {
    return Array.from({ length: n }, (_, i) => this.fork(`split:${i}`));
  }
}
