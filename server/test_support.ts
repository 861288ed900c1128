/**
 * Test support for the server's tests and its load benchmark: a small phantom data set, a tiny trained run
 * (the train command as a subprocess, as the server runs it), and an app over a runs folder.
 */
import { generateAcdcPhantoms } from "../fixtures/phantom.ts";
import { selectBackend } from "../engine/backend.ts";
import { openRun } from "../pipeline/eval_run.ts";
import { createApp } from "./app.ts";
import { ModelCache } from "./model_cache.ts";
import { PredictGate } from "./predict_gate.ts";
import { Trainer } from "./trainer.ts";

const TRAIN = new URL("../cli/train.ts", import.meta.url).pathname;

/** Tiny everything (32 px, 4x4 tokens, a 2-channel head, 1 labelled patient, wasm): seconds per run. */
export const TINY_RUN: Record<string, string | number> = {
  preset: "tiny",
  "image-size": 32,
  "encoder-size": 32,
  "head-top-channel": 2,
  "train-patients": 1,
  "batch-size": 4,
  "lora-rank": 2,
  backend: "wasm",
  seed: 0,
  "log-every": 1,
};

/** Five small phantom patients (60 x 52 x 7 frames) under dir; returns dir. */
export async function tinyData(dir: string): Promise<string> {
  await generateAcdcPhantoms(dir, { patients: 5, seed: 3, small: true });
  return dir;
}

/** Option values as command-line flags: {"batch-size": 4} -> ["--batch-size", "4"]. */
export const toFlags = (values: Record<string, string | number>): string[] =>
  Object.entries(values).flatMap(([k, v]) => [`--${k}`, String(v)]);

/** Trains a tiny run into out with the train command (epochs 2 unless given); fails loudly. */
export async function trainTinyRun(data: string, out: string, options: Record<string, string | number> = {}) {
  const values = { ...TINY_RUN, epochs: 2, ...options, data, out };
  const args = toFlags(values);
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TRAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!r.success) throw new Error(`training ${out} failed: ${new TextDecoder().decode(r.stderr)}`);
}

export interface TestAppOptions {
  token?: string;
  bodyLimitBytes?: number;
  maxPredictions?: number;
  predictionQueue?: number;
  models?: number;
  log?: (line: string) => void;
}

/** The app over runsDir on the wasm backend, with its parts (so tests can look at them and clean up). */
export async function testApp(runsDir: string, o: TestAppOptions = {}) {
  const log = o.log ?? (() => {});
  const choice = await selectBackend("wasm", {}, () => {});
  const trainer = new Trainer({ runsDir, log });
  const models = new ModelCache({
    max: o.models ?? 2,
    open: (dir, weights) => openRun(dir, { backend: choice.backend, weights, log: () => {} }),
  });
  const gate = new PredictGate(o.maxPredictions ?? 1, o.predictionQueue ?? 16);
  const closing = new AbortController();
  const app = createApp({
    runsDir,
    token: o.token,
    bodyLimitBytes: o.bodyLimitBytes ?? 256 * 2 ** 20,
    trainer,
    models,
    gate,
    backend: { name: choice.backend, adapter: null },
    closing: closing.signal,
    log,
  });
  const close = async () => {
    closing.abort();
    await trainer.stop();
    await models.close();
  };
  return { app, trainer, models, gate, close };
}

export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/** The messages of a text/event-stream body as they arrive (comments skipped). */
export async function* sseMessages(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  let buffer = "";
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const msg: SseMessage = { event: "message", data: "" };
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const [field, ...rest] = line.split(":");
        const value = rest.join(":").replace(/^ /, "");
        if (field === "event") msg.event = value;
        if (field === "data") data.push(value);
        if (field === "id") msg.id = value;
      }
      msg.data = data.join("\n");
      if (data.length) yield msg;
    }
  }
}
