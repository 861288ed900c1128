/**
 * Training through the API: requests checked by the train command's schema (422, 415), one run at a time
 * (409), a tiny run streamed live to `done` while the server keeps answering, and a cancel that keeps the
 * last complete checkpoint, from which `train --resume` finishes the run.
 */
import assert from "node:assert/strict";
import { type SseMessage, sseMessages, testApp, TINY_RUN, tinyData } from "./test_support.ts";

const tmp = await Deno.makeTempDir({ prefix: "trainer_test_" });
const data = await tinyData(`${tmp}/data`);
const JSON_TYPE = { "Content-Type": "application/json" };

const start = (
  app: { request: (p: string, i: RequestInit) => Response | Promise<Response> },
  body: unknown,
) => app.request("/api/runs", { method: "POST", headers: JSON_TYPE, body: JSON.stringify(body) });

Deno.test("POST /api/runs: bad requests are refused with the option schema's words", async () => {
  const runs = `${tmp}/runs_bad`;
  const { app, trainer, close } = await testApp(runs);
  try {
    const cases: [RequestInit, number, RegExp][] = [
      [{ body: '{"epochs": 0}', headers: JSON_TYPE }, 422, /request: "epochs": 0 is not an integer >= 1/],
      [
        { body: '{"batch_size": 3}', headers: JSON_TYPE },
        422,
        /unknown option "batch_size" \(did you mean "batch-size"\?\)/,
      ],
      [{ body: '{"method": "unet"}', headers: JSON_TYPE }, 422, /"method": "unet" is not one of loramednet/],
      [
        { body: '{"out": "/tmp/x"}', headers: JSON_TYPE },
        422,
        /"out": runs are created in the server's runs folder/,
      ],
      [
        { body: JSON.stringify({ data: `${tmp}/nowhere`, preset: "tiny" }), headers: JSON_TYPE },
        422,
        /nowhere: no such folder/,
      ],
      [{ body: '{"weights": "/no/such.pth"}', headers: JSON_TYPE }, 422, /\/no\/such\.pth: no such file/],
      [{ body: "{epochs: 1", headers: JSON_TYPE }, 422, /not valid JSON/],
      [{ body: "[1]", headers: JSON_TYPE }, 422, /a JSON object of options/],
      [{ body: "{}", headers: { "Content-Type": "text/plain" } }, 415, /application\/json/],
      [{ body: "{}" }, 415, /application\/json/],
    ];
    for (const [init, status, detail] of cases) {
      const res = await app.request("/api/runs", { method: "POST", ...init });
      assert.equal(res.status, status, String(init.body));
      assert.match((await res.json()).detail, detail);
    }
    assert.equal(trainer.training, undefined);
    assert.equal(await Deno.stat(runs).then(() => true, () => false), false, "nothing was created");
    const cancel = await app.request("/api/runs/nope/cancel", { method: "POST" });
    assert.equal(cancel.status, 404);
  } finally {
    await close();
  }
});

Deno.test("POST /api/runs: a tiny run trains in a subprocess, streams progress to done, one at a time", async () => {
  const runs = `${tmp}/runs_ok`;
  await Deno.mkdir(runs);
  const { app, close } = await testApp(runs);
  try {
    const res = await start(app, { ...TINY_RUN, data, epochs: 2 });
    assert.equal(res.status, 202);
    const run = await res.json();
    assert.match(run.id, /^\d{4}-\d\d-\d\dT[\d-]+-loramednet-[0-9a-f]{4}$/);
    assert.equal(res.headers.get("Location"), `/api/runs/${run.id}`);
    assert.equal(run.events, `/api/runs/${run.id}/events`);

    const again = await start(app, { ...TINY_RUN, data });
    assert.equal(again.status, 409);
    assert.match((await again.json()).detail, new RegExp(`run ${run.id} is training`));
    const listed = await (await app.request("/api/runs")).json();
    assert.deepEqual(listed.map((r: { id: string; status: string }) => [r.id, r.status]), [[
      run.id,
      "training",
    ]]);

    const events: SseMessage[] = [];
    let healthWhileTraining = 0;
    for await (const m of sseMessages((await app.request(run.events)).body!)) {
      events.push(m);
      if ((await app.request("/api/health")).status === 200) healthWhileTraining++;
    }
    const names = events.map((m) => m.event);
    assert.equal(names.filter((n) => n === "progress").length, 6, names.join());
    assert.equal(names.filter((n) => n === "validation").length, 2);
    assert.equal(names.at(-1), "done");
    assert.deepEqual(events.map((m) => Number(m.id)), events.map((_, i) => i + 1));
    const p = JSON.parse(events[0].data);
    assert.deepEqual([p.epoch, p.epochs, p.step, p.steps, p.global_step], [1, 2, 1, 3, 1]);
    assert.ok(p.loss > 0 && p.eta_s >= 0);
    const done = JSON.parse(events.at(-1)!.data);
    assert.equal(done.status, "done");
    assert.equal(done.epoch, 2);
    for (const k of ["RV", "Myo", "LV", "avg"]) assert.ok(done.test[k] >= 0 && done.test[k] <= 1);
    assert.ok(healthWhileTraining >= 8, "the server kept answering");

    const after = await (await app.request(`/api/runs/${run.id}`)).json();
    assert.equal(after.status, "done");
    assert.deepEqual(after.test, done.test);
    assert.equal((await app.request(`/api/runs/${run.id}/cancel`, { method: "POST" })).status, 409);
    const pred = await app.request(`/api/runs/${run.id}/predict?format=json`, {
      method: "POST",
      body: await Deno.readFile(`${data}/training/patient002/patient002_frame01.nii.gz`),
    });
    assert.equal(pred.status, 200);
  } finally {
    await close();
  }
});

Deno.test("cancel: the run stops after its current step, keeps its last checkpoint, and resumes", async () => {
  const runs = `${tmp}/runs_cancel`;
  const { app, close } = await testApp(runs);
  try {
    const run = await (await start(app, { ...TINY_RUN, data, epochs: 200 })).json();
    const events: SseMessage[] = [];
    let cancelled = false;
    for await (const m of sseMessages((await app.request(run.events)).body!)) {
      events.push(m);
      if (!cancelled && m.event === "validation") {
        // The epoch's checkpoint follows its validation record; give it a moment to land.
        while (!(await Deno.stat(`${runs}/${run.id}/state.json`).then(() => true, () => false))) {
          await new Promise((r) => setTimeout(r, 50));
        }
        const res = await app.request(`/api/runs/${run.id}/cancel`, { method: "POST" });
        assert.equal(res.status, 202);
        cancelled = true;
      }
    }
    const done = JSON.parse(events.at(-1)!.data);
    assert.equal(events.at(-1)!.event, "done");
    assert.equal(done.status, "cancelled");
    assert.ok(done.epoch >= 1 && done.epoch < 200, `stopped after epoch ${done.epoch}`);
    const summary = await (await app.request(`/api/runs/${run.id}`)).json();
    assert.equal(summary.status, "cancelled");
    assert.equal(summary.resumable, true);
    assert.equal(summary.epoch, done.epoch);

    const resumed = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../cli/train.ts", import.meta.url).pathname,
        "--out",
        `${runs}/${run.id}`,
        "--resume",
        "--epochs",
        String(done.epoch + 1),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(resumed.success, new TextDecoder().decode(resumed.stderr));
    const state = JSON.parse(await Deno.readTextFile(`${runs}/${run.id}/state.json`));
    assert.equal(state.epoch, done.epoch + 1);
  } finally {
    await close();
  }
});
