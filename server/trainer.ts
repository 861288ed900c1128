/**
 * The server's one training run at a time: a request checked by the train command's own option schema, then
 * `deno run -A cli/train.ts --config <request>` as a subprocess (so the server keeps answering while it
 * trains), cancelled with SIGTERM (the command stops after its current step and keeps its last checkpoint).
 */
import { withOutputErrors, writeOutputText } from "../io/safe_output.ts";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";
import { resolveOptions } from "../pipeline/config.ts";
import { HttpError } from "./http_error.ts";

export type JobStatus = "training" | "done" | "cancelled" | "failed";

/** A run this server started, as it knows it (in memory: the run folder holds everything else). */
export interface Job {
  id: string;
  dir: string;
  started: string;
  status: JobStatus;
  cancelRequested: boolean;
  /** Why the run failed (the train command's one-line error, or its exit code). */
  error?: string;
  /** Settles when the process has exited and the status is final. */
  finished: Promise<void>;
}

export interface TrainerOptions {
  /** Absolute path of the runs folder. */
  runsDir: string;
  /** Server log (stderr). */
  log?: (line: string) => void;
  /** The train command (default: cli/train.ts of this repository, spawned, never imported). */
  script?: string;
}

/** Jobs remembered after they end (their outcome is not on disk when a run is cancelled or fails early). */
const REMEMBERED = 100;
/** stderr lines kept per job, to say why it failed. */
const TAIL_LINES = 20;

const DEFAULT_SCRIPT = new URL("../cli/train.ts", import.meta.url).pathname;

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  return await Deno.stat(path).catch(() => null);
}

/** A fresh run id like the train command's default folder name, with a random suffix against collisions. */
function newRunId(method: string): string {
  const stamp = new Date().toISOString().replace(/[:]/g, "-").replace(/\..*$/, "");
  return `${stamp}-${method}-${crypto.randomUUID().slice(0, 4)}`;
}

/** Starts, tracks and cancels training subprocesses, one at a time. */
export class Trainer {
  private jobs = new Map<string, Job>();
  private active?: { job: Job; child?: Deno.ChildProcess };
  private readonly log: (line: string) => void;
  private readonly script: string;

  constructor(private readonly opts: TrainerOptions) {
    this.log = opts.log ?? ((l) => console.error(l));
    this.script = opts.script ?? DEFAULT_SCRIPT;
  }

  /** The job of run id, if this server started it. */
  job(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  /** The id of the run training now, if any. */
  get training(): string | undefined {
    return this.active?.job.id;
  }

  /**
   * Checks a run request (option values under their long flag names, as a --config file) and starts it.
   * 409 while another run trains; 422 for a bad option, a missing data folder or weights file.
   */
  async start(request: Record<string, unknown>): Promise<Job> {
    if (this.active) {
      throw new HttpError(
        409,
        "a run is already training",
        `run ${this.active.job.id} is training; cancel it or wait`,
      );
    }
    const job: Job = {
      id: "",
      dir: "",
      started: new Date().toISOString(),
      status: "training",
      cancelRequested: false,
      finished: Promise.resolve(),
    };
    this.active = { job }; // claimed before the first await, so a concurrent request sees 409
    try {
      const cfg = await this.check(request);
      job.id = newRunId(cfg.method);
      job.dir = join(this.opts.runsDir, job.id);
      const config = await withOutputErrors(
        "the run request's temporary config file",
        () => Deno.makeTempFile({ prefix: "serve_run_", suffix: ".json" }),
      );
      // log-every 1 by default: the page draws a point per step.
      const values = { "log-every": 1, ...request, out: job.dir };
      await writeOutputText(config, JSON.stringify(values));
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", this.script, "--config", config],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        // Its own process group: a Ctrl-C meant for the server reaches the run only as the server's one SIGTERM.
        detached: true,
      }).spawn();
      this.active.child = child;
      this.remember(job);
      job.finished = this.follow(job, child).finally(() => Deno.remove(config).catch(() => {}));
      this.log(`run ${job.id}: training (${this.script} --config ${config})`);
      return job;
    } catch (err) {
      this.active = undefined;
      throw err;
    }
  }

  /** Asks the training run id to stop after its current step (409 if it is not this server's running one). */
  cancel(id: string): Job {
    const active = this.active;
    if (!active?.child || active.job.id !== id) {
      const known = this.jobs.get(id);
      throw new HttpError(
        409,
        "not training",
        known ? `run ${id} is ${known.status}` : `run ${id} is not being trained by this server`,
      );
    }
    if (!active.job.cancelRequested) {
      active.job.cancelRequested = true;
      try {
        active.child.kill("SIGTERM");
      } catch {
        // already exited; follow() records the outcome
      }
      this.log(`run ${id}: cancel requested`);
    }
    return active.job;
  }

  /** Cancels the running job (if any) and waits until its process has exited. */
  async stop(): Promise<void> {
    const id = this.active?.job.id;
    if (!id || !this.active?.child) return;
    this.log(`waiting for run ${id} to stop after its current step`);
    this.cancel(id);
    await this.active?.job.finished;
  }

  /** The request checked as `train --config` would check it, plus what only a server must refuse. */
  private async check(request: Record<string, unknown>) {
    if ("out" in request) {
      throw new ConfigError(`request: "out": runs are created in the server's runs folder; leave it out`);
    }
    const cfg = resolveOptions(request, "request");
    if (cfg.data !== null && !(await statOrNull(cfg.data))?.isDirectory) {
      throw new ConfigError(`request: "data": ${cfg.data}: no such folder on the server`);
    }
    if (cfg.weights !== null && !(await statOrNull(cfg.weights))?.isFile) {
      throw new ConfigError(`request: "weights": ${cfg.weights}: no such file on the server`);
    }
    return cfg;
  }

  private remember(job: Job): void {
    this.jobs.set(job.id, job);
    for (const [id, j] of this.jobs) {
      if (this.jobs.size <= REMEMBERED) break;
      if (j.status !== "training") this.jobs.delete(id);
    }
  }

  /** Drains the process's output and records how it ended. */
  private async follow(job: Job, child: Deno.ChildProcess): Promise<void> {
    const tail: string[] = [];
    const stderr = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({
        write(chunk) {
          tail.push(...chunk.split("\n").filter((l) => l.trim()));
          tail.splice(0, Math.max(0, tail.length - TAIL_LINES));
        },
      }),
    );
    const stdout = new Response(child.stdout).text();
    const [status, out] = await Promise.all([child.status, stdout, stderr]).then(([s, o]) => [s, o] as const);
    const last = out.trim().split("\n").at(-1) ?? "";
    let summary: { cancelled?: boolean } = {};
    try {
      summary = JSON.parse(last);
    } catch {
      // no summary line: the run failed or was killed
    }
    if (status.success) {
      job.status = summary.cancelled ? "cancelled" : "done";
    } else if (
      job.cancelRequested && (status.signal !== null || status.code === 130 || status.code === 143)
    ) {
      job.status = "cancelled";
    } else {
      job.status = "failed";
      const err = [...tail].reverse().find((l) => l.startsWith("error: "));
      job.error = err?.slice("error: ".length) ??
        `the training process exited with ${
          status.signal ? `signal ${status.signal}` : `code ${status.code}`
        }: ${tail.at(-1) ?? "no output"}`;
    }
    if (this.active?.job === job) this.active = undefined;
    this.log(`run ${job.id}: ${job.status}${job.error ? ` (${job.error})` : ""}`);
  }
}
