/**
 * `deno task table` end to end on a tiny grid: every cell is an ordinary run directory, the report lands as
 * table.json / table.md / table.svg, a second call trains nothing, `--list` and `--cell K` address the same
 * cells, and runs that differ only in --seed are scored on the same test patients.
 */
import { runScript } from "./run_script.ts";
import assert from "node:assert/strict";
import { generateAcdcPhantoms } from "../fixtures/phantom.ts";

const tmp = await Deno.makeTempDir({ prefix: "table_cli_" });
const data = `${tmp}/data`;
await generateAcdcPhantoms(data, { patients: 5, seed: 5, small: true });

const table = (args: string[]) => runScript("cli/table.ts", args);

const GRID = [
  "--data",
  data,
  "--sam",
  "random",
  "--medsam",
  "random",
  "--preset",
  "tiny",
  "--epochs",
  "1",
  "--image-size",
  "32",
  "--train-patients",
  "1",
  "--methods",
  "cnn-head,vit-head",
  "--seeds",
  "0,1",
  "--backend",
  "wasm",
  "--out",
  `${tmp}/out`,
];

Deno.test("table: a tiny grid runs, reports, resumes at once and keeps test patients across seeds", async () => {
  const list = await table([...GRID, "--list"]);
  assert.equal(list.code, 0, list.stderr);
  const cells = JSON.parse(list.stdout);
  assert.equal(cells.length, 2 * 2 * 2);
  // One cell on its own (a scheduler's array task), then the rest of the grid.
  const one = await table([...GRID, "--cell", "3"]);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stderr, /\[1\/1\] cnn-head MedSAM fold 0 seed 1: training/);
  const all = await table(GRID);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stderr, /\[4\/8\] cnn-head MedSAM fold 0 seed 1: finished before/);
  const summary = JSON.parse(all.stdout.trim().split("\n").at(-1)!);
  assert.deepEqual([summary.finished, summary.cells], [8, 8]);
  const report = JSON.parse(await Deno.readTextFile(`${tmp}/out/table.json`));
  assert.equal(report.rows.length, 4);
  for (const r of report.rows) {
    assert.equal(r.finished, 2);
    for (const k of ["RV", "Myo", "LV", "avg"]) assert.ok(r.dice[k].mean >= 0 && r.dice[k].mean <= 1);
    assert.ok(r.trainable_params > 0 && r.paper.avg > 0);
  }
  assert.match(await Deno.readTextFile(`${tmp}/out/table.md`), /\| vit-head \| MedSAM \| 2\/2 \|/);
  assert.match(await Deno.readTextFile(`${tmp}/out/table.svg`), /^<svg/);
  // Seeds change training, not the split: both seeds' runs name the same test patients.
  const split = async (c: { run: string }) =>
    JSON.parse(await Deno.readTextFile(`${c.run}/config.json`)).split;
  const [s0, s1] = [await split(cells[0]), await split(cells[1])];
  assert.deepEqual(s0.test, s1.test);
  assert.notEqual(s0.seed, s1.seed);
  // A second call finds every cell finished and trains nothing.
  const t0 = performance.now();
  const again = await table(GRID);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stderr.match(/finished before/g)?.length, 8);
  assert.ok(performance.now() - t0 < 20_000);
});

Deno.test("table: missing weights and an unknown cell are one-line errors", async () => {
  const r = await table(["--data", data, "--sam", "random"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /missing --medsam/);
  const bad = await table([...GRID, "--cell", "99"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--cell: 99 is not a cell of this grid/);
});

Deno.test({ name: "table: cleanup", fn: async () => await Deno.remove(tmp, { recursive: true }) });
