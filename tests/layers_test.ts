/**
 * The house has floors (docs/architecture.md): errors <- io <- engine, fixtures <- model <- stages <- pipeline
 * <- cli, server, bench <- mod.ts. A module imports only from floors below its own or from its own folder, and
 * no import chain closes a loop. Tests (`*_test.ts`, tests/) sit above everything: nothing imports them.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;

/** Floor of each top-level folder (or root file); equal floors in different folders may not import each other. */
const FLOORS: Record<string, number> = {
  "errors.ts": 0,
  "errors_test.ts": 0,
  io: 1,
  engine: 2,
  fixtures: 2,
  model: 3,
  stages: 4,
  pipeline: 5,
  cli: 6,
  server: 6,
  bench: 6,
  "mod.ts": 7,
  tests: 8,
};

const isTest = (file: string) => file.endsWith("_test.ts") || file.startsWith("tests/");

async function sources(dir = ROOT): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".") || e.name === "node_modules" || e.name === "runs" || e.name === "results") {
      continue;
    }
    const path = join(dir, e.name);
    if (e.isDirectory) out.push(...await sources(path));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(relative(ROOT, path));
  }
  return out.sort();
}

/** Relative imports of a file (static, re-exports and dynamic), resolved to repository paths. */
function importsOf(file: string, text: string): string[] {
  const re =
    /(?:^|\n)\s*(?:import|export)\b[^"';]*?from\s*["'](\.[^"']+)["']|\bimport\s*\(\s*["'](\.[^"']+)["']\s*\)|(?:^|\n)\s*import\s*["'](\.[^"']+)["']/g;
  const out: string[] = [];
  for (const m of text.matchAll(re)) {
    const spec = m[1] ?? m[2] ?? m[3];
    out.push(relative(ROOT, join(ROOT, file, "..", spec)));
  }
  return out;
}

const folderOf = (file: string) => (file.includes("/") ? file.slice(0, file.indexOf("/")) : file);

const files = await sources();
const graph = new Map<string, string[]>();
for (const f of files) graph.set(f, importsOf(f, await Deno.readTextFile(join(ROOT, f))));

Deno.test("layers: every module belongs to a floor", () => {
  const unplaced = files.filter((f) => FLOORS[folderOf(f)] === undefined);
  assert.deepEqual(unplaced, [], `files outside every floor: ${unplaced.join(", ")}`);
});

/** Imports of non-test modules that go up a floor, sideways to another folder of the same floor, or into a test. */
function upwardImports(graph: Map<string, string[]>): string[] {
  const up: string[] = [];
  for (const [file, deps] of graph) {
    if (isTest(file)) continue;
    const from = folderOf(file);
    for (const dep of deps) {
      const to = folderOf(dep);
      if (to !== from && !(FLOORS[to] < FLOORS[from])) up.push(`${file} -> ${dep}`);
      else if (isTest(dep)) up.push(`${file} -> ${dep} (a test)`);
    }
  }
  return up;
}

/** Every import chain that comes back to where it started. */
function importLoops(graph: Map<string, string[]>): string[] {
  const state = new Map<string, "open" | "done">();
  const loops: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === "done") return;
    if (state.get(f) === "open") {
      loops.push([...path.slice(path.indexOf(f)), f].join(" -> "));
      return;
    }
    state.set(f, "open");
    for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, "done");
  };
  for (const f of graph.keys()) visit(f, []);
  return loops;
}

Deno.test("layers: imports go down the floors only (or stay in their own folder)", () => {
  const up = upwardImports(graph);
  assert.deepEqual(up, [], `imports that go up or sideways:\n  ${up.join("\n  ")}`);
});

Deno.test("layers: no import chain closes a loop", () => {
  const loops = importLoops(graph);
  assert.deepEqual(loops, [], `import loops:\n  ${loops.join("\n  ")}`);
});

Deno.test("layers: the checker catches a planted upward import, sideways import and loop", () => {
  assert.deepEqual(
    importsOf("model/x.ts", 'import { a } from "../pipeline/y.ts";\nexport * from "./z.ts";'),
    [
      "pipeline/y.ts",
      "model/z.ts",
    ],
  );
  assert.deepEqual(importsOf("io/a.ts", 'const m = await import("../cli/b.ts");\nimport "./c.ts";'), [
    "cli/b.ts",
    "io/c.ts",
  ]);
  const planted = new Map([
    ["model/x.ts", ["pipeline/y.ts", "model/z.ts", "engine/tf.ts"]],
    ["cli/a.ts", ["bench/b.ts", "pipeline/y.ts"]],
    ["model/z.ts", ["model/x.ts"]],
    ["model/w_test.ts", ["cli/a.ts"]],
  ]);
  assert.deepEqual(upwardImports(planted), ["model/x.ts -> pipeline/y.ts", "cli/a.ts -> bench/b.ts"]);
  assert.deepEqual(importLoops(planted), ["model/x.ts -> model/z.ts -> model/x.ts"]);
  assert.ok(graph.size > 100, `read ${graph.size} modules`);
});
