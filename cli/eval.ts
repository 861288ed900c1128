/**
 * `deno task eval --run DIR [--data DIR] [--split test] [--weights final|best] [--backend B]`: scores a trained
 * run (the paper's per-patient 3D Dice, plus per-frame Dice and HD95 in mm), writes DIR/metrics.json and prints
 * one JSON line.
 */
import { parseFlags } from "./flags.ts";
import { runCli, UserError } from "./user_error.ts";
import { BACKEND_NAMES, type BackendName } from "../pipeline/backend.ts";
import { evaluateRun, openRun, runDataset } from "../pipeline/eval_run.ts";

const USAGE =
  "usage: deno task eval --run DIR [--data DIR] [--split test|val|train] [--weights final|best] [--backend B]";

async function main(args: string[]) {
  const { values } = parseFlags(args, {
    run: { type: "string" },
    data: { type: "string" },
    split: { type: "string", default: "test" },
    weights: { type: "string", default: "final" },
    backend: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return console.log(USAGE);
  if (!values.run) throw new UserError(`--run DIR is required\n${USAGE}`);
  const split = values.split!;
  if (!["test", "val", "train"].includes(split)) {
    throw new UserError(`--split: "${split}" is not one of test, val, train`);
  }
  if (values.weights !== "final" && values.weights !== "best") {
    throw new UserError(`--weights: "${values.weights}" is not one of final, best`);
  }
  if (values.backend && !BACKEND_NAMES.includes(values.backend as BackendName)) {
    throw new UserError(`--backend: "${values.backend}" is not one of ${BACKEND_NAMES.join(", ")}`);
  }
  const log = (l: string) => console.error(l);
  const run = await openRun(values.run, {
    backend: values.backend as BackendName | undefined,
    weights: values.weights,
    log,
  });
  try {
    const data = await runDataset(run, values.data, log);
    const result = await evaluateRun(run, data, split as "test" | "val" | "train", log);
    const d = result.dice;
    log(
      `${split} Dice: RV ${d.RV.toFixed(4)} Myo ${d.Myo.toFixed(4)} LV ${d.LV.toFixed(4)} avg ${
        d.avg.toFixed(4)
      }`,
    );
    console.log(JSON.stringify({ run: values.run, [split]: { dice: d, frame_mean: result.frame_mean } }));
  } finally {
    run.model.dispose();
  }
}

if (import.meta.main) {
  runCli(main);
}
