/**
 * POST /api/runs/:id/predict through app.request: the label map on the input's grid and geometry (the same
 * voxels as `deno task predict`), the PNG and JSON variants, every refusal (413, 415, 422, 400, 503), a flat
 * tensor count, disposal on eviction, and a runs folder left untouched.
 */
import assert from "node:assert/strict";
import { tf } from "../engine/tf.ts";
import { encodeNifti, geometryFromAffine, readNiftiBytes } from "../io/nifti.ts";
import { testApp, tinyData, trainTinyRun } from "./test_support.ts";

const tmp = await Deno.makeTempDir({ prefix: "predict_test_" });
const runs = `${tmp}/runs`;
const data = await tinyData(`${tmp}/data`);
await trainTinyRun(data, `${runs}/tiny`);
const scanPath = `${data}/training/patient001/patient001_frame01.nii.gz`;
const scanGz = await Deno.readFile(scanPath);
const scan = await readNiftiBytes(scanGz, scanPath);
const scanRaw = await encodeNifti(new Float32Array(scan.data), scan.dims, scan.geometry) as Uint8Array<
  ArrayBuffer
>;
const BIN = { "Content-Type": "application/octet-stream" };

const post = (
  app: { request: (p: string, i: RequestInit) => Response | Promise<Response> },
  query = "",
  body: BodyInit = scanGz,
  headers: Record<string, string> = BIN,
) => app.request(`/api/runs/tiny/predict${query}`, { method: "POST", body, headers });

/** Every file under dir with its size and modification time. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await snapshot(p));
    else {
      const s = await Deno.stat(p);
      out.push(`${p} ${s.size} ${s.mtime?.getTime()}`);
    }
  }
  return out.sort();
}

/** The label map `deno task predict` writes for the scan. */
async function cliLabels(): Promise<Uint8Array> {
  const out = `${tmp}/cli_pred.nii`;
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../cli/predict.ts", import.meta.url).pathname,
      "--run",
      `${runs}/tiny`,
      "--input",
      scanPath,
      "--output",
      out,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(r.success, new TextDecoder().decode(r.stderr));
  return new Uint8Array((await readNiftiBytes(await Deno.readFile(out), out)).data);
}

Deno.test("predict: the label map has the input's grid and geometry and the CLI's voxels; gzip in, gzip out", async () => {
  const { app, close } = await testApp(runs);
  const before = await snapshot(runs);
  try {
    const res = await post(app);
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get("Content-Type"), "application/gzip");
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.deepEqual([bytes[0], bytes[1]], [0x1f, 0x8b]);
    const labels = await readNiftiBytes(bytes, "answer");
    assert.equal(labels.datatype, "uint8");
    assert.deepEqual(labels.dims, scan.dims);
    assert.deepEqual(labels.affine, scan.affine);
    assert.deepEqual(labels.geometry, scan.geometry);
    assert.deepEqual(new Uint8Array(labels.data), await cliLabels());
    const counts = [0, 0, 0, 0];
    for (const v of labels.data) counts[v]++;
    assert.equal(res.headers.get("X-Voxels"), counts.join(","));
    const ml = JSON.parse(res.headers.get("X-Volumes-Ml")!);
    const voxelMl = scan.pixdim[0] * scan.pixdim[1] * scan.pixdim[2] / 1000; // an axis-aligned phantom
    assert.ok(Math.abs(ml.LV - counts[3] * voxelMl) < 1e-3, `LV ${ml.LV} mL`);

    const raw = await post(app, "", scanRaw);
    assert.equal(raw.headers.get("Content-Type"), "application/octet-stream");
    const rawBytes = new Uint8Array(await raw.arrayBuffer());
    assert.notEqual(rawBytes[0], 0x1f);
    assert.deepEqual((await readNiftiBytes(rawBytes, "raw")).data, labels.data);
  } finally {
    await close();
  }
  assert.deepEqual(await snapshot(runs), before, "predicting wrote into the runs folder");
});

Deno.test("predict: format=json gives volumes in mL, format=png an overlay of the asked (or middle) slice", async () => {
  const { app, close } = await testApp(runs);
  try {
    const json = await (await post(app, "?format=json&weights=best")).json();
    assert.deepEqual(json.dims, scan.dims);
    assert.equal(json.slices, 7);
    assert.equal(json.weights, "best");
    assert.equal(json.voxels.reduce((a: number, b: number) => a + b, 0), 60 * 52 * 7);
    for (const [i, k] of ["RV", "Myo", "LV"].entries()) {
      assert.ok(Math.abs(json.volumes_ml[k] - json.voxels[i + 1] * json.voxel_ml) < 1e-3, k);
    }
    for (const [query, slice] of [["?format=png&slice=2", "2/7"], ["?format=png", "3/7"]]) {
      const png = await post(app, query);
      assert.equal(png.status, 200);
      assert.equal(png.headers.get("Content-Type"), "image/png");
      assert.equal(png.headers.get("X-Slice"), slice);
      const b = new Uint8Array(await png.arrayBuffer());
      assert.deepEqual([...b.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
      const view = new DataView(b.buffer, b.byteOffset);
      assert.deepEqual([view.getUint32(16), view.getUint32(20)], [60, 52], "IHDR width x height");
    }
  } finally {
    await close();
  }
});

Deno.test("predict: 415, 422, 413 and 400 answers name the problem", async () => {
  const { app, close } = await testApp(runs, { bodyLimitBytes: 64 << 10 });
  try {
    const random = crypto.getRandomValues(new Uint8Array(4096));
    const fourD = await encodeNifti(
      new Float32Array(8 * 8 * 3 * 2),
      [8, 8, 3, 2],
      geometryFromAffine([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], [8, 8, 3, 2]),
    ) as Uint8Array<ArrayBuffer>;
    const big = new Uint8Array(100 << 10);
    const chunked = () =>
      new ReadableStream({
        start(c) {
          for (let i = 0; i < 4; i++) c.enqueue(new Uint8Array(32 << 10));
          c.close();
        },
      });
    const cases: [string, Response, number, RegExp][] = [
      [
        "json body",
        await post(app, "", "{}", { "Content-Type": "application/json" }),
        415,
        /application\/json/,
      ],
      ["random bytes", await post(app, "", random), 422, /upload: sizeof_hdr/],
      ["empty", await post(app, "", new Uint8Array()), 422, /empty body/],
      ["truncated gzip", await post(app, "", scanGz.subarray(0, scanGz.length - 40)), 422, /upload/],
      ["4D", await post(app, "", fourD), 422, /4D series/],
      ["oversized", await post(app, "", big), 413, /limit of 65536 bytes/],
      ["oversized, chunked", await post(app, "", chunked()), 413, /limit/],
      ["bad format", await post(app, "?format=gif"), 400, /"format": "gif" is not one of nifti, png, json/],
      ["bad slice", await post(app, "?format=png&slice=-1"), 400, /"slice"/],
      ["slice past the end", await post(app, "?format=png&slice=7"), 422, /slices 0..6/],
      ["unknown query", await post(app, "?colour=red"), 400, /unknown option "colour"/],
    ];
    for (const [name, res, status, detail] of cases) {
      assert.equal(res.status, status, name);
      const body = await res.json();
      assert.equal(typeof body.error, "string", name);
      assert.match(body.detail, detail, name);
    }
  } finally {
    await close();
  }
});

Deno.test("predict: beyond the running and waiting places, 503 with Retry-After", async () => {
  const { app, close } = await testApp(runs, { maxPredictions: 1, predictionQueue: 0 });
  try {
    const [a, b] = await Promise.all([post(app, "?format=json"), post(app, "?format=json")]);
    assert.deepEqual([a.status, b.status].sort(), [200, 503]);
    const busy = a.status === 503 ? a : b;
    assert.match(busy.headers.get("Retry-After") ?? "", /^[1-9]\d*$/);
    assert.equal((await busy.json()).error, "busy");
    await (a.status === 200 ? a : b).body?.cancel();
  } finally {
    await close();
  }
});

Deno.test("predict: tensors stay flat across predictions; evicted models are disposed", async () => {
  const { app, models, close } = await testApp(runs, { models: 1 });
  const base = tf.memory().numTensors;
  try {
    await (await post(app, "?format=json")).arrayBuffer(); // warm-up: loads the final weights
    const loaded = tf.memory().numTensors;
    assert.ok(loaded > base);
    for (const q of ["", "?format=png&slice=1", "?format=json", ""]) {
      await (await post(app, q, q ? scanGz : scanRaw)).arrayBuffer();
      assert.equal(tf.memory().numTensors, loaded, `after ${q || "nifti"}`);
    }
    await (await post(app, "?format=json&weights=best")).arrayBuffer(); // evicts final (one model kept)
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(models.size, 1);
    assert.equal(tf.memory().numTensors, loaded, "the evicted model's tensors were freed");
  } finally {
    await close();
  }
  assert.equal(tf.memory().numTensors, base, "close() disposes every model");
});
