/**
 * GET /api/runs/:id/events: a run's log.jsonl as Server-Sent Events (docs/http.md). Event ids are log line
 * numbers, so a client reconnecting with Last-Event-ID gets exactly the records it missed, and a finished run
 * replays its whole history before its `done` (or `error`) event, whose id is the line count + 1.
 */
import { join } from "node:path";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { RUN_FILES } from "../pipeline/run_dir.ts";
import type { DiceScores } from "../stages/train_events.ts";
import { readJsonOrNull } from "./run_info.ts";
import { LogFollower, type LogRecord } from "./run_log.ts";
import type { Job } from "./trainer.ts";

export interface RunEvent {
  event: "progress" | "validation" | "done" | "error";
  data: Record<string, unknown>;
}

/** How often a live log is read again, and how often a quiet stream sends a comment to find dead clients. */
const POLL_MS = 250;
const HEARTBEAT_MS = 15_000;

/**
 * The event of one log record (null for records clients do not need). `knownSteps`: steps per epoch seen in
 * the log so far, for logs written before step records carried `steps`.
 */
export function eventOf(
  r: LogRecord,
  epochs: number | null,
  knownSteps: number | null = null,
): RunEvent | null {
  if (r.type === "step") {
    const { epoch, step = 0, steps = knownSteps, global_step = 0, elapsed_s = 0 } = r;
    const left = steps !== null && epochs !== null ? (epochs - epoch) * steps + (steps - step) : null;
    const eta = left !== null && global_step > 0 ? (elapsed_s / global_step) * left : null;
    return {
      event: "progress",
      data: { epoch, epochs, step, steps, global_step, loss: r.loss, lr: r.lr, elapsed_s, eta_s: eta },
    };
  }
  if (r.type === "epoch") {
    return {
      event: "validation",
      data: { epoch: r.epoch, dice: r.val_dice, best: r.best ?? false, loss: r.loss, lr: r.lr },
    };
  }
  return null;
}

/**
 * The event that ends a run's stream, or null while it may still grow: a run this server trains is live
 * until its process exits; any other run until its metrics.json holds the test result of its last epoch.
 */
export async function finalEvent(dir: string, job?: Job): Promise<RunEvent | null> {
  if (job?.status === "training") return null;
  if (job?.status === "failed") {
    return { event: "error", data: { error: "training failed", detail: job.error ?? "unknown" } };
  }
  const [config, state, metrics] = await Promise.all([
    readJsonOrNull<{ options?: { epochs?: number } }>(join(dir, RUN_FILES.config)),
    readJsonOrNull<{ epoch?: number; elapsedS?: number }>(join(dir, RUN_FILES.state)),
    readJsonOrNull<{ test?: { dice?: DiceScores } }>(join(dir, RUN_FILES.metrics)),
  ]);
  const epoch = state?.epoch ?? 0;
  const test = metrics?.test?.dice ?? null;
  if (!job && !(test && epoch >= (config?.options?.epochs ?? Infinity))) return null;
  const status = job?.status ?? "done";
  return { event: "done", data: { status, epoch, elapsed_s: state?.elapsedS ?? null, test } };
}

async function epochsOf(dir: string): Promise<number | null> {
  return (await readJsonOrNull<{ options?: { epochs?: number } }>(join(dir, RUN_FILES.config)))?.options
    ?.epochs ?? null;
}

/** Last-Event-ID as a line number (0 when absent or not a number). */
export function lastEventId(c: Context): number {
  const n = Number(c.req.header("Last-Event-ID") ?? 0);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/**
 * The SSE answer for run dir. A client that already has the final event of a finished run gets 204, which
 * tells a browser's EventSource to stop reconnecting. `closing` ends every stream (the server is stopping).
 */
export async function streamRunEvents(
  c: Context,
  dir: string,
  job: () => Job | undefined,
  closing?: AbortSignal,
) {
  const last = lastEventId(c);
  const logPath = join(dir, RUN_FILES.log);
  if (last > 0 && (await finalEvent(dir, job()))) {
    const probe = new LogFollower(logPath);
    await probe.next();
    if (last > probe.count) return c.body(null, 204);
  }
  return streamSSE(c, async (stream) => {
    const follower = new LogFollower(logPath);
    let epochs = await epochsOf(dir);
    let beat = Date.now();
    let lastStep = 0, knownSteps: number | null = null;
    while (!stream.aborted && !closing?.aborted) {
      // Decided before reading, so a run that has ended has written every line we are about to read.
      const final = await finalEvent(dir, job());
      const records = await follower.next();
      if (records.length && epochs === null) epochs = await epochsOf(dir);
      for (const { n, record } of records) {
        if (record.type === "step") lastStep = record.step ?? 0;
        if (record.type === "epoch") knownSteps = lastStep; // an epoch's last step is always logged
        const ev = n > last ? eventOf(record, epochs, knownSteps) : null;
        if (ev) {
          await stream.writeSSE({ event: ev.event, data: JSON.stringify(ev.data), id: String(n) });
          beat = Date.now();
        }
      }
      if (final) {
        const id = follower.count + 1;
        if (id > last) {
          await stream.writeSSE({ event: final.event, data: JSON.stringify(final.data), id: String(id) });
        }
        return;
      }
      if (Date.now() - beat > HEARTBEAT_MS) {
        await stream.write(": keep-alive\n\n");
        beat = Date.now();
      }
      await stream.sleep(POLL_MS);
    }
  });
}
