/**
 * The grid's report: per method and weight set, Dice per class and averaged as mean +- sd over the finished
 * seeds and folds, with trainable parameters and train time, beside the paper's Table 1; written as table.json,
 * table.md and a bar chart (table.svg) of per-class Dice.
 */
import { join } from "node:path";
import { writeOutputText } from "../io/safe_output.ts";
import { CLASS_NAMES } from "../stages/volume.ts";
import { PAPER_TABLE_1 } from "./paper_table.ts";
import { writeJson } from "./run_dir.ts";
import { type CellResult, WEIGHT_SETS } from "./table.ts";

const KEYS = [...CLASS_NAMES, "avg"] as const;
type Key = typeof KEYS[number];

export interface Stat {
  mean: number;
  sd: number;
}

export interface TableRow {
  method: string;
  weights: string;
  /** Finished cells over planned ones. */
  finished: number;
  planned: number;
  /** Dice fractions 0..1, mean and sample sd over the finished cells (sd 0 for a single cell). */
  dice: Record<Key, Stat> | null;
  trainable_params: number | null;
  train_time_s: Stat | null;
  /** The paper's published Dice in % (Table 1), where it has the row. */
  paper: Record<Key, number> | null;
  runs: string[];
}

function stat(xs: number[]): Stat {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd };
}

/** One row per method and weight set, in grid order. */
export function tableRows(cells: CellResult[]): TableRow[] {
  const rows: TableRow[] = [];
  for (const method of [...new Set(cells.map((c) => c.method))]) {
    for (const weights of WEIGHT_SETS) {
      const mine = cells.filter((c) => c.method === method && c.weights === weights);
      if (!mine.length) continue;
      const done = mine.filter((c) => c.status === "done" && c.dice);
      const paper = PAPER_TABLE_1.find((r) => r.method === method && r.weights === weights);
      rows.push({
        method,
        weights,
        finished: done.length,
        planned: mine.length,
        dice: done.length
          ? Object.fromEntries(KEYS.map((k) => [k, stat(done.map((c) => c.dice![k]))])) as Record<Key, Stat>
          : null,
        trainable_params: done.find((c) => c.trainable_params !== undefined)?.trainable_params ?? null,
        train_time_s: done.length ? stat(done.map((c) => c.train_time_s ?? 0)) : null,
        paper: paper ? { RV: paper.RV, Myo: paper.Myo, LV: paper.LV, avg: paper.avg } : null,
        runs: mine.map((c) => c.run),
      });
    }
  }
  return rows;
}

const pct = (s: Stat) => `${(100 * s.mean).toFixed(2)} ± ${(100 * s.sd).toFixed(2)}`;

/** The report as Markdown: ours (mean ± sd, %) and the paper's per row. */
export function tableMarkdown(rows: TableRow[], note: string): string {
  const lines = [
    "# Table 1, reproduced",
    "",
    note,
    "",
    "Dice in % on the test patients (mean ± sd over the finished seeds and folds); paper: Li & Rajpurkar, Table 1.",
    "",
    "| method | weights | cells | RV | Myo | LV | avg | paper RV | paper Myo | paper LV | paper avg | trainable | train time |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    const ours = KEYS.map((k) => (r.dice ? pct(r.dice[k]) : "-"));
    const paper = KEYS.map((k) => (r.paper ? r.paper[k].toFixed(2) : "-"));
    const params = r.trainable_params?.toLocaleString("en-US") ?? "-";
    const time = r.train_time_s ? `${(r.train_time_s.mean / 60).toFixed(1)} min` : "-";
    lines.push(
      `| ${r.method} | ${r.weights} | ${r.finished}/${r.planned} | ${ours.join(" | ")} | ${
        paper.join(" | ")
      } | ` +
        `${params} | ${time} |`,
    );
  }
  return lines.join("\n") + "\n";
}

const COLOURS = { RV: "#e34a33", Myo: "#31a354", LV: "#3182bd" } as const;

/**
 * A grouped bar chart of per-class Dice (ours, with sd whiskers) per method and weight set, as SVG. Written by
 * hand: it is a few rectangles, and every charting library on npm wants a DOM or a canvas we do not have.
 */
export function tableSvg(rows: TableRow[]): string {
  const bar = 14, gap = 24, left = 48, top = 30, height = 220;
  const groups = rows.filter((r) => r.dice);
  const width = left + groups.length * (3 * bar + gap) + 20;
  const y = (v: number) => top + height * (1 - Math.max(0, Math.min(1, v)));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${
      top + height + 70
    }" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="18" font-size="13">Test Dice per class (mean ± sd over seeds)</text>`,
  ];
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(
      `<line x1="${left}" x2="${width - 10}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y(t) + 4}" text-anchor="end">${t.toFixed(2)}</text>`,
    );
  }
  groups.forEach((r, gi) => {
    const x0 = left + 10 + gi * (3 * bar + gap);
    CLASS_NAMES.forEach((c, ci) => {
      const s = r.dice![c], x = x0 + ci * bar;
      parts.push(
        `<rect x="${x}" y="${y(s.mean)}" width="${bar - 2}" height="${y(0) - y(s.mean)}" fill="${
          COLOURS[c]
        }"/>`,
        `<line x1="${x + bar / 2 - 1}" x2="${x + bar / 2 - 1}" y1="${y(s.mean + s.sd)}" y2="${
          y(s.mean - s.sd)
        }" stroke="black"/>`,
      );
    });
    const cx = x0 + 1.5 * bar;
    parts.push(
      `<text x="${cx}" y="${y(0) + 14}" text-anchor="middle">${r.method}</text>`,
      `<text x="${cx}" y="${y(0) + 27}" text-anchor="middle">${r.weights}</text>`,
    );
  });
  CLASS_NAMES.forEach((c, i) => {
    parts.push(
      `<rect x="${left + i * 60}" y="${top + height + 45}" width="10" height="10" fill="${COLOURS[c]}"/>`,
      `<text x="${left + i * 60 + 14}" y="${top + height + 54}">${c}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

/** Writes table.json, table.md and table.svg into out (each atomically); returns their paths. */
export async function writeTable(
  out: string,
  cells: CellResult[],
  grid: Record<string, unknown>,
): Promise<{ json: string; md: string; svg: string; rows: TableRow[] }> {
  const rows = tableRows(cells);
  const json = join(out, "table.json"), md = join(out, "table.md"), svg = join(out, "table.svg");
  const finished = cells.filter((c) => c.status === "done").length;
  const note = `${finished} of ${cells.length} cells finished. Grid: ${JSON.stringify(grid)}.`;
  await writeJson(json, { created: new Date().toISOString(), grid, rows, cells });
  await writeOutputText(md, tableMarkdown(rows, note));
  await writeOutputText(svg, tableSvg(rows));
  return { json, md, svg, rows };
}
