/**
 * `deno task train` stopped by SIGTERM or Ctrl-C (what the server's cancel sends): it finishes its current
 * step, keeps the last complete epoch's checkpoint, prints `{"run", "cancelled": true, "epoch"}` and exits 0.
 */
import assert from "node:assert/strict";
import { TINY_RUN, tinyData, toFlags } from "../server/test_support.ts";

const TRAIN = new URL("../cli/train.ts", import.meta.url).pathname;

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`train: ${signal} stops after the current step and keeps the last checkpoint`, async () => {
    const tmp = await Deno.makeTempDir({ prefix: "train_stop_" });
    const data = await tinyData(`${tmp}/data`);
    const out = `${tmp}/run`;
    const args = toFlags({ ...TINY_RUN, data, out, epochs: 500 });
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", TRAIN, ...args],
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
    const stdout = new Response(child.stdout).text(), stderr = new Response(child.stderr).text();
    while (!(await Deno.stat(`${out}/state.json`).then(() => true, () => false))) {
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill(signal);
    const status = await child.status;
    const [o, e] = await Promise.all([stdout, stderr]);
    assert.equal(status.code, 0, e);
    assert.match(e, /stopping after the current step/);
    const last = JSON.parse(o.trim().split("\n").at(-1)!);
    assert.equal(last.run, out);
    assert.equal(last.cancelled, true);
    const state = JSON.parse(await Deno.readTextFile(`${out}/state.json`));
    assert.ok(last.epoch >= 1 && last.epoch < 500, `stopped after epoch ${last.epoch}`);
    assert.equal(state.epoch, last.epoch, "the checkpoint is the last complete epoch");
    const leftovers = [...Deno.readDirSync(out)].filter((f) => /\.(staged|tmp)$/.test(f.name));
    assert.deepEqual(leftovers, []);
  });
}
