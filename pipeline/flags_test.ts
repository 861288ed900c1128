import assert from "node:assert/strict";
import { parseCommand, parseFlags, requireFlags } from "./flags.ts";
import { flag, int, num, oneOf, path } from "./option_schema.ts";
import { ConfigError, UserError } from "../errors.ts";

const SHAPE = {
  epochs: int(1),
  lr: num({ min: 0 }),
  batchSize: int(1, 64),
  split: oneOf(["test", "val"]),
  out: path.optional(),
  dryRun: flag,
};

Deno.test("parseCommand: flags derived from the shape, values checked by it, defaults under them", () => {
  const c = parseCommand(["--epochs", "3", "--batch-size", "8", "--dry-run"], SHAPE, {
    defaults: { split: "test", lr: 0.1 },
  });
  assert.deepEqual(c.options, { epochs: 3, batchSize: 8, dryRun: true, split: "test", lr: 0.1 });
  assert.deepEqual(c.given, { epochs: "3", "batch-size": "8", "dry-run": true });
  assert.equal(c.help, false);
  assert.equal(parseCommand(["-h"], SHAPE).help, true);
});

Deno.test("parseCommand: unknown flags, missing values and bad numbers are user errors naming the flag", () => {
  assert.throws(() => parseCommand(["--nope"], SHAPE), UserError);
  assert.throws(() => parseCommand(["--epochs"], SHAPE), UserError);
  assert.throws(() => parseFlags(["x"], {}), UserError);
  const cases: [string[], RegExp][] = [
    [["--epochs", "abc"], /--epochs: "abc" is not an integer >= 1/],
    [["--epochs", "2.5"], /--epochs: "2.5" is not an integer >= 1/],
    [["--batch-size", "65"], /--batch-size: "65" is not an integer in 1..64/],
    [["--lr=-1"], /--lr: "-1" is not a number >= 0/],
    [["--lr="], /--lr: "" is not a number >= 0/],
    [["--split", "train"], /--split: "train" is not one of test, val/],
    [["--out", ""], /--out: "" is not a path/],
  ];
  for (const [args, re] of cases) {
    assert.throws(
      () => parseCommand(args, SHAPE),
      (e: Error) => e instanceof ConfigError && re.test(e.message),
    );
  }
});

Deno.test("requireFlags names every missing flag", () => {
  assert.throws(
    () => requireFlags({ epochs: 1 }, ["epochs", "batchSize", "out"], "usage"),
    /missing --batch-size, --out\nusage/,
  );
  requireFlags({ epochs: 1 }, ["epochs"], "usage");
});
