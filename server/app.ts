/**
 * The HTTP API and web page of docs/http.md as a Hono app, built without listening (`createApp(deps)`), so
 * tests call `app.request` and server/main.ts wraps it in Deno.serve.
 */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import { UserError } from "../errors.ts";
import { tf } from "../engine/tf.ts";
import { pageAssets } from "./assets.ts";
import { tokenAuth } from "./auth.ts";
import { errorAnswer, HttpError } from "./http_error.ts";
import type { ModelCache } from "./model_cache.ts";
import type { PredictGate } from "./predict_gate.ts";
import { predictHandler } from "./predict_route.ts";
import { streamRunEvents } from "./run_events.ts";
import { listRunIds, runDir } from "./run_id.ts";
import { runSummary } from "./run_info.ts";
import type { Trainer } from "./trainer.ts";

export interface AppDeps {
  /** Absolute path of the runs folder. */
  runsDir: string;
  /** Bearer token every /api route but /api/health needs; none: open. */
  token?: string;
  bodyLimitBytes: number;
  trainer: Trainer;
  models: ModelCache;
  gate: PredictGate;
  /** The engine predictions run on. */
  backend: { name: string; adapter: string | null };
  /** Aborted when the server stops: open event streams end, so shutdown need not wait for them. */
  closing?: AbortSignal;
  /** Where unexpected errors are logged with their request id (default stderr). */
  log?: (line: string) => void;
}

/** The page may load only from this server (nothing from elsewhere), images also from blob: URLs. */
const PAGE_CSP =
  "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; object-src 'none'";

async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  const type = (c.req.header("Content-Type") ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/json") {
    throw new HttpError(
      415,
      "unsupported media type",
      `Content-Type ${type || "(none)"}: send application/json`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(await c.req.text());
  } catch (err) {
    throw new HttpError(
      422,
      "invalid JSON",
      `request: not valid JSON (${(err as Error).message.split("\n")[0]})`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(422, "invalid options", "request: expected a JSON object of options");
  }
  return value as Record<string, unknown>;
}

export function createApp(deps: AppDeps): Hono {
  const log = deps.log ?? ((l: string) => console.error(l));
  const { trainer } = deps;
  const app = new Hono();
  const dirOf = (id: string) => runDir(deps.runsDir, id, trainer.job(id) !== undefined);
  const predict = predictHandler(deps);

  app.use(requestId());
  app.onError((err, c) => {
    if (err instanceof UserError) {
      const { status, body, headers } = errorAnswer(err);
      return c.json(body, status as 400, headers);
    }
    const id = c.get("requestId");
    log(`request ${id} ${c.req.method} ${c.req.path} failed: ${(err as Error).stack ?? err}`);
    return c.json(
      { error: "internal error", detail: `see the server log for request ${id}`, request_id: id },
      500,
    );
  });
  app.notFound((c) =>
    c.json({ error: "not found", detail: `${c.req.method} ${c.req.path}: no such route` }, 404)
  );

  for (const [path, asset] of pageAssets()) {
    app.get(path, (c) => {
      c.header("Content-Type", asset.type);
      c.header("Cache-Control", "no-cache");
      if (path === "/") c.header("Content-Security-Policy", PAGE_CSP);
      return c.body(asset.bytes as Uint8Array<ArrayBuffer>);
    });
  }

  app.get("/api/health", (c) =>
    c.json({
      ok: true,
      backend: deps.backend.name,
      adapter: deps.backend.adapter,
      auth: deps.token ? "bearer" : null,
      training: trainer.training ?? null,
      predictions: deps.gate.load,
      models: deps.models.size,
      tensors: tf.memory().numTensors,
      rss_mb: Math.round(Deno.memoryUsage().rss / 2 ** 20),
    }));
  if (deps.token) app.use("/api/*", tokenAuth(deps.token));
  const limit = bodyLimit({
    maxSize: deps.bodyLimitBytes,
    onError: (c) =>
      c.json({
        error: "payload too large",
        detail: `the request body is over the server's limit of ${deps.bodyLimitBytes} bytes`,
      }, 413),
  });
  app.use("/api/*", async (c, next) => {
    try {
      return await limit(c, next);
    } catch (err) {
      // bodyLimit reads a body sent without a length itself: a client that hangs up fails that read.
      throw err instanceof UserError ? err : new HttpError(
        400,
        "upload interrupted",
        `the request body could not be read (${(err as Error).message})`,
      );
    }
  });

  app.get("/api/runs", async (c) => {
    const ids = new Set(await listRunIds(deps.runsDir));
    if (trainer.training) ids.add(trainer.training);
    const runs = await Promise.all(
      [...ids].sort().map(async (id) => runSummary(id, await dirOf(id), trainer.job(id))),
    );
    return c.json(runs);
  });
  app.get("/api/runs/:id", async (c) => {
    const id = c.req.param("id");
    return c.json(await runSummary(id, await dirOf(id), trainer.job(id)));
  });
  app.post("/api/runs", async (c) => {
    const job = await trainer.start(await jsonBody(c));
    const location = `/api/runs/${job.id}`;
    c.header("Location", location);
    return c.json({ id: job.id, status: job.status, url: location, events: `${location}/events` }, 202);
  });
  app.post("/api/runs/:id/cancel", async (c) => {
    const id = c.req.param("id");
    await dirOf(id);
    const job = trainer.cancel(id);
    return c.json({ id, status: job.status, cancel_requested: true }, 202);
  });
  app.get("/api/runs/:id/events", async (c) => {
    const id = c.req.param("id");
    return await streamRunEvents(c, await dirOf(id), () => trainer.job(id), deps.closing);
  });
  app.post("/api/runs/:id/predict", async (c) => predict(c, await dirOf(c.req.param("id"))));
  return app;
}
