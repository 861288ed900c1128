import assert from "node:assert/strict";
import { readSafetensors, writeSafetensors } from "../io/safetensors.ts";
import { compareAll, readFixture, TINY_CONFIG, TINY_IO, TINY_PTH } from "../model/sam/test_util.ts";
import { tf } from "../engine/tf.ts";

const CLI = new URL("../cli/sam_run.ts", import.meta.url).pathname;

async function samRun(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("sam-run on the tiny fixture writes every reference tensor, matching the official model", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const output = `${dir}/out.safetensors`;
    const r = await samRun([
      "--checkpoint",
      TINY_PTH,
      "--config",
      TINY_CONFIG,
      "--input",
      TINY_IO,
      "--output",
      output,
      "--backend",
      "cpu",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const ours = await readSafetensors(output);
    const refs = await readFixture();
    assert.deepEqual([...ours.keys()].sort(), [...refs.keys()].sort());
    await tf.setBackend("cpu");
    const tensors = new Map([...ours].map(([k, h]) => [k, tf.tensor(h.data as Float32Array, h.shape)]));
    const { failed } = await compareAll(tensors, refs);
    assert.deepEqual(failed, []);
    tf.dispose([...tensors.values()]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sam-run refuses bad flags, configs, inputs and checkpoints: one line, exit 2, nothing written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fixture = await readFixture();
    const noBox = new Map(fixture);
    noBox.delete("box");
    await writeSafetensors(`${dir}/nobox.safetensors`, noBox);
    const big = new Map(fixture);
    big.set("raw_image", { dtype: "float32", shape: [1, 3, 81, 10], data: new Float32Array(3 * 81 * 10) });
    await writeSafetensors(`${dir}/big.safetensors`, big);
    await Deno.writeTextFile(`${dir}/junk.pth`, "not a checkpoint at all");
    await Deno.writeTextFile(
      `${dir}/cfg.json`,
      JSON.stringify({ ...JSON.parse(await Deno.readTextFile(TINY_CONFIG)), depth: -1 }),
    );
    const output = `${dir}/out.safetensors`;
    const base = { checkpoint: TINY_PTH, config: TINY_CONFIG, input: TINY_IO, output, backend: "cpu" };
    const cases: [Partial<Record<keyof typeof base, string>>, RegExp][] = [
      [{ checkpoint: undefined }, /missing --checkpoint/],
      [{ backend: "tpu" }, /--backend: "tpu" is not one of/],
      [{ config: "vit_b" }, /tiny_sam\.pth: weights do not fit the model/],
      [{ config: `${dir}/cfg.json` }, /cfg\.json: bad SAM config: "depth" must be an integer >= 1/],
      [{ config: `${dir}/none.json` }, /none\.json: no such config file/],
      [{ input: `${dir}/nobox.safetensors` }, /nobox\.safetensors: no tensor "box"/],
      [
        { input: `${dir}/big.safetensors` },
        /big\.safetensors: "raw_image" has shape \[1,3,81,10\], expected \[1, 3, H, W\] with 1 <= H, W <= image_size 80/,
      ],
      [{ input: `${dir}/missing.safetensors` }, /missing\.safetensors: no such input file/],
      [{ input: `${dir}/junk.pth` }, /junk\.pth: /],
      [{ checkpoint: `${dir}/junk.pth` }, /junk\.pth: not a checkpoint/],
      [{ checkpoint: `${dir}/nope.pth` }, /nope\.pth: no such file/],
      [
        { output: `${dir}/no/such/dir/out.safetensors` },
        /--output .*out\.safetensors: cannot write: folder .*no\/such\/dir does not exist/,
      ],
    ];
    for (const [change, re] of cases) {
      const flags = { ...base, ...change };
      const args = Object.entries(flags).filter(([, v]) => v !== undefined).flatMap((
        [k, v],
      ) => [`--${k}`, v!]);
      const r = await samRun(args);
      const lines = r.stderr.trim().split("\n");
      assert.equal(r.code, 2, `${re}: ${r.stderr}`);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^error: /);
      assert.match(lines[0], re);
      assert.equal(await Deno.stat(output).then(() => true, () => false), false, "no output written");
    }
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "big.safetensors",
      "cfg.json",
      "junk.pth",
      "nobox.safetensors",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
