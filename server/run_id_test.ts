import assert from "node:assert/strict";
import { isRunId, listRunIds, runDir } from "./run_id.ts";

Deno.test("isRunId: plain folder names only", () => {
  for (const ok of ["run1", "2026-11-28T10-00-00-loramednet-ab12", "a.b_c-d"]) assert.ok(isRunId(ok), ok);
  for (
    const bad of ["", ".", "..", ".hidden", "../x", "a/b", "a\\b", "a%2Fb", "-x", "a b", "x".repeat(129), "é"]
  ) {
    assert.ok(!isRunId(bad), bad);
  }
});

Deno.test("runDir and listRunIds: runs are real folders holding config.json; links and strays are not", async () => {
  const root = await Deno.makeTempDir({ prefix: "run_id_" });
  const outside = await Deno.makeTempDir({ prefix: "outside_" });
  await Deno.writeTextFile(`${outside}/config.json`, "{}");
  await Deno.mkdir(`${root}/runs/good`, { recursive: true });
  await Deno.writeTextFile(`${root}/runs/good/config.json`, "{}");
  await Deno.mkdir(`${root}/runs/empty`);
  await Deno.writeTextFile(`${root}/runs/file`, "x");
  await Deno.symlink(outside, `${root}/runs/link`);
  const runs = `${root}/runs`;
  assert.deepEqual(await listRunIds(runs), ["good"]);
  assert.equal(await runDir(runs, "good"), `${runs}/good`);
  for (const id of ["empty", "file", "link", "..", "nope"]) {
    await assert.rejects(runDir(runs, id), (e: Error & { status?: number }) => e.status === 404, id);
  }
  assert.equal(
    await runDir(runs, "starting", true),
    `${runs}/starting`,
    "a run the server started counts early",
  );
  assert.deepEqual(await listRunIds(`${root}/missing`), []);
});
