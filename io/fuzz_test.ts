/**
 * Seeded fuzzing of the readers that take untrusted bytes (issue #13): NIfTI (plain and gzip), the
 * restricted pickle reader, whole PyTorch checkpoints (zip and legacy) and safetensors. Each case mutates a
 * valid file (fixtures written by other tools, plus small ones built here): bit flips, truncation, extension,
 * splices from other files, huge numbers written into header, length and shape fields, JSON-level edits of
 * a safetensors header, pickle opcode snippets, and NIfTI header fields rewritten before re-compression.
 *
 * A reader must return a value or throw a UserError subclass. Anything else (TypeError, RangeError, "Array
 * buffer allocation failed") fails the test, as does a case that runs past CASE_MS or stops answering (the
 * cases run in a worker this file starts on itself, watched from here, so a hang is caught, not waited on),
 * or resident memory rising past a bound derived from the largest seed (sampled from here while the worker
 * runs). Each failure prints the seed and case to replay:
 *
 *   FUZZ_SEED=13 FUZZ_CASE=pickle:1234 deno test -A io/fuzz_test.ts   # one case
 *   FUZZ_LONG=1 deno test -A io/fuzz_test.ts                          # 100000 cases per format
 *   FUZZ_N=5000 FUZZ_SEED=7 deno test -A io/fuzz_test.ts               # any count, any seed
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { mixSeed, Prng } from "../fixtures/mulberry32.ts";
import { UserError } from "../errors.ts";
import { readNiftiBytes } from "./nifti_read.ts";
import { decodeSafetensorsWithMetadata } from "./safetensors.ts";
import { unpickle } from "./pickle.ts";
import { type PthStorage, storageFromPid, torchGlobals } from "./torch_globals.ts";
import { flattenTensors, readPth } from "./pth.ts";
import { type Format, FORMATS, type Seed, seedsOf } from "../tests/fuzz/seeds.ts";
import { Mutator } from "../tests/fuzz/mutator.ts";

/** Cases per format in the normal suite (about 10 s in all on a slow core); FUZZ_N or FUZZ_LONG for more. */
const DEFAULT_N: Record<typeof FORMATS[number], number> = {
  nifti: 1500,
  safetensors: 2000,
  pickle: 3000,
  pth: 1000,
};
/** One case must finish within this (a fast reader takes well under 50 ms on these inputs). */
const CASE_MS = 3000;
/** No word from the worker for this long means a case hangs (longer than CASE_MS: GC pauses, a busy machine). */
const WATCHDOG_MS = 15_000;
/** Resident memory may rise by this many times the largest seed's decoded size, plus RSS_SLACK. */
const RSS_FACTOR = 64;
/** The worker's own runtime, the readers' module graph and garbage not yet collected. */
const RSS_SLACK = 256 << 20;

// ---------------------------------------------------------------------------------------------------------
// One case: a mutant, and the reader it goes to.

interface Case {
  describe: string;
  /** Reads the case's bytes (a promise for the async readers). */
  run: () => unknown;
}

/** A case for planted-bug self-tests: proves the harness catches a crash, a hang and a big allocation. */
function plantedCase(index: number, plant: string): Case {
  return {
    describe: `planted ${plant}`,
    run: async () => {
      if (index !== 3) throw new UserError("fine");
      if (plant === "crash") throw new TypeError("planted crash");
      if (plant === "slow") await new Promise((r) => setTimeout(r, CASE_MS + 200));
      if (plant === "hang") { for (;;); }
      if (plant === "alloc") {
        const big = new Uint8Array(768 << 20).fill(1); // touched, so it is resident
        await new Promise((r) => setTimeout(r, 300));
        return big.length;
      }
    },
  };
}

function makeCase(format: Format, seeds: Seed[], r: Prng, tmp: string, index: number, plant: string): Case {
  if (format === "planted") return plantedCase(index, plant);
  const seed = r.pick(seeds);
  const m = new Mutator(r, seeds.map((s) => s.bytes));
  const file = `fuzz-${format}`;
  let bytes: Uint8Array;
  if (format === "nifti") {
    if (seed.plain && m.chance(0.7)) {
      let plain = m.chance(0.5) ? m.niftiField(seed.plain) : m.bytes(seed.plain, seed.focus);
      if (m.chance(0.3)) plain = m.niftiField(plain);
      bytes = new Uint8Array(gzipSync(plain, { level: 1 }));
      if (m.chance(0.2)) bytes = m.bytes(bytes, [0, 32]);
    } else if (!seed.plain && m.chance(0.5)) {
      bytes = m.niftiField(seed.bytes);
      if (m.chance(0.5)) bytes = m.bytes(bytes, seed.focus);
    } else {
      bytes = m.bytes(seed.bytes, seed.plain ? [0, 64] : seed.focus);
    }
    return { describe: `${seed.name}: ${m.log.join(" ")}`, run: () => readNiftiBytes(bytes, file) };
  }
  if (format === "safetensors") {
    bytes = m.chance(0.5) ? m.safetensorsJson(seed.bytes) : seed.bytes;
    if (m.log.length === 0 || m.chance(0.3)) bytes = m.bytes(bytes, seed.focus);
    return {
      describe: `${seed.name}: ${m.log.join(" ")}`,
      run: () => decodeSafetensorsWithMetadata(bytes, file),
    };
  }
  if (format === "pickle") {
    bytes = m.chance(0.4) ? m.pickleSnippet(seed.bytes, seed.focus, m.chance(0.5)) : seed.bytes;
    if (m.log.length === 0 || m.chance(0.4)) bytes = m.bytes(bytes, seed.focus);
    return {
      describe: `${seed.name}: ${m.log.join(" ")}`,
      run: () => {
        const seen = new Map<string, PthStorage>();
        const { value } = unpickle(bytes, {
          globals: torchGlobals(file),
          persistentLoad: (pid) => storageFromPid(pid, file, seen),
          file,
        });
        return flattenTensors(value, file);
      },
    };
  }
  // pth: the whole checkpoint through a file (zip index, pickle, storages, views).
  bytes = m.chance(0.3) ? m.pickleSnippet(seed.bytes, seed.focus, false) : seed.bytes;
  if (m.log.length === 0 || m.chance(0.4)) bytes = m.bytes(bytes, seed.focus);
  return {
    describe: `${seed.name}: ${m.log.join(" ")}`,
    run: async () => {
      await Deno.writeFile(tmp, bytes);
      return await readPth(tmp);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// The worker: runs cases, reports each before it starts (for the watchdog) and every failure.

interface Job {
  formats: Format[];
  seed: number;
  n: number;
  only?: number;
  plant?: string;
}

type Report =
  | { t: "ready"; largest: number }
  | { t: "at"; format: Format; i: number }
  | { t: "bad"; format: Format; i: number; describe: string; error: string }
  | { t: "done"; ok: number; refused: number; slowestMs: number };

async function workerMain(job: Job, post: (r: Report) => void) {
  const tmp = await Deno.makeTempFile({ prefix: "fuzz_", suffix: ".pth" });
  try {
    const seeds = new Map<Format, Seed[]>();
    let largest = 0;
    for (const f of job.formats) {
      seeds.set(f, await seedsOf(f));
      for (const s of seeds.get(f)!) largest = Math.max(largest, s.bytes.length, s.plain?.length ?? 0);
    }
    // Every seed must be valid, or the fuzzing would only ever exercise the first check.
    if (!job.plant && job.only === undefined) await checkSeeds(seeds, tmp);
    post({ t: "ready", largest });
    let ok = 0, refused = 0, slowestMs = 0;
    for (const [fi, format] of job.formats.entries()) {
      const from = job.only ?? 0, to = job.only !== undefined ? job.only + 1 : job.n;
      for (let i = from; i < to; i++) {
        post({ t: "at", format, i });
        const r = new Prng(mixSeed(job.seed, fi + 1, i));
        let c: Case;
        try {
          c = makeCase(format, seeds.get(format)!, r, tmp, i, job.plant ?? "");
        } catch (err) {
          post({ t: "bad", format, i, describe: "building the case", error: String(err) });
          continue;
        }
        const t0 = performance.now();
        try {
          await c.run();
          ok++;
        } catch (err) {
          if (err instanceof UserError && !err.message.includes("\n")) refused++;
          else {
            const e = err as Error;
            const why = err instanceof UserError
              ? `multi-line message: ${e.message}`
              : `${e?.name}: ${e?.message}`;
            post({ t: "bad", format, i, describe: c.describe, error: why.slice(0, 300) });
          }
        }
        const ms = performance.now() - t0;
        slowestMs = Math.max(slowestMs, ms);
        if (ms > CASE_MS) {
          post({ t: "bad", format, i, describe: c.describe, error: `took ${ms.toFixed(0)} ms` });
        }
      }
    }
    post({ t: "done", ok, refused, slowestMs });
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

async function checkSeeds(seeds: Map<Format, Seed[]>, tmp: string) {
  for (const [format, list] of seeds) {
    for (const s of list) {
      if (format === "nifti") await readNiftiBytes(s.bytes, s.name);
      else if (format === "safetensors") decodeSafetensorsWithMetadata(s.bytes, s.name);
      else if (format === "pickle") {
        const seen = new Map<string, PthStorage>();
        const { value } = unpickle(s.bytes, {
          globals: torchGlobals(s.name),
          persistentLoad: (pid) => storageFromPid(pid, s.name, seen),
          file: s.name,
        });
        if (!flattenTensors(value, s.name).size) throw new Error(`seed ${s.name} holds no tensor`);
      } else if (format === "pth") {
        await Deno.writeFile(tmp, s.bytes);
        if (!(await readPth(tmp)).size) throw new Error(`seed ${s.name} holds no tensor`);
      }
    }
  }
}

const scope = globalThis as unknown as {
  name?: string;
  onmessage: ((e: MessageEvent<Job>) => void) | null;
  postMessage: (r: Report) => void;
  close: () => void;
};

// ---------------------------------------------------------------------------------------------------------
// The driver: starts the worker, watches it, samples memory, collects failures.

interface FuzzResult {
  failures: string[];
  ok: number;
  refused: number;
  slowestMs: number;
  rssRise: number;
  rssBound: number;
  cases: number;
}

async function fuzz(job: Job, watchdogMs = WATCHDOG_MS): Promise<FuzzResult> {
  const worker = new Worker(import.meta.url, { type: "module", name: "fuzz-worker" });
  const failures: string[] = [];
  const replay = (format: Format, i: number) => `FUZZ_SEED=${job.seed} FUZZ_CASE=${format}:${i}`;
  let last: { format: Format; i: number } | undefined;
  let baseline = 0, peak = 0, peakAt = "", largest = 0, cases = 0;
  let result: Extract<Report, { t: "done" }> | undefined;
  await new Promise<void>((resolve) => {
    let heard = performance.now();
    const finish = () => {
      clearInterval(timer);
      worker.terminate();
      resolve();
    };
    const timer = setInterval(() => {
      const rss = Deno.memoryUsage().rss;
      if (baseline && rss > peak) {
        peak = rss;
        peakAt = last ? replay(last.format, last.i) : "";
      }
      if (performance.now() - heard > watchdogMs) {
        failures.push(
          `${
            last ? replay(last.format, last.i) : "before the first case"
          }: no answer for ${watchdogMs} ms (a hang)`,
        );
        finish();
      }
    }, 5);
    worker.onerror = (e) => {
      e.preventDefault();
      failures.push(`${last ? replay(last.format, last.i) : "worker"}: the worker died: ${e.message}`);
      finish();
    };
    worker.onmessage = (e: MessageEvent<Report>) => {
      heard = performance.now();
      const r = e.data;
      if (r.t === "ready") {
        largest = r.largest;
        baseline = peak = Deno.memoryUsage().rss;
      } else if (r.t === "at") {
        last = r;
        cases++;
      } else if (r.t === "bad") failures.push(`${replay(r.format, r.i)}: ${r.error} [${r.describe}]`);
      else {
        result = r;
        finish();
      }
    };
    worker.postMessage(job);
  });
  const rssBound = RSS_FACTOR * largest + RSS_SLACK;
  const rssRise = peak - baseline;
  if (rssRise > rssBound) {
    failures.push(
      `${peakAt}: resident memory rose ${rssRise >> 20} MiB, over the ${rssBound >> 20} MiB bound`,
    );
  }
  return {
    failures,
    ok: result?.ok ?? 0,
    refused: result?.refused ?? 0,
    slowestMs: result?.slowestMs ?? 0,
    rssRise,
    rssBound,
    cases,
  };
}

function envInt(name: string): number | undefined {
  const v = Deno.env.get(name);
  return v === undefined || v === "" ? undefined : Number(v);
}

if (scope.name === "fuzz-worker") {
  scope.onmessage = (e) => {
    workerMain(e.data, (r) => scope.postMessage(r)).catch((err) =>
      scope.postMessage({
        t: "bad",
        format: "planted",
        i: -1,
        describe: "worker setup",
        error: String(err?.stack ?? err),
      })
    );
  };
} else {
  const seed = envInt("FUZZ_SEED") ?? 13;
  const only = Deno.env.get("FUZZ_CASE");
  const long = Deno.env.get("FUZZ_LONG") === "1";

  for (const format of FORMATS) {
    const onlyHere = only?.startsWith(`${format}:`) ? Number(only.slice(format.length + 1)) : undefined;
    Deno.test({
      name: `fuzz ${format}: mutated files give a value or a one-line UserError, in time, in bounded memory`,
      ignore: only !== undefined && onlyHere === undefined,
      fn: async () => {
        const n = envInt("FUZZ_N") ?? (long ? 100_000 : DEFAULT_N[format]);
        const r = await fuzz({ formats: [format], seed, n, only: onlyHere });
        console.log(
          `fuzz ${format}: seed ${seed}, ${r.cases} cases: ${r.ok} read, ${r.refused} refused; slowest ` +
            `${r.slowestMs.toFixed(0)} ms; resident memory rose ${r.rssRise >> 20} MiB (bound ${
              r.rssBound >> 20
            })`,
        );
        assert.deepEqual(r.failures.slice(0, 20), [], `${r.failures.length} failing cases`);
        assert.equal(r.cases, onlyHere === undefined ? n : 1);
        // Mutations must reach past the first checks: some mutants still read, many are refused.
        if (onlyHere === undefined) {
          assert.ok(r.ok > 0 && r.refused > n / 10, `${r.ok} read, ${r.refused} refused`);
        }
      },
    });
  }

  Deno.test({
    name: "fuzz harness: a planted crash, slow case, hang and allocation are each reported with their case",
    ignore: only !== undefined,
    fn: async () => {
      const crash = await fuzz({ formats: ["planted"], seed: 1, n: 6, plant: "crash" });
      assert.deepEqual(crash.failures, [
        "FUZZ_SEED=1 FUZZ_CASE=planted:3: TypeError: planted crash [planted crash]",
      ]);
      assert.equal(crash.refused, 5);
      const slow = await fuzz({ formats: ["planted"], seed: 1, n: 5, plant: "slow" });
      assert.match(slow.failures.join(), /^FUZZ_SEED=1 FUZZ_CASE=planted:3: took \d+ ms/);
      const hang = await fuzz({ formats: ["planted"], seed: 1, n: 5, plant: "hang" }, 1000);
      assert.deepEqual(hang.failures, ["FUZZ_SEED=1 FUZZ_CASE=planted:3: no answer for 1000 ms (a hang)"]);
      const alloc = await fuzz({ formats: ["planted"], seed: 1, n: 5, plant: "alloc" });
      assert.match(
        alloc.failures.join(),
        /FUZZ_CASE=planted:3: resident memory rose \d+ MiB, over the \d+ MiB bound/,
      );
    },
  });
}
