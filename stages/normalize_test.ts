import assert from "node:assert/strict";
import { collect, pipe } from "./pipe.ts";
import {
  channelsAreCopies,
  expandChannels,
  intensityStats,
  normalize,
  percentile,
  SAM_PIXEL_MEAN,
  SAM_PIXEL_STD,
  toOriginalGrid,
  toOriginalVolume,
  volumeSlices,
} from "./normalize.ts";
import { resizeBilinear, resizeNearest } from "./resize.ts";
import { Rng } from "../engine/rng.ts";
import { testVolume } from "./test_volume.ts";

const close = (a: number, b: number, tol = 1e-4) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

Deno.test("normalize: z-score per volume gives mean 0, std 1 and 3 equal channels at native size", () => {
  const vol = testVolume("patient001_frame01", [12, 10, 4]);
  const slices = volumeSlices(vol, { imageSize: 12, normalization: "zscore" });
  assert.equal(slices.length, 4);
  assert.deepEqual(slices.map((s) => s.id), [0, 1, 2, 3].map((z) => `patient001_frame01_z0${z}`));
  // 12 x 10 -> 12 x 12 resizes rows only; check stats on a square volume instead.
  const sq = testVolume("patient002_frame01", [10, 10, 3], 1);
  const sqSlices = volumeSlices(sq, { imageSize: 10, normalization: "zscore" });
  const grey = new Float32Array(sqSlices.flatMap((s) => Array.from(s.image.filter((_, i) => i % 3 === 0))));
  const st = intensityStats(grey);
  assert.ok(close(st.mean, 0) && close(st.std, 1), `mean ${st.mean} std ${st.std}`);
  for (const s of sqSlices) {
    for (let i = 0; i < s.height * s.width; i++) {
      assert.equal(s.image[3 * i], s.image[3 * i + 1]);
      assert.equal(s.image[3 * i], s.image[3 * i + 2]);
    }
    assert.deepEqual(
      s.label,
      sq.label.subarray(s.z * 100, (s.z + 1) * 100),
      "labels unchanged at native size",
    );
  }
});

Deno.test("normalize: minmax spans [0, 1]; sam maps to 0..255 then SAM mean/std per channel", () => {
  const vol = testVolume("p_frame01", [8, 8, 2], 2);
  const st = intensityStats(vol.image);
  const mm = volumeSlices(vol, { imageSize: 8, normalization: "minmax" });
  const all = mm.flatMap((s) => Array.from(s.image));
  assert.ok(close(Math.min(...all), 0) && close(Math.max(...all), 1));
  const sam = volumeSlices(vol, { imageSize: 8, normalization: "sam" });
  const v = vol.image[5]; // z 0, y 0, x 5
  const v255 = ((v - st.min) / (st.max - st.min)) * 255;
  for (let c = 0; c < 3; c++) {
    assert.ok(close(sam[0].image[5 * 3 + c], (v255 - SAM_PIXEL_MEAN[c]) / SAM_PIXEL_STD[c], 1e-4));
  }
});

Deno.test("normalize: resize to the model grid keeps label values and maps back exactly when upsampling", () => {
  const vol = testVolume("patient003_frame12", [13, 9, 2], 3);
  const slices = volumeSlices(vol, { imageSize: 16, normalization: "zscore" });
  const s = slices[1];
  assert.deepEqual([s.height, s.width, s.channels, s.originalHeight, s.originalWidth], [16, 16, 3, 9, 13]);
  assert.equal(s.image.length, 16 * 16 * 3);
  assert.ok(s.label.every((k) => k <= 3));
  assert.ok(s.image.every(Number.isFinite));
  const back = toOriginalGrid(s.label, s);
  assert.deepEqual(back, vol.label.subarray(13 * 9, 2 * 13 * 9));
  const volBack = toOriginalVolume(slices.map((x) => x.label), slices);
  assert.deepEqual(volBack, vol.label);
  assert.throws(() => toOriginalGrid(new Uint8Array(5), s), RangeError);
});

Deno.test("resize: nearest up-then-down is the identity for any upsampling; bilinear keeps constants", () => {
  const rng = new Rng(4);
  for (const [h, w, s] of [[5, 7, 8], [9, 13, 16], [30, 17, 31], [4, 4, 224]]) {
    const src = Uint8Array.from({ length: h * w }, () => rng.int(4));
    const up = resizeNearest(src, h, w, s, s);
    assert.deepEqual(resizeNearest(up, s, s, h, w), src, `${h}x${w} via ${s}`);
  }
  const flat = resizeBilinear(new Float32Array(6 * 4 * 2).fill(2.5), 6, 4, 11, 3, 2);
  assert.ok(flat.every((v) => close(v, 2.5)));
  // A linear ramp stays linear in the interior (half-pixel centres).
  const ramp = Float32Array.from({ length: 8 }, (_, i) => i); // [1, 8]
  const up = resizeBilinear(ramp, 1, 8, 1, 16);
  assert.ok(close(up[5] - up[4], 0.5) && close(up[0], 0) && close(up[15], 7));
});

Deno.test("normalize: the stage yields every volume's slices in order", async () => {
  const vols = [testVolume("a_frame01", [6, 6, 2]), testVolume("b_frame01", [6, 6, 3])];
  const out = await collect(pipe(vols, normalize({ imageSize: 8, normalization: "zscore" })));
  assert.deepEqual(out.map((s) => s.id), [
    "a_frame01_z00",
    "a_frame01_z01",
    "b_frame01_z00",
    "b_frame01_z01",
    "b_frame01_z02",
  ]);
});

Deno.test("normalize: one-channel slices expand to equal copies; sam keeps its own channels", () => {
  const vol = testVolume("e_frame01", [6, 6, 1]);
  const [one] = volumeSlices(vol, { imageSize: 6, normalization: "zscore", channels: 1 });
  const [three] = volumeSlices(vol, { imageSize: 6, normalization: "zscore" });
  assert.deepEqual(expandChannels(one, 3).image, three.image);
  assert.equal(expandChannels(three, 3), three);
  assert.ok(channelsAreCopies("zscore") && channelsAreCopies("minmax") && !channelsAreCopies("sam"));
});

Deno.test("normalize: medsam clips each slice to its 0.5/99.5 percentiles and maps it to [0, 1]", () => {
  const vol = testVolume("m_frame01", [20, 20, 2], 4);
  const plane = 400;
  vol.image.fill(5, 0, plane); // slice 0 constant -> 0
  for (let i = 0; i < plane; i++) vol.image[plane + i] = i; // slice 1: a ramp ...
  vol.image[plane + 7] = 1e6; // ... with one outlier the clipping must remove
  const [flat, ramp] = volumeSlices(vol, { imageSize: 20, normalization: "medsam", channels: 1 });
  assert.ok(flat.image.every((v) => v === 0));
  const lo = percentile(vol.image.subarray(plane), 0.005), hi = percentile(vol.image.subarray(plane), 0.995);
  assert.ok(hi < 1e6, `99.5th percentile ${hi} ignores the outlier`);
  assert.ok(Math.abs(Math.min(...ramp.image) - 0) < 1e-6 && Math.abs(Math.max(...ramp.image) - 1) < 1e-6);
  assert.ok(Math.abs(ramp.image[7] - 1) < 1e-6, "the outlier is clipped to the top");
  assert.ok(Math.abs(ramp.image[200] - (200 - lo) / (hi - lo)) < 1e-5);
  assert.equal(percentile(Float32Array.from([1, 2, 3, 4]), 0.5), 2.5); // numpy's linear interpolation
});
