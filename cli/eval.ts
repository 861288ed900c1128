/**
 * `deno task eval --run DIR [--data DIR] [--split test] [--weights final|best] [--backend B]`: scores a trained
 * run (the paper's per-patient 3D Dice, plus per-frame Dice and HD95 in mm), writes DIR/metrics.json and prints
 * one JSON line.
 */
import { evaluateRun, OPEN_RUN_OPTIONS, openRun, runDataset } from "../pipeline/eval_run.ts";
import { parseCommand, requireFlags } from "../pipeline/flags.ts";
import { oneOf, path } from "../pipeline/option_schema.ts";
import { runCli } from "../pipeline/run_cli.ts";

const USAGE =
  "usage: deno task eval --run DIR [--data DIR] [--split test|val|train] [--weights final|best] [--backend B]";

const SHAPE = { ...OPEN_RUN_OPTIONS, data: path.optional(), split: oneOf(["test", "val", "train"]) };

async function main(args: string[]) {
  const { options, help } = parseCommand(args, SHAPE, { defaults: { split: "test", weights: "final" } });
  if (help) return console.log(USAGE);
  requireFlags(options, ["run"], USAGE);
  const split = options.split!;
  const log = (l: string) => console.error(l);
  const run = await openRun(options.run!, { backend: options.backend, weights: options.weights, log });
  try {
    const data = await runDataset(run, options.data, log);
    const result = await evaluateRun(run, data, split, log);
    const d = result.dice;
    log(
      `${split} Dice: RV ${d.RV.toFixed(4)} Myo ${d.Myo.toFixed(4)} LV ${d.LV.toFixed(4)} avg ${
        d.avg.toFixed(4)
      }`,
    );
    console.log(JSON.stringify({ run: options.run, [split]: { dice: d, frame_mean: result.frame_mean } }));
  } finally {
    run.model.dispose();
  }
}

if (import.meta.main) runCli(main);
