import assert from "node:assert/strict";
import { type CellResult, gridCells, type GridOptions, pickCell } from "./table.ts";
import { tableMarkdown, tableRows, tableSvg } from "./table_report.ts";

const GRID: GridOptions = {
  data: "d",
  weights: { SAM: "sam.pth", MedSAM: "medsam.pth" },
  methods: ["cnn-head", "loramednet"],
  seeds: [0, 1, 2],
  folds: [0],
  preset: "tiny",
  epochs: 1,
  backend: "wasm",
  out: "out",
};

Deno.test("table: the grid is methods x weight sets x folds x seeds in a stable order", () => {
  const cells = gridCells(GRID);
  assert.equal(cells.length, 2 * 2 * 1 * 3);
  assert.deepEqual(cells.map((c) => c.index), [...cells.keys()]);
  assert.deepEqual(cells[0], {
    index: 0,
    method: "cnn-head",
    weights: "SAM",
    seed: 0,
    fold: 0,
    run: "out/runs/cnn-head-sam-fold0-seed0",
  });
  assert.equal(cells[4].weights, "MedSAM");
  assert.equal(new Set(cells.map((c) => c.run)).size, cells.length, "every cell its own run directory");
  assert.equal(pickCell(cells, 11).run, "out/runs/loramednet-medsam-fold0-seed2");
  assert.throws(() => pickCell(cells, 12), /--cell: 12 is not a cell of this grid \(0\.\.11/);
});

Deno.test("table: rows are mean and sample sd over finished cells, beside the paper's numbers", () => {
  const cells: CellResult[] = gridCells(GRID).map((c) => ({ ...c, status: "pending" }));
  const dice = (avg: number) => ({ RV: avg, Myo: avg, LV: avg, avg });
  for (const [i, avg] of [[0, 0.5], [1, 0.7], [2, 0.9]] as const) {
    Object.assign(cells[i], {
      status: "done",
      dice: dice(avg),
      trainable_params: 10,
      train_time_s: 60 * (i + 1),
    });
  }
  const rows = tableRows(cells);
  assert.equal(rows.length, 4);
  const first = rows[0];
  assert.deepEqual([first.method, first.weights, first.finished, first.planned], ["cnn-head", "SAM", 3, 3]);
  assert.ok(Math.abs(first.dice!.avg.mean - 0.7) < 1e-12);
  assert.ok(Math.abs(first.dice!.avg.sd - 0.2) < 1e-12); // sample sd of 0.5, 0.7, 0.9
  assert.deepEqual(first.train_time_s, { mean: 120, sd: 60 });
  assert.equal(first.paper!.avg, 67.21);
  assert.equal(rows[1].dice, null, "no finished cell: no numbers");
  const md = tableMarkdown(rows, "note");
  assert.match(md, /\| cnn-head \| SAM \| 3\/3 \| 70\.00 ± 20\.00 \|/);
  assert.match(md, /\| loramednet \| MedSAM \| 0\/3 \| - \|.*\| 82\.86 \|/);
  const svg = tableSvg(rows);
  assert.ok(svg.startsWith("<svg") && svg.trim().endsWith("</svg>"));
  assert.equal(
    (svg.match(/<rect x=/g) ?? []).length,
    3 + 3,
    "3 bars for the one finished row, 3 legend keys",
  );
});
