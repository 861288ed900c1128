import assert from "node:assert/strict";
import { PAPER_RECIPE, tableEstimate } from "./table_estimate.ts";

Deno.test("tableEstimate: 25 steps and 75 validation batches an epoch, 120 epochs, 24 runs", () => {
  const e = tableEstimate(1, 0.5);
  assert.equal(e.stepsPerEpoch, 25);
  assert.equal(e.epochS, 25 * 1 + 75 * 0.5);
  assert.equal(e.cellS, 120 * 62.5 + 75 * 0.5);
  assert.equal(e.gridS, e.cellS * 24);
  assert.equal(e.cellH, 2.1);
  assert.equal(e.gridH, 50.3);
});

Deno.test("tableEstimate: the recipe's numbers change the figure; bad times are refused", () => {
  assert.equal(tableEstimate(1, 1, { ...PAPER_RECIPE, epochs: 1 }).cellS, 25 + 75 + 75);
  assert.throws(() => tableEstimate(0, 1), /positive/);
  assert.throws(() => tableEstimate(1, NaN), /positive/);
});
