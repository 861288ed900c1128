/**
 * `deno task train [flags]`: fine-tune a method (DESIGN section 3). With no flags it is the embedded demo
 * (phantoms, tiny preset); progress goes to stderr and the last stdout line is the run's JSON summary.
 */
import { parseFlags } from "./flags.ts";
import { runCli, UserError } from "./user_error.ts";
import {
  applyOptions,
  checkConfig,
  ConfigError,
  OPTIONS,
  resolveConfig,
  type TrainConfig,
} from "../pipeline/config.ts";
import { ProgressReporter } from "../pipeline/progress.ts";
import { RUN_FILES } from "../pipeline/run_dir.ts";
import { runTraining } from "../pipeline/train_run.ts";

const USAGE =
  `usage: deno task train [--data DIR] [--method loramednet|cnn-head] [--weights F] [--preset vit_b|tiny]
  [--config F.json] [--epochs N] [--batch-size N] [--lr X] [--seed N] [--fold K] [--train-patients N|all]
  [--lora-rank R] [--image-size S] [--backend auto|webgpu|wasm|cpu] [--out DIR] [--resume] [--dry-run]
  [--on-bad-case fail|skip] ... (every option: ${Object.keys(OPTIONS).map((k) => `--${k}`).join(" ")})
With no --data: the embedded demo (synthetic phantoms, tiny preset).`;

/** Options a resumed run may change; anything else must match the run's config.json. */
const RESUMABLE = new Set(["epochs", "backend", "log-every", "on-bad-case", "out"]);

/** --resume: the run's saved options, with only RESUMABLE ones overridable by flags. */
async function resumeConfig(flags: Record<string, string | undefined>): Promise<TrainConfig> {
  const out = flags.out;
  if (!out) throw new ConfigError("--resume needs --out DIR (the run directory to continue)");
  let saved: { options?: Record<string, unknown> };
  try {
    saved = JSON.parse(await Deno.readTextFile(`${out}/${RUN_FILES.config}`));
  } catch {
    throw new ConfigError(`--resume: ${out}/${RUN_FILES.config} is missing or unreadable; nothing to resume`);
  }
  const base = await resolveConfig({ data: "x" });
  const cfg = applyOptions(base, saved.options ?? {}, `${out}/${RUN_FILES.config}`);
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
  const resumed = applyOptions(cfg, given, "flags");
  for (const name of Object.keys(given)) {
    const key = OPTIONS[name].key;
    if (!RESUMABLE.has(name) && JSON.stringify(resumed[key]) !== JSON.stringify(cfg[key])) {
      throw new ConfigError(
        `--${name}: differs from the run being resumed (${JSON.stringify(cfg[key])}); only ` +
          `${[...RESUMABLE].map((r) => `--${r}`).join(", ")} may change on --resume`,
      );
    }
  }
  return checkConfig(resumed);
}

async function main(args: string[]) {
  const options = Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: "string" as const }]));
  const { values } = parseFlags(args, {
    ...options,
    config: { type: "string" },
    resume: { type: "boolean" },
    "dry-run": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const { config, resume, "dry-run": dryRun, help: _h, ...flags } = values as Record<
    string,
    string | boolean | undefined
  >;
  const stringFlags = flags as Record<string, string | undefined>;
  if (resume && dryRun) throw new UserError("--resume and --dry-run cannot be combined");
  const cfg = resume
    ? await resumeConfig(stringFlags)
    : await resolveConfig(stringFlags, config as string | undefined);
  const reporter = new ProgressReporter({ every: cfg.logEvery });
  try {
    if (cfg.data === null && !resume && !dryRun) {
      reporter.line("demo: no --data given, training the tiny preset on synthetic phantoms");
    }
    const result = await runTraining(cfg, {
      resume: !!resume,
      dryRun: !!dryRun,
      onEvent: (ev) => reporter.onEvent(ev),
      log: (l) => reporter.line(l),
    });
    reporter.stop();
    console.log(JSON.stringify(result));
  } finally {
    reporter.stop();
  }
}

if (import.meta.main) {
  runCli(main);
}
