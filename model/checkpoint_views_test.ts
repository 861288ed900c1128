/**
 * Issue #13 item 9: a few hundred KB of torch.save can describe terabytes through views (expand makes stride-0
 * views, many keys can view one storage). The checkpoints are written by torch itself; the readers must refuse
 * them with a typed error before allocating, and a model load must check keys and shapes before reading.
 */
import assert from "node:assert/strict";
import { readPth } from "../io/pth.ts";
import { PickleError } from "../io/pickle.ts";
import { toFloat32 } from "../io/host_tensor.ts";
import { findTorchPython, runPython } from "../io/torch_python.ts";
import { CheckpointError, openStateDict, readCheckedStateDict } from "./checkpoint.ts";
import { loadSamConfig } from "./sam/config.ts";
import { samParamShapes } from "./sam/params.ts";

const REF = new URL("../fixtures/reference/", import.meta.url).pathname;
const TINY = `${REF}tiny_sam.pth`;
const python = await findTorchPython();
if (!python) {
  console.log("checkpoint_views_test: skipping: no python3 with torch (apt install python3-torch)");
}

const SCRIPT = `
import sys, os, torch
out, tiny = sys.argv[1], sys.argv[2]
sd = torch.load(tiny)
def save(obj, name):
    torch.save(obj, os.path.join(out, name + ".pth"))
    torch.save(obj, os.path.join(out, name + "_legacy.pth"), _use_new_zipfile_serialization=False)
save({**sd, "evil": torch.zeros(1).expand(2**20, 2**20)}, "evil_huge")
save({**sd, "evil": torch.zeros(1).expand(2**14, 2**14)}, "evil_1g")
ok = dict(sd)
ok["image_encoder.neck.1.weight"] = torch.full((1,), 1.5).expand(sd["image_encoder.neck.1.weight"].shape)
save(ok, "expanded_ok")
big = torch.zeros(2**20)
save({f"k{i}": big for i in range(200)}, "shared")
`;

let dir: Promise<string> | undefined;
function fixtures(): Promise<string> {
  dir ??= (async () => {
    const d = await Deno.makeTempDir({ prefix: "ckpt_views_" });
    globalThis.addEventListener("unload", () => Deno.removeSync(d, { recursive: true }));
    await runPython(python!, SCRIPT, [d, TINY]);
    return d;
  })();
  return dir;
}

const MiB = 1 << 20;

/** Runs fn, returning how far the process's resident memory rose above where it started (sampled). */
async function rssRise(fn: () => Promise<unknown>): Promise<number> {
  const start = Deno.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 5);
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, Deno.memoryUsage().rss) - start;
}

Deno.test({
  name: "readPth: a 520 KB file holding zeros(1).expand(2**20, 2**20) is a PickleError, not a crash",
  ignore: !python,
  fn: async () => {
    const d = await fixtures();
    for (const file of ["evil_huge.pth", "evil_huge_legacy.pth", "evil_1g.pth", "evil_1g_legacy.pth"]) {
      const t0 = performance.now();
      const rise = await rssRise(() =>
        assert.rejects(() => readPth(`${d}/${file}`), (e: Error) => {
          assert.ok(e instanceof PickleError, `${file}: ${e.name}: ${e.message}`);
          assert.match(e.message, /^\/.*: tensor "evil" is a broadcast view of size \[\d+,\d+\]/);
          assert.ok(!e.message.includes("\n"));
          return true;
        })
      );
      assert.ok(rise < 200 * MiB, `${file}: resident memory rose ${rise >> 20} MiB`);
      assert.ok(performance.now() - t0 < 10_000, file);
    }
  },
});

Deno.test({
  name: "readCheckedStateDict: an unwanted expanded key is rejected from the description, before any read",
  ignore: !python,
  fn: async () => {
    const d = await fixtures();
    const shapes = samParamShapes(await loadSamConfig(`${REF}tiny_sam.config.json`));
    for (const file of ["evil_huge.pth", "evil_1g.pth", "evil_1g_legacy.pth"]) {
      const rise = await rssRise(() =>
        assert.rejects(
          () => readCheckedStateDict(`${d}/${file}`, shapes),
          (e: Error) =>
            e instanceof CheckpointError &&
            /: weights do not fit the model; 1 unexpected: evil$/.test(e.message),
        )
      );
      assert.ok(
        rise < 200 * MiB,
        `${file}: resident memory rose ${rise >> 20} MiB before the key was rejected`,
      );
    }
    // The description alone tells the shape; nothing is read until load.
    const sd = await openStateDict(`${d}/evil_1g.pth`);
    assert.deepEqual(sd.entries.get("evil"), { dtype: "float32", shape: [2 ** 14, 2 ** 14] });
    sd.close();
  },
});

Deno.test({
  name: "readCheckedStateDict: a small expanded view under a wanted key loads with its values",
  ignore: !python,
  fn: async () => {
    const d = await fixtures();
    const shapes = samParamShapes(await loadSamConfig(`${REF}tiny_sam.config.json`));
    for (const file of ["expanded_ok.pth", "expanded_ok_legacy.pth"]) {
      const sd = await readCheckedStateDict(`${d}/${file}`, shapes);
      const w = sd.get("image_encoder.neck.1.weight")!;
      assert.deepEqual(w.shape, shapes.get("image_encoder.neck.1.weight"));
      assert.ok(toFloat32(w).every((v) => v === 1.5));
      assert.equal(sd.size, shapes.size);
    }
  },
});

Deno.test({
  name:
    "readPth: 200 keys viewing one 4 MiB storage are refused (over 4x the file's data), not read 200 times",
  ignore: !python,
  fn: async () => {
    const d = await fixtures();
    for (const file of ["shared.pth", "shared_legacy.pth"]) {
      await assert.rejects(
        () => readPth(`${d}/${file}`),
        (e: Error) =>
          e instanceof PickleError && /its 200 tensors would take 838860800 bytes, over 4x/.test(e.message),
      );
    }
  },
});
