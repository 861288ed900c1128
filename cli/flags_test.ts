import assert from "node:assert/strict";
import { numberFlag, parseFlags } from "./flags.ts";
import { UserError } from "./user_error.ts";

Deno.test("parseFlags: unknown flags and bad numbers are user errors", () => {
  const { values } = parseFlags(["--epochs", "3"], { epochs: { type: "string" } });
  assert.equal(numberFlag("epochs", values.epochs, { integer: true, min: 1 }), 3);
  assert.throws(() => parseFlags(["--nope"], { epochs: { type: "string" } }), UserError);
  assert.throws(() => numberFlag("epochs", "abc", { integer: true }), /--epochs: "abc" is not an integer/);
  assert.throws(() => numberFlag("lr", "-1", { min: 0 }), /--lr: "-1" is not a number >= 0/);
  assert.equal(numberFlag("lr", undefined), undefined);
});
