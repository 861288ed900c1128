import assert from "node:assert/strict";
import { printable, quoted } from "./errors.ts";

Deno.test("quoted/printable: a crafted name cannot break a one-line message", () => {
  assert.equal(quoted("a\nb"), '"a\\nb"');
  assert.equal(quoted("x".repeat(100)), JSON.stringify("x".repeat(77) + "..."));
  assert.equal(printable("image_encoder.pos_embed"), "image_encoder.pos_embed");
  assert.equal(printable("os\nsystem"), '"os\\nsystem"');
  assert.equal(printable("a\u2028b"), '"a\\u2028b"');
  for (const s of ["a\rb", "\x1b[2J", "z".repeat(200)]) {
    const p = printable(s);
    assert.ok(!p.includes("\r") && !p.includes("\x1b") && p.length <= 82, p);
  }
});
