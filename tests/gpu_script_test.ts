/**
 * bench/gpu.sh's orchestration, as it will run on a lent GPU machine: one benchmark call per figure, each
 * capped by what is left of the budget, the parts merged into one bench.json with the Table 1 estimate, and a
 * part that overruns named as missing rather than sinking the report. The benchmark itself is replaced by a
 * stand-in that answers in bench/main.ts's JSON shape at once (the real ViT-B figures take minutes even at
 * 32 px on the software adapter: by hand there, see the README); bench/gpu_report.ts is real.
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;

/** Answers like `bench/main.ts --json`: seconds keyed as benchKey does; train_run_vit_b never answers. */
const STAND_IN = `
const a = Deno.args, get = (f) => a[a.indexOf(f) + 1];
const name = get("--only"), size = get("--size"), batch = Number(get("--batch"));
if (name === "train_run_vit_b") await new Promise(() => setInterval(() => {}, 1000));
const key = name + "_" + size + (batch === 1 ? "" : "_b" + batch) +
  (name === "train_step_vit_b" && get("--checkpoint-blocks") === "off" ? "_nockpt" : "");
const seconds = { encoder_forward: 0.5 * batch, train_step_vit_b: get("--checkpoint-blocks") === "off" ? 1.5 : 2 };
console.error("stand-in " + key);
console.log(JSON.stringify({ [key + "_s"]: { webgpu: seconds[name] }, [key + "_peak_gpu_mib"]: { webgpu: 100 } }));
`;

Deno.test("gpu.sh: every figure in one bench.json with the estimate; a part over the budget is named missing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gpu_sh_" });
  try {
    await Deno.writeTextFile(`${dir}/bench.js`, STAND_IN);
    const t0 = performance.now();
    const out = await new Deno.Command("bash", {
      args: [`${ROOT}bench/gpu.sh`],
      cwd: ROOT,
      env: {
        DENO: Deno.execPath(),
        BENCH: `${dir}/bench.js`,
        REPORT: `${ROOT}bench/gpu_report.ts`,
        OUT: `${dir}/out`,
        GPU_BENCH_BUDGET: "14",
        XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = (performance.now() - t0) / 1000;
    const log = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, log);
    assert.ok(seconds < 30, `the budget of 14 s held (took ${seconds.toFixed(1)} s)`);
    const r = JSON.parse(await Deno.readTextFile(`${dir}/out/bench.json`));
    assert.equal(r.encoder_forward_1024_s.webgpu, 0.5);
    assert.equal(r.encoder_forward_1024_b4_s.webgpu, 2);
    assert.equal(r.train_step_vit_b_1024_b4_s.webgpu, 2);
    assert.equal(r.train_step_vit_b_1024_b4_nockpt_peak_gpu_mib.webgpu, 100);
    // The faster of the two steps (no checkpointing) and the batch-4 forward: 25 x 1.5 + 75 x 2 s an epoch.
    assert.equal(r.table1_estimate.step_s, 1.5);
    assert.equal(r.table1_estimate.epochS, 25 * 1.5 + 75 * 2);
    assert.ok(r.table1_estimate.gridH > 0);
    assert.deepEqual(r.missing, [`${dir}/out/part_run_b4.json`]);
    assert.match(await Deno.readTextFile(`${dir}/out/gpu.txt`), /nvidia-smi|NVIDIA/);
    assert.match(await Deno.readTextFile(`${dir}/out/bench.log`), /run_b4 exit 124/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
