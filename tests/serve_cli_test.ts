/**
 * `deno task serve --token T` as a plain HTTP client sees it (the done-when of the server's issue): 401
 * without the token, the run list, a nibabel-written volume predicted into a NIfTI that nibabel reads with
 * the same shape and affine, 422 for random bytes, 413 for an oversized body, no file for a traversal, a tiny
 * run started over HTTP streaming `progress` and `done`; bad flags exit 2; SIGTERM stops it cleanly.
 */
import assert from "node:assert/strict";
import { findNibabel } from "./nibabel_probe.ts";
import { sseMessages, TINY_RUN, tinyData, trainTinyRun } from "../server/test_support.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MAIN = `${ROOT}server/main.ts`;
const TOKEN = "T0ken.for-tests";
const tmp = await Deno.makeTempDir({ prefix: "serve_cli_" });
const data = await tinyData(`${tmp}/data`);
await trainTinyRun(data, `${tmp}/runs/tiny`);

/** Starts the server on a free loopback port; resolves with its URL once it prints it. */
async function serve(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--port", "0", "--backend", "wasm", ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited: ${await stderr}`);
    out += value;
  }
  reader.releaseLock();
  const url = JSON.parse(out.split("\n")[0]).url as string;
  return { child, url, stderr };
}

async function raw(url: string, path: string): Promise<string> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(
    new TextEncoder().encode(
      `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`,
    ),
  );
  const text = await new Response(conn.readable).text();
  return text;
}

const WRITE_NIBABEL = `
import sys, numpy as np, nibabel as nib
rng = np.random.default_rng(5)
affine = np.array([[0, -1.4, 0, 90], [1.3, 0, 0, -60], [0, 0.2, 9, 15], [0, 0, 0, 1]])
img = nib.Nifti1Image(rng.integers(0, 400, (40, 36, 5)).astype(np.int16), affine)
img.to_filename(sys.argv[1])
`;

const READ_NIBABEL = `
import sys, json, numpy as np, nibabel as nib
a, b = nib.load(sys.argv[1]), nib.load(sys.argv[2])
print(json.dumps({"shape": [list(a.shape), list(b.shape)], "dtype": str(b.get_data_dtype()),
  "affine_equal": bool(np.allclose(a.affine, b.affine, atol=1e-5)), "labels": sorted(map(int, np.unique(b.get_fdata())))}))
`;

Deno.test("serve: bad flags and a bad runs folder exit 2 with one line", async () => {
  await Deno.writeTextFile(`${tmp}/a_file`, "x");
  for (
    const args of [["--port", "70000"], ["--bogus"], ["--runs", `${tmp}/a_file`], [
      "--token",
      "no spaces allowed",
    ]]
  ) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, ...args],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const err = new TextDecoder().decode(r.stderr).trim();
    assert.equal(r.code, 2, `${args}: ${err}`);
    assert.equal(err.split("\n").length, 1, err);
    assert.match(err, /^error: /);
  }
});

Deno.test("serve --token: what a plain HTTP client can do with the documented contract", async () => {
  const { child, url, stderr } = await serve([
    "--token",
    TOKEN,
    "--runs",
    `${tmp}/runs`,
    "--body-limit-mib",
    "1",
  ]);
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const bin = { ...auth, "Content-Type": "application/octet-stream" };
  try {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/, "loopback by default");
    const denied = await fetch(`${url}api/runs`);
    assert.equal(denied.status, 401);
    assert.equal((await denied.json()).error, "unauthorized");
    const runs = await (await fetch(`${url}api/runs`, { headers: auth })).json();
    assert.deepEqual(runs.map((r: { id: string }) => r.id), ["tiny"]);

    const python = await findNibabel();
    if (!python) {
      console.log(
        "skipped the nibabel round trip: no python3 with nibabel (apt-get install python3-nibabel)",
      );
    } else {
      const input = `${tmp}/nibabel_scan.nii.gz`, output = `${tmp}/nibabel_labels.nii.gz`;
      assert.ok((await new Deno.Command(python, { args: ["-c", WRITE_NIBABEL, input] }).output()).success);
      const res = await fetch(`${url}api/runs/tiny/predict`, {
        method: "POST",
        headers: bin,
        body: await Deno.readFile(input),
      });
      assert.equal(res.status, 200);
      await Deno.writeFile(output, new Uint8Array(await res.arrayBuffer()));
      const r = await new Deno.Command(python, { args: ["-c", READ_NIBABEL, input, output], stdout: "piped" })
        .output();
      const seen = JSON.parse(new TextDecoder().decode(r.stdout));
      assert.deepEqual(seen.shape, [[40, 36, 5], [40, 36, 5]]);
      assert.equal(seen.dtype, "uint8");
      assert.equal(seen.affine_equal, true);
      assert.ok(seen.labels.every((l: number) => l >= 0 && l <= 3));
    }

    const garbage = await fetch(`${url}api/runs/tiny/predict`, {
      method: "POST",
      headers: bin,
      body: crypto.getRandomValues(new Uint8Array(3000)),
    });
    assert.equal(garbage.status, 422);
    assert.equal(garbage.headers.get("Content-Type"), "application/json");
    assert.equal((await garbage.json()).error, "invalid NIfTI");
    const big = await fetch(`${url}api/runs/tiny/predict`, {
      method: "POST",
      headers: bin,
      body: new Uint8Array(2 << 20),
    });
    assert.equal(big.status, 413);
    await big.body?.cancel();

    for (
      const path of [
        "/api/runs/../../../etc/passwd",
        "/api/runs/..%2F..%2F..%2Fetc%2Fpasswd",
        "/../../etc/passwd",
      ]
    ) {
      const answer = await raw(url, path);
      assert.match(answer, /^HTTP\/1\.1 404/, path);
      assert.ok(!answer.includes("root:"), `${path} served a file`);
    }

    const started = await fetch(`${url}api/runs`, {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ ...TINY_RUN, data, epochs: 2 }),
    });
    assert.equal(started.status, 202);
    const { events } = await started.json();
    const seen = new Set<string>();
    for await (const m of sseMessages((await fetch(`${url}${events.slice(1)}`, { headers: auth })).body!)) {
      seen.add(m.event);
    }
    assert.deepEqual([...seen].sort(), ["done", "progress", "validation"]);
  } finally {
    child.kill("SIGTERM");
    const status = await child.status;
    const log = await stderr;
    assert.equal(status.code, 0, log);
    assert.match(log, /stopped/);
  }
});
