/**
 * Route tests through app.request: the token gate, the page and its assets, the run list and run details
 * read from a trained run's files, run ids that try to leave the runs folder, and the error shapes.
 */
import assert from "node:assert/strict";
import { testApp, tinyData, trainTinyRun } from "./test_support.ts";

const tmp = await Deno.makeTempDir({ prefix: "app_test_" });
const runs = `${tmp}/runs`;
const data = await tinyData(`${tmp}/data`);
await trainTinyRun(data, `${runs}/tiny`);
// Strays that are not runs: a folder without config.json, a file, and a link to a run outside the folder.
await Deno.mkdir(`${runs}/stray`);
await Deno.writeTextFile(`${runs}/notes.txt`, "x");
await trainTinyRun(data, `${tmp}/outside`, { epochs: 1 });
await Deno.symlink(`${tmp}/outside`, `${runs}/linked`);

const TOKEN = "s3cret-token";
const auth = { Authorization: `Bearer ${TOKEN}` };

Deno.test("token: every /api route but health needs the bearer token; the page does not", async () => {
  const { app, close } = await testApp(runs, { token: TOKEN });
  try {
    const health = await app.request("/api/health");
    assert.equal(health.status, 200);
    const h = await health.json();
    assert.equal(h.ok, true);
    assert.equal(h.backend, "wasm");
    assert.equal(h.auth, "bearer");
    for (
      const [path, init] of [
        ["/api/runs", {}],
        ["/api/runs/tiny", {}],
        ["/api/runs/tiny/events", {}],
        ["/api/runs/tiny/predict", { method: "POST", body: "x" }],
        ["/api/runs", { method: "POST", body: "{}", headers: { "Content-Type": "application/json" } }],
        ["/api/nowhere", {}],
      ] as [string, RequestInit][]
    ) {
      for (
        const header of [
          undefined,
          "Bearer wrong",
          "Bearer s3cret-tokeN",
          "Basic abc",
          "Bearer !!!",
          "Bearer",
        ]
      ) {
        const headers = { ...(init.headers ?? {}), ...(header ? { Authorization: header } : {}) };
        const res = await app.request(path, { ...init, headers });
        assert.equal(res.status, 401, `${path} with ${header}`);
        const body = await res.json();
        assert.equal(body.error, "unauthorized");
        assert.match(res.headers.get("WWW-Authenticate") ?? "", /^Bearer/);
      }
    }
    assert.equal((await app.request("/api/runs", { headers: auth })).status, 200);
    const page = await app.request("/");
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script type="module" src="\/page.js">/);
    assert.match(page.headers.get("Content-Security-Policy") ?? "", /default-src 'self'/);
  } finally {
    await close();
  }
});

Deno.test("page assets come from this server, read from the npm packages", async () => {
  const { app, close } = await testApp(runs);
  try {
    for (
      const [path, type, text] of [
        ["/page.js", "text/javascript", /from "\/curves.js"/],
        ["/curves.js", "text/javascript", /from "\/vendor\/uplot.js"/],
        ["/vendor/uplot.js", "text/javascript", /export \{ uPlot as default \}|export default uPlot/],
        ["/vendor/uplot.css", "text/css", /\.uplot/],
        ["/vendor/fetch-event-source/index.js", "text/javascript", /from '\.\/fetch'/],
        ["/vendor/fetch-event-source/fetch", "text/javascript", /from '\.\/parse'/],
        ["/vendor/fetch-event-source/parse", "text/javascript", /getLines/],
      ] as const
    ) {
      const res = await app.request(path);
      assert.equal(res.status, 200, path);
      assert.ok(res.headers.get("Content-Type")!.startsWith(type), path);
      assert.match(await res.text(), text, path);
    }
    const html = await (await app.request("/")).text();
    for (const m of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
      assert.ok(m[1].startsWith("/") || m[1].startsWith("data:"), `${m[1]} would be fetched from elsewhere`);
    }
    assert.equal((await app.request("/vendor/../deno.json")).status, 404);
    assert.equal((await app.request("/vendor/uplot.js.map")).status, 404);
  } finally {
    await close();
  }
});

Deno.test("runs: the list and one run, read from the run's files", async () => {
  const { app, close } = await testApp(runs);
  try {
    const list = await (await app.request("/api/runs")).json();
    assert.deepEqual(list.map((r: { id: string }) => r.id), ["tiny"], "strays and links are not runs");
    const run = await (await app.request("/api/runs/tiny")).json();
    assert.deepEqual(run, list[0]);
    assert.equal(run.status, "done");
    assert.equal(run.method, "loramednet");
    assert.equal(run.preset, "tiny");
    assert.equal(run.epochs, 2);
    assert.equal(run.epoch, 2);
    assert.equal(run.global_step, 6);
    assert.deepEqual(run.last_step, { ...run.last_step, epoch: 2, step: 3, steps: 3 });
    assert.deepEqual(run.weights, ["final", "best"]);
    assert.equal(run.resumable, false);
    for (const k of ["RV", "Myo", "LV", "avg"]) {
      assert.ok(run.test[k] >= 0 && run.test[k] <= 1, k);
      assert.ok(run.val_dice[k] >= 0 && run.val_dice[k] <= 1, k);
    }
    const metrics = JSON.parse(await Deno.readTextFile(`${runs}/tiny/metrics.json`));
    assert.deepEqual(run.test, metrics.test.dice);
  } finally {
    await close();
  }
});

Deno.test("run ids: traversal, links and strays answer 404 JSON without reaching a file", async () => {
  const { app, close } = await testApp(runs);
  try {
    for (
      const path of [
        "/api/runs/stray",
        "/api/runs/linked",
        "/api/runs/notes.txt",
        "/api/runs/nope",
        "/api/runs/..%2F..%2Fetc",
        "/api/runs/%2E%2E",
        "/api/runs/.hidden",
        "/api/runs/..%2Foutside/events",
        "/api/runs/linked/events",
        "/api/runs/..%5Coutside",
      ]
    ) {
      const res = await app.request(path);
      assert.equal(res.status, 404, path);
      const body = await res.json();
      assert.deepEqual(Object.keys(body).sort(), ["detail", "error"], path);
    }
    const res = await app.request("/api/runs/..%2Foutside/predict", {
      method: "POST",
      body: await Deno.readFile(`${data}/training/patient001/patient001_frame01.nii.gz`),
    });
    assert.equal(res.status, 404);
  } finally {
    await close();
  }
});

Deno.test("errors: a bug answers 500 with a request id and no stack; the log has the stack", async () => {
  const lines: string[] = [];
  const { app, models, close } = await testApp(runs, { log: (l) => lines.push(l) });
  models.acquire = () => Promise.reject(new TypeError("a bug deep inside"));
  try {
    const res = await app.request("/api/runs/tiny/predict", {
      method: "POST",
      body: new Uint8Array([1, 2, 3]),
    });
    assert.equal(res.status, 500);
    const body = await res.json();
    assert.equal(body.error, "internal error");
    assert.equal(body.request_id, res.headers.get("X-Request-Id"));
    assert.ok(!JSON.stringify(body).includes("a bug deep inside"), "no internals in the answer");
    assert.ok(!JSON.stringify(body).includes(".ts:"), "no stack in the answer");
    assert.ok(lines.some((l) => l.includes(body.request_id) && l.includes("TypeError: a bug deep inside")));
    const unknown = await app.request("/api/nothing/here");
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).error, "not found");
  } finally {
    await close();
  }
});
