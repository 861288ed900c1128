/**
 * The event stream of a run: log records as progress and validation events with line-number ids, a replay
 * of a finished run ending in `done`, resumption from Last-Event-ID, 204 for a client that has everything,
 * and a live log followed as it grows.
 */
import assert from "node:assert/strict";
import { eventOf } from "./run_events.ts";
import { type SseMessage, sseMessages, testApp } from "./test_support.ts";

const DICE = { RV: 0.5, Myo: 0.6, LV: 0.7, avg: 0.6 };
const step = (epoch: number, step: number, global_step: number) => ({
  type: "step",
  epoch,
  step,
  steps: 2,
  global_step,
  loss: 1 / global_step,
  lr: 0.001,
  elapsed_s: global_step * 2,
});
const epochRecord = (epoch: number) => ({
  type: "epoch",
  epoch,
  loss: 0.4,
  lr: 0.001,
  val_dice: DICE,
  best: true,
});
const LOG = [step(1, 1, 1), step(1, 2, 2), epochRecord(1), step(2, 1, 3), step(2, 2, 4), epochRecord(2)];

async function fakeRun(runs: string, id: string, log: object[], finished: boolean) {
  const dir = `${runs}/${id}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({ options: { epochs: 2 }, method: "loramednet" }),
  );
  await Deno.writeTextFile(`${dir}/log.jsonl`, log.map((r) => JSON.stringify(r) + "\n").join(""));
  if (finished) await finish(dir);
  return dir;
}

async function finish(dir: string) {
  await Deno.writeTextFile(`${dir}/state.json`, JSON.stringify({ epoch: 2, step: 4, elapsedS: 9 }));
  await Deno.writeTextFile(`${dir}/metrics.json`, JSON.stringify({ test: { dice: DICE } }));
}

async function collect(res: Response): Promise<SseMessage[]> {
  const out: SseMessage[] = [];
  for await (const m of sseMessages(res.body!)) out.push(m);
  return out;
}

Deno.test("eventOf: step records become progress (with an ETA), epoch records validation", () => {
  const p = eventOf(step(1, 1, 1), 2)!;
  assert.equal(p.event, "progress");
  // 3 steps left at 2 s per step
  assert.deepEqual(p.data, {
    epoch: 1,
    epochs: 2,
    step: 1,
    steps: 2,
    global_step: 1,
    loss: 1,
    lr: 0.001,
    elapsed_s: 2,
    eta_s: 6,
  });
  assert.deepEqual(eventOf(epochRecord(1), 2), {
    event: "validation",
    data: { epoch: 1, dice: DICE, best: true, loss: 0.4, lr: 0.001 },
  });
  const { steps: _, ...legacy } = step(2, 1, 3);
  assert.equal(eventOf(legacy, 2, 2)!.data.eta_s, 2 * 1);
  assert.equal(eventOf(legacy, 2)!.data.eta_s, null, "no ETA before an epoch has shown its length");
  assert.equal(eventOf({ type: "note", epoch: 1 }, 2), null);
});

Deno.test("events: a finished run replays its log, then done (id = lines + 1), then closes", async () => {
  const runs = await Deno.makeTempDir({ prefix: "events_" });
  await fakeRun(runs, "r", LOG, true);
  const { app, close } = await testApp(runs);
  try {
    const res = await app.request("/api/runs/r/events");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("Content-Type"), "text/event-stream");
    const all = await collect(res);
    assert.deepEqual(all.map((m) => [m.event, m.id]), [
      ["progress", "1"],
      ["progress", "2"],
      ["validation", "3"],
      ["progress", "4"],
      ["progress", "5"],
      ["validation", "6"],
      ["done", "7"],
    ]);
    assert.deepEqual(JSON.parse(all[6].data), { status: "done", epoch: 2, elapsed_s: 9, test: DICE });
    const resumed = await collect(
      await app.request("/api/runs/r/events", { headers: { "Last-Event-ID": "5" } }),
    );
    assert.deepEqual(resumed.map((m) => m.id), ["6", "7"]);
    const complete = await app.request("/api/runs/r/events", { headers: { "Last-Event-ID": "7" } });
    assert.equal(complete.status, 204, "a client with every event is told not to reconnect");
  } finally {
    await close();
  }
});

Deno.test("events: a live log is followed as it grows, and the stream ends when the run finishes", async () => {
  const runs = await Deno.makeTempDir({ prefix: "events_live_" });
  const dir = await fakeRun(runs, "live", LOG.slice(0, 2), false);
  const { app, close } = await testApp(runs);
  try {
    const res = await app.request("/api/runs/live/events");
    const it = sseMessages(res.body!);
    const next = async () => (await it.next()).value as SseMessage;
    assert.equal((await next()).id, "1");
    assert.equal((await next()).id, "2");
    const f = await Deno.open(`${dir}/log.jsonl`, { append: true });
    // A line in two writes: nothing may be sent until its newline is there.
    const line = JSON.stringify(LOG[2]);
    await f.write(new TextEncoder().encode(line.slice(0, 10)));
    await new Promise((r) => setTimeout(r, 600));
    await f.write(new TextEncoder().encode(line.slice(10) + "\n"));
    f.close();
    const v = await next();
    assert.deepEqual([v.event, v.id], ["validation", "3"]);
    assert.deepEqual(JSON.parse(v.data).dice, DICE);
    await Deno.writeTextFile(`${dir}/log.jsonl`, LOG.slice(3).map((r) => JSON.stringify(r) + "\n").join(""), {
      append: true,
    });
    await finish(dir);
    const rest: SseMessage[] = [];
    for await (const m of it) rest.push(m);
    assert.deepEqual(rest.map((m) => m.id), ["4", "5", "6", "7"]);
    assert.equal(rest.at(-1)!.event, "done");
  } finally {
    await close();
  }
});

Deno.test("events: a client that drops mid-stream ends the server's loop", async () => {
  const runs = await Deno.makeTempDir({ prefix: "events_drop_" });
  await fakeRun(runs, "open", LOG.slice(0, 2), false);
  const { app, close } = await testApp(runs);
  try {
    // The stream polls the log with Deno.open: count the polls while connected and after the drop.
    const open = Deno.open;
    let polls = 0;
    Deno.open = ((path: string, o?: Deno.OpenOptions) => {
      if (String(path).endsWith("open/log.jsonl")) polls++;
      return open(path, o);
    }) as typeof Deno.open;
    try {
      const res = await app.request("/api/runs/open/events");
      const reader = res.body!.getReader();
      await reader.read();
      await new Promise((r) => setTimeout(r, 600));
      assert.ok(polls >= 2, `${polls} polls while connected`);
      await reader.cancel();
      await new Promise((r) => setTimeout(r, 300));
      const after = polls;
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(polls, after, "the stream kept polling after its client left");
    } finally {
      Deno.open = open;
    }
  } finally {
    await close();
  }
});
