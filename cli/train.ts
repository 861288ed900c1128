/**
 * `deno task train [flags]`: the command line of a training run (docs/cli.md). It reads the options
 * (pipeline/config.ts), hands them to runTraining (pipeline/train_run.ts, which builds everything around the
 * loop of stages/train.ts) and prints progress on stderr and the run's JSON summary as the last stdout line.
 * With no flags it is the embedded demo (phantoms, tiny preset).
 */
import { ConfigError, UserError } from "../errors.ts";
import {
  applyOptions,
  checkConfig,
  METHODS,
  PAPER_DEFAULTS,
  resolveConfig,
  TRAIN_OPTIONS,
  type TrainConfig,
} from "../pipeline/config.ts";
import { parseCommand } from "../pipeline/flags.ts";
import { flag, optionName, path } from "../pipeline/option_schema.ts";
import { ProgressReporter } from "../pipeline/progress.ts";
import { RUN_FILES } from "../pipeline/run_dir.ts";
import { runCli } from "../pipeline/run_cli.ts";
import { readInputText } from "../io/safe_open.ts";
import { runTraining } from "../pipeline/train_run.ts";

/** The training options plus what only the command line has. */
const SHAPE = { ...TRAIN_OPTIONS, config: path.optional(), resume: flag, dryRun: flag };
/** What the command line has beside the options (never saved in a run). */
const COMMAND_ONLY = new Set(["config", "resume", "dry-run"]);

const USAGE = `usage: deno task train [--data DIR] [--method ${
  METHODS.join("|")
}] [--weights F|random] [--preset vit_b|tiny]
  [--config F.json] [--epochs N] [--batch-size N] [--lr X] [--seed N] [--fold K] [--train-patients N|all]
  [--lora-rank R] [--image-size S] [--backend auto|webgpu|wasm|cpu] [--out DIR] [--resume] [--dry-run]
  [--on-bad-case fail|skip] ... (every option: ${
  Object.keys(TRAIN_OPTIONS).map((k) => `--${optionName(k)}`).join(" ")
})
With no --data: the embedded demo (synthetic phantoms, tiny preset).`;

/** Options a resumed run may change; anything else must match the run's config.json. */
const RESUMABLE = new Set([
  "epochs",
  "backend",
  "log-every",
  "val-every",
  "val-cache-mib",
  "train-cache-mib",
  "on-bad-case",
  "out",
]);

/** --resume: the run's saved options, with only RESUMABLE ones overridable by flags. */
async function resumeConfig(flags: Record<string, string>): Promise<TrainConfig> {
  const out = flags.out;
  if (!out) throw new ConfigError("--resume needs --out DIR (the run directory to continue)");
  const savedPath = `${out}/${RUN_FILES.config}`;
  let saved: { options?: Record<string, unknown> };
  try {
    saved = JSON.parse(await readInputText(savedPath, { maxBytes: 16 << 20, what: "run config" }));
  } catch {
    throw new ConfigError(`--resume: ${savedPath} is missing or unreadable; nothing to resume`);
  }
  const cfg = applyOptions(PAPER_DEFAULTS, saved.options ?? {}, savedPath);
  const resumed = applyOptions(cfg, flags, "flags");
  for (const key of Object.keys(TRAIN_OPTIONS) as (keyof TrainConfig)[]) {
    const name = optionName(key);
    if (name in flags && !RESUMABLE.has(name) && JSON.stringify(resumed[key]) !== JSON.stringify(cfg[key])) {
      throw new ConfigError(
        `--${name}: differs from the run being resumed (${JSON.stringify(cfg[key])}); only ` +
          `${[...RESUMABLE].map((r) => `--${r}`).join(", ")} may change on --resume`,
      );
    }
  }
  return checkConfig(resumed);
}

/**
 * SIGINT/SIGTERM (Ctrl-C, or the server's cancel): the first stops training after the current step, keeping
 * the last complete epoch's checkpoint for --resume; a second one quits at once.
 */
function stopOnSignal(say: (line: string) => void): { signal: AbortSignal; remove: () => void } {
  const ctrl = new AbortController();
  const onSignal = () => {
    if (ctrl.signal.aborted) Deno.exit(130);
    say("stopping after the current step (the last complete epoch's checkpoint stays); again to quit now");
    ctrl.abort();
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  return {
    signal: ctrl.signal,
    remove: () => signals.forEach((s) => Deno.removeSignalListener(s, onSignal)),
  };
}

async function main(args: string[]) {
  const { options, given, help } = parseCommand(args, SHAPE);
  if (help) return console.log(USAGE);
  const { resume, dryRun, config } = options;
  if (resume && dryRun) throw new UserError("--resume and --dry-run cannot be combined");
  const flags = Object.fromEntries(Object.entries(given).filter(([name]) => !COMMAND_ONLY.has(name)));
  const cfg = resume ? await resumeConfig(flags) : await resolveConfig(flags, config);
  const reporter = new ProgressReporter({ every: cfg.logEvery });
  const stop = stopOnSignal((l) => reporter.line(l));
  try {
    if (cfg.data === null && !resume && !dryRun) {
      reporter.line("demo: no --data given, training the tiny preset on synthetic phantoms");
    }
    let stoppedAfter: number | undefined;
    const result = await runTraining(cfg, {
      resume: !!resume,
      dryRun: !!dryRun,
      signal: stop.signal,
      onEvent: (ev) => {
        if (ev.type === "done" && ev.cancelled) stoppedAfter = ev.epoch;
        reporter.onEvent(ev);
      },
      log: (l) => reporter.line(l),
    });
    reporter.stop();
    const run = (result as { run?: string }).run;
    console.log(
      JSON.stringify(stoppedAfter === undefined ? result : { run, cancelled: true, epoch: stoppedAfter }),
    );
  } finally {
    stop.remove();
    reporter.stop();
  }
}

if (import.meta.main) runCli(main);
