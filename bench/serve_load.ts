/**
 * Load on `deno task serve` over loopback: mixed requests at a fixed concurrency (good predictions, garbage
 * and oversized bodies, bad tokens, unknown runs, traversal attempts, clients that drop mid-upload or
 * mid-stream), each checked against the status the contract promises; requests per second, predict latency
 * percentiles, and the server's tensor count and RSS after warm-up and at the end. Bounded in count and time,
 * 127.0.0.1 only. `deno run -A bench/serve_load.ts [--requests 200] [--concurrency 20] [--image-size 128] [--json]`
 * (tests/serve_load_test.ts runs a small size in the suite).
 */
import { generateAcdcPhantoms } from "../fixtures/phantom.ts";
import { parseCommand } from "../pipeline/flags.ts";
import { flag, int } from "../pipeline/option_schema.ts";
import { runCli } from "../pipeline/run_cli.ts";
import { type Kind, KINDS, schedule, send, TOKEN } from "./serve_requests.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** The committed ACDC-format fixture scan (86 x 76 x 8, oblique): what the good predictions send. */
const SCAN = `${ROOT}fixtures/acdc/training/patient001/patient001_frame01.nii.gz`;

export interface LoadResult {
  requests: number;
  concurrency: number;
  seconds: number;
  requests_per_s: number;
  /** One prediction with the server otherwise idle (median of the warm-up's, first excluded). */
  predict_alone_ms: number;
  /** Predictions under the load, from sending the request to the last byte of the answer (queueing included). */
  predict_ms: { p50: number; p95: number; n: number };
  /** Requests whose answer was not the promised one (kind, got). */
  wrong: string[];
  statuses: Record<string, Record<string, number>>;
  tensors: { warm: number; end: number };
  rss_mb: { warm: number; end: number };
  healthy_after: boolean;
  /** Lines the server logged as internal errors (500s): none expected. */
  server_errors: string[];
}

/** A tiny trained run (one epoch) in runs/model and a never-finishing copy of it in runs/open. */
async function prepare(dir: string, imageSize: number): Promise<string> {
  const data = `${dir}/data`, runs = `${dir}/runs`;
  await generateAcdcPhantoms(data, { patients: 5, seed: 3, small: true });
  const args = [
    "--data",
    data,
    "--preset",
    "tiny",
    "--image-size",
    String(imageSize),
    "--train-patients",
    "1",
  ];
  args.push("--epochs", "1", "--backend", "wasm", "--out", `${runs}/model`);
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}cli/train.ts`, ...args],
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (!r.success) {
    throw new Error(`training the load test's model failed: ${new TextDecoder().decode(r.stderr)}`);
  }
  await Deno.mkdir(`${runs}/open`);
  for (const f of ["config.json", "log.jsonl"]) {
    await Deno.copyFile(`${runs}/model/${f}`, `${runs}/open/${f}`);
  }
  return runs;
}

async function startServer(runs: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}server/main.ts`,
      "--port",
      "0",
      "--runs",
      runs,
      "--token",
      TOKEN,
      "--backend",
      "wasm",
    ]
      .concat(["--body-limit-mib", "4", "--prediction-queue", "64"]),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const log = new Response(child.stderr).text();
  const { value } = await child.stdout.pipeThrough(new TextDecoderStream()).getReader().read();
  if (!value) throw new Error(`the server did not start: ${await log}`);
  return { child, log, url: JSON.parse(value.split("\n")[0]).url as string };
}

async function health(url: string): Promise<{ tensors: number; rss_mb: number; ok: boolean }> {
  return await (await fetch(`${url}api/health`)).json();
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN;
};

/** Runs the load against a fresh server; everything it made is removed afterwards. */
export async function serveLoad(
  o: { requests: number; concurrency: number; imageSize: number; timeLimitS?: number },
) {
  const dir = await Deno.makeTempDir({ prefix: "serve_load_" });
  const runs = await prepare(dir, o.imageSize);
  // Uncompressed, so each upload can differ in a header byte (see fresh()).
  const gz = await Deno.readFile(SCAN);
  const scan = new Uint8Array(
    await new Response(new Blob([gz]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer(),
  );
  const server = await startServer(runs);
  let result: LoadResult;
  try {
    result = await measure(server.url, scan, o);
  } finally {
    server.child.kill("SIGTERM");
    await server.child.status;
  }
  result.server_errors = (await server.log).split("\n").filter((l) => / failed: /.test(l));
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  return result;
}

/** Sends requests of the kinds in order, `concurrency` at a time; returns statuses and predict times. */
async function fire(url: string, scan: Uint8Array, kinds: Kind[], concurrency: number, deadline: number) {
  const statuses: LoadResult["statuses"] = {};
  const wrong: string[] = [];
  const predictMs: number[] = [];
  let next = 0, sent = 0;
  const worker = async () => {
    while (next < kinds.length && Date.now() < deadline) {
      const kind = kinds[next++];
      const start = performance.now();
      const status = await send(url, kind, scan).catch((e) => `error ${(e as Error).message}`);
      sent++;
      if (kind === "predict") predictMs.push(performance.now() - start);
      (statuses[kind] ??= {})[status] = (statuses[kind][status] ?? 0) + 1;
      if (status !== KINDS[kind][1]) wrong.push(`${kind}: ${status}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (sent < kinds.length) {
    wrong.push(`only ${sent} of ${kinds.length} requests were sent within the time limit`);
  }
  await new Promise((r) => setTimeout(r, 500)); // let dropped streams and uploads wind down
  return { statuses, wrong, predictMs, sent };
}

/**
 * Warm-up (sequential predictions, then a quarter-size mixed round, so the engine, the allocator and the
 * server's caches reach their working size), then the measured round.
 */
async function measure(
  url: string,
  scan: Uint8Array,
  o: { requests: number; concurrency: number; timeLimitS?: number },
): Promise<LoadResult> {
  const deadline = Date.now() + (o.timeLimitS ?? 600) * 1000;
  const alone: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await send(url, "predict", scan);
    alone.push(performance.now() - t);
  }
  const warmRound = await fire(url, scan, schedule(Math.ceil(o.requests / 4)), o.concurrency, deadline);
  const warm = await health(url);
  const t0 = performance.now();
  const r = await fire(url, scan, schedule(o.requests), o.concurrency, deadline);
  const seconds = (performance.now() - t0 - 500) / 1000;
  const end = await health(url);
  const healthy = end.ok && (await send(url, "predict", scan)) === 200;
  const ms = (xs: number[], p: number) => Math.round(percentile(xs, p));
  return {
    requests: r.sent,
    concurrency: o.concurrency,
    seconds: Math.round(seconds * 100) / 100,
    requests_per_s: Math.round((r.sent / seconds) * 10) / 10,
    predict_alone_ms: ms(alone.slice(1), 0.5),
    predict_ms: { p50: ms(r.predictMs, 0.5), p95: ms(r.predictMs, 0.95), n: r.predictMs.length },
    wrong: [...warmRound.wrong, ...r.wrong],
    statuses: r.statuses,
    tensors: { warm: warm.tensors, end: end.tensors },
    rss_mb: { warm: warm.rss_mb, end: end.rss_mb },
    healthy_after: healthy,
    server_errors: [],
  };
}

async function main(args: string[]) {
  const { options, help } = parseCommand(args, {
    requests: int(1, 2000),
    concurrency: int(1, 100),
    imageSize: int(16, 512),
    json: flag,
  }, {
    defaults: { requests: 200, concurrency: 20, imageSize: 128 },
  });
  if (help) {
    return console.log(
      "usage: deno run -A bench/serve_load.ts [--requests 200] [--concurrency 20] [--image-size 128] [--json]",
    );
  }
  const r = await serveLoad({
    requests: options.requests!,
    concurrency: options.concurrency!,
    imageSize: options.imageSize!,
  });
  if (options.json) return console.log(JSON.stringify(r));
  console.log(
    `${r.requests} requests at ${r.concurrency} concurrent in ${r.seconds} s: ${r.requests_per_s} requests/s; ` +
      `predict p50 ${r.predict_ms.p50} ms, p95 ${r.predict_ms.p95} ms (${r.predict_ms.n} predictions; ` +
      `${r.predict_alone_ms} ms alone)\n` +
      `wrong answers: ${
        r.wrong.length ? r.wrong.join("; ") : "none"
      }; server errors: ${r.server_errors.length}\n` +
      `tensors ${r.tensors.warm} -> ${r.tensors.end}; RSS ${r.rss_mb.warm} -> ${r.rss_mb.end} MB; healthy after: ${r.healthy_after}\n` +
      `statuses: ${JSON.stringify(r.statuses)}`,
  );
}

if (import.meta.main) runCli(main);
