import assert from "node:assert/strict";
import { derivedLimits } from "./train_run.ts";

Deno.test("derivedLimits: a 128 MiB binding limit cuts vit_b attention into 16 MiB chunks and batches into passes", () => {
  // vit_b at 1024: 64 x 64 tokens padded to 70 x 70 windows, widest activation 3072 floats per token:
  // 4900 * 3072 * 4 B = 57.4 MiB per image, so 2 images per 128 MiB pass.
  assert.equal(
    derivedLimits({ preset: "vit_b", encoderSize: null }, 2 ** 27, 4),
    "derived from the device limits: attention in chunks of <= 16 MiB of logits; the 1024 px encoder runs 2 of " +
      "a batch's 4 image(s) per pass",
  );
  // An H200-class limit (the adapter offers far more than our 16 MiB default chunk): the whole batch at once.
  assert.match(
    derivedLimits({ preset: "vit_b", encoderSize: null }, 2 ** 32, 4),
    /chunks of <= 16 MiB.*runs 4 of/,
  );
});
