/**
 * `deno task table --data DIR --sam F --medsam F [...]`: the paper's Table 1 as a grid of training runs
 * (pipeline/table.ts), resumable, with a progress line per cell and for the grid, then table.json, table.md
 * and table.svg in --out. `--list` prints the cells, `--cell K` runs one (a scheduler's array task),
 * `--collect` only writes the report from what has finished.
 */
import { TRAIN_OPTIONS } from "../pipeline/config.ts";
import { parseCommand, requireFlags } from "../pipeline/flags.ts";
import { flag, int, listOf, oneOf, optionName, path } from "../pipeline/option_schema.ts";
import { runCli } from "../pipeline/run_cli.ts";
import { formatDuration } from "../pipeline/progress.ts";
import {
  type CellResult,
  cellResult,
  gridCells,
  type GridOptions,
  pickCell,
  runCell,
} from "../pipeline/table.ts";
import { writeTable } from "../pipeline/table_report.ts";
import { prepareOutputDir } from "../io/safe_output.ts";
import { METHODS } from "../pipeline/config.ts";

const USAGE = `usage: deno task table --data DIR --sam F|random --medsam F|random
  [--methods cnn-head,vit-head,gnet,loramednet] [--seeds 0,1,2] [--folds 0] [--epochs N] [--preset vit_b|tiny]
  [--out results] [--backend auto|webgpu|wasm|cpu] [--normalization ...] [--train-patients N] [--split-seed N]
  [--list | --cell K | --collect]`;

/** Train options a grid may set for every cell (the cell sets method, weights, seed and fold itself). */
const PASS_THROUGH = ["normalization", "trainPatients", "imageSize", "batchSize", "splitSeed"] as const;

const SHAPE = {
  data: path,
  sam: path,
  medsam: path,
  methods: listOf(oneOf(METHODS)),
  seeds: listOf(int(0)),
  folds: listOf(TRAIN_OPTIONS.fold),
  epochs: int(1),
  preset: TRAIN_OPTIONS.preset,
  out: path,
  backend: TRAIN_OPTIONS.backend,
  list: flag,
  cell: int(0),
  collect: flag,
  ...Object.fromEntries(PASS_THROUGH.map((k) => [k, TRAIN_OPTIONS[k]])) as Pick<
    typeof TRAIN_OPTIONS,
    typeof PASS_THROUGH[number]
  >,
};

async function main(args: string[]) {
  const { options: o, given, help } = parseCommand(args, SHAPE, {
    defaults: {
      methods: ["cnn-head", "vit-head", "gnet", "loramednet"],
      seeds: [0, 1, 2],
      folds: [0],
      preset: "vit_b",
      out: "results",
      backend: "auto",
    },
  });
  if (help) return console.log(USAGE);
  requireFlags(o, ["data", "sam", "medsam"], USAGE);
  const grid: GridOptions = {
    data: o.data!,
    weights: { SAM: o.sam!, MedSAM: o.medsam! },
    methods: o.methods!,
    seeds: o.seeds!,
    folds: o.folds!,
    preset: o.preset!,
    epochs: o.epochs ?? null,
    backend: o.backend!,
    out: o.out!,
    extra: Object.fromEntries(
      PASS_THROUGH.map((k) => optionName(k)).filter((n) => n in given).map((n) => [n, given[n]]),
    ),
  };
  const cells = gridCells(grid);
  if (o.list) return console.log(JSON.stringify(cells));
  const log = (l: string) => console.error(l);
  const toRun = o.cell !== undefined ? [pickCell(cells, o.cell)] : o.collect ? [] : cells;
  // An unwritable --out fails now, not after the grid has trained.
  await prepareOutputDir(grid.out, { label: "--out" });
  const t0 = performance.now();
  for (const [i, c] of toRun.entries()) {
    const name = `${c.method} ${c.weights} fold ${c.fold} seed ${c.seed}`;
    const before = await cellResult(c);
    if (before.status === "done") {
      log(`[${i + 1}/${toRun.length}] ${name}: finished before (${c.run}), skipped`);
      continue;
    }
    log(`[${i + 1}/${toRun.length}] ${name}: training into ${c.run}`);
    const r = await runCell(grid, c, (l) => log(`  ${l}`));
    const elapsed = (performance.now() - t0) / 1000;
    log(
      `[${i + 1}/${toRun.length}] ${name}: test Dice avg ${r.dice!.avg.toFixed(4)}; grid ${
        formatDuration(elapsed)
      } ` +
        `elapsed, ${
          i + 1 < toRun.length
            ? `~${formatDuration((elapsed / (i + 1)) * (toRun.length - i - 1))} left`
            : "done"
        }`,
    );
  }
  const results: CellResult[] = [];
  for (const c of cells) results.push(await cellResult(c));
  const { json, md, svg, rows } = await writeTable(grid.out, results, {
    ...grid,
    weights: grid.weights,
  });
  log(`wrote ${json}, ${md} and ${svg}`);
  console.log(JSON.stringify({
    table: json,
    finished: results.filter((r) => r.status === "done").length,
    cells: results.length,
    rows: rows.map((r) => ({ method: r.method, weights: r.weights, avg: r.dice?.avg ?? null })),
  }));
}

if (import.meta.main) runCli(main);
