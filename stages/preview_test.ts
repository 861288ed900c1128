import assert from "node:assert/strict";
import { decode } from "fast-png";
import { encodePng } from "../io/png.ts";
import { CLASS_COLOURS, overlaySlice, previewGrid } from "./preview.ts";
import type { SliceItem } from "./volume.ts";
import { testSlice } from "./test_volume.ts";

function item(id: string, h: number, w: number): SliceItem {
  return testSlice(id, h, w, (i) => Math.floor(i / 3) % w, (i) => (i % w === 0 ? 3 : 0));
}

Deno.test("preview: overlay tints labelled pixels and windows the grey", () => {
  const it = item("a", 4, 10);
  const rgb = overlaySlice(it.image, it.label, 4, 10, 3);
  const px = (i: number) => Array.from(rgb.subarray(i * 3, i * 3 + 3));
  const lv = CLASS_COLOURS[2];
  assert.deepEqual(px(0), lv.map((c) => Math.round(0.45 * c))); // grey 0 blended with LV blue
  assert.deepEqual(px(9), [255, 255, 255]); // brightest unlabelled pixel
  assert.ok(px(5)[0] === px(5)[1] && px(5)[1] === px(5)[2], "unlabelled pixels stay grey");
});

Deno.test("preview: grid tiles slices and round-trips through PNG", () => {
  const items = [0, 1, 2, 3, 4].map((k) => item(`s${k}`, 6, 8));
  const g = previewGrid(items, 2);
  assert.deepEqual([g.width, g.height], [2 * 8 + 2, 3 * 6 + 2 * 2]);
  const png = encodePng(g.pixels, g.width, g.height, 3);
  assert.deepEqual(Array.from(png.subarray(1, 4)), [80, 78, 71]); // "PNG"
  const back = decode(png);
  assert.deepEqual([back.width, back.height, back.channels], [g.width, g.height, 3]);
  assert.deepEqual(Array.from(back.data), Array.from(g.pixels));
  assert.throws(() => encodePng(g.pixels, 3, 3), RangeError);
});
