/**
 * `deno task serve [--host 127.0.0.1] [--port 8787] [--runs runs/] [--token T]`: the HTTP API and web page
 * of docs/http.md on Deno.serve. Prints `{"url": ...}` on stdout once listening; Ctrl-C (or SIGTERM) stops a
 * training run after its current step, waits for it, and exits.
 */
import { ConfigError, UserError } from "../errors.ts";
import { BACKEND_NAMES, selectBackend } from "../engine/backend.ts";
import { openRun } from "../pipeline/eval_run.ts";
import { parseCommand } from "../pipeline/flags.ts";
import { int, nullable, optionName, path } from "../pipeline/option_schema.ts";
import { TRAIN_OPTIONS } from "../pipeline/config.ts";
import { runCli } from "../pipeline/run_cli.ts";
import { createApp } from "./app.ts";
import { pageAssets } from "./assets.ts";
import { TOKEN_CHARS } from "./auth.ts";
import { ModelCache } from "./model_cache.ts";
import { PredictGate } from "./predict_gate.ts";
import { Trainer } from "./trainer.ts";
import { z } from "zod";

/** The server's options, in the vocabulary of the training options. */
export const SERVE_OPTIONS = {
  /** Address to bind: loopback unless told otherwise. */
  host: z.string({ error: "a host name or address" }).min(1, { error: "a host name or address" }),
  port: int(0, 65535),
  /** The folder whose subfolders are the runs. */
  runs: path,
  /** Bearer token for /api (default: the SERVE_TOKEN environment variable; none: open). */
  token: nullable(
    z.string({ error: "a token" }).regex(TOKEN_CHARS, { error: "a token of A-Z a-z 0-9 . _ ~ + / -" }),
  ),
  /** Engine for predictions (auto: a hardware GPU, else wasm). */
  backend: TRAIN_OPTIONS.backend,
  /** Largest request body in MiB (413 above it). */
  bodyLimitMib: int(1, 4096),
  /** Predictions running at once, and waiting beyond those (503 with Retry-After past both). */
  maxPredictions: int(1, 64),
  predictionQueue: int(0, 1024),
  /** Trained models kept loaded (least recently used out first). */
  models: int(1, 64),
};

const DEFAULTS = {
  host: "127.0.0.1",
  port: 8787,
  runs: "runs",
  token: null,
  backend: "auto" as const,
  bodyLimitMib: 256,
  maxPredictions: 1,
  predictionQueue: 16,
  models: 2,
};

/** Each flag shown with its default (the token as T, the backend with its choices). */
const USAGE = `usage: deno task serve ${
  Object.entries(DEFAULTS).map(([k, v]) =>
    `[--${optionName(k)} ${k === "token" ? "T" : k === "backend" ? BACKEND_NAMES.join("|") : v}]`
  ).join(" ")
}
The token may also come from SERVE_TOKEN; docs/http.md explains every option.`;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/;

/** The runs folder as an absolute real path, created if missing (it may itself be a link to a folder). */
async function runsFolder(given: string): Promise<string> {
  const info = await Deno.stat(given).catch(() => null);
  if (info && !info.isDirectory) throw new UserError(`--runs ${given}: exists and is not a folder`);
  try {
    if (!info) await Deno.mkdir(given, { recursive: true });
    return await Deno.realPath(given);
  } catch (err) {
    throw new UserError(`--runs ${given}: cannot create or open the folder (${(err as Error).message})`);
  }
}

async function main(args: string[]) {
  const { options, help } = parseCommand(args, SERVE_OPTIONS, { defaults: DEFAULTS });
  if (help) return console.log(USAGE);
  const o = options as typeof DEFAULTS & { token: string | null };
  const token = o.token ?? Deno.env.get("SERVE_TOKEN") ?? null;
  if (token !== null && !TOKEN_CHARS.test(token)) {
    throw new ConfigError(`SERVE_TOKEN: not a token of A-Z a-z 0-9 . _ ~ + / -`);
  }
  const runsDir = await runsFolder(o.runs);
  pageAssets(); // a missing package fails here, not on the first page load
  const log = (l: string) => console.error(l);
  const choice = await selectBackend(o.backend, {}, log);
  const trainer = new Trainer({ runsDir, log });
  const models = new ModelCache({
    max: o.models,
    open: (dir, weights) => openRun(dir, { backend: choice.backend, weights, log: () => {} }),
  });
  const gate = new PredictGate(o.maxPredictions, o.predictionQueue);
  const closing = new AbortController();
  const app = createApp({
    runsDir,
    token: token ?? undefined,
    bodyLimitBytes: o.bodyLimitMib * 2 ** 20,
    trainer,
    models,
    gate,
    backend: { name: choice.backend, adapter: choice.adapter ?? null },
    closing: closing.signal,
    log,
  });
  if (!LOOPBACK.test(o.host) && !token) {
    log(
      `warning: listening on ${o.host} without a token: anyone who can reach this port can train and predict`,
    );
  }
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({ hostname: o.host, port: o.port, onListen: () => {} }, app.fetch);
  } catch (err) {
    throw new UserError(`--host ${o.host} --port ${o.port}: cannot listen (${(err as Error).message})`);
  }
  const addr = server.addr as Deno.NetAddr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const url = `http://${host}:${addr.port}/`;
  log(`serving ${url} (runs: ${runsDir}; token: ${token ? "required" : "none"}; backend: ${choice.backend})`);
  console.log(JSON.stringify({ url }));

  let stopping = false;
  const stop = async () => {
    if (stopping) Deno.exit(130);
    stopping = true;
    await trainer.stop();
    closing.abort();
    await server.shutdown();
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, () => void stop());
  await server.finished;
  await models.close();
  log("stopped");
  Deno.exit(0);
}

if (import.meta.main) runCli(main);
