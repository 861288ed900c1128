import assert from "node:assert/strict";
import { readPth } from "./pth.ts";
import { PickleError } from "./pickle.ts";
import { dataBytes, hostTensor, toFloat32 } from "./host_tensor.ts";
import { findTorchPython, runPython } from "./torch_python.ts";

const TINY = new URL("../fixtures/reference/tiny_sam.pth", import.meta.url).pathname;
const python = await findTorchPython();
if (!python) {
  console.log(
    "pth_torch_test: skipping torch cross-checks: no python3 with torch (apt install python3-torch)",
  );
}

/** One python run writes every checkpoint and the raw contiguous bytes torch itself sees for each tensor. */
const SCRIPT = `
import sys, os, json, collections, torch
out, tiny = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
def dump(sd, name):
    index = {}
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        for k, v in sd.items():
            t = v.detach().contiguous()
            if t.dtype == torch.bfloat16:
                t = t.view(torch.int16)
            b = t.numpy().tobytes()
            index[k] = [str(v.dtype).replace("torch.", ""), list(v.shape), f.tell(), len(b)]
            f.write(b)
    json.dump(index, open(os.path.join(out, name + ".json"), "w"))
dump(torch.load(tiny), "tiny")
base = torch.randn(6, 5)
sd = collections.OrderedDict()
sd["f32"] = torch.randn(3, 4)
sd["f16"] = torch.randn(2, 3).half()
sd["bf16"] = torch.randn(4).bfloat16()
sd["f64"] = torch.randn(2, 2, 2, dtype=torch.float64)
sd["i64"] = torch.randint(-2**40, 2**40, (5,))
sd["i32"] = torch.randint(-2**31, 2**31 - 1, (3,), dtype=torch.int32)
sd["i16"] = torch.randint(-300, 300, (3,), dtype=torch.int16)
sd["i8"] = torch.randint(-128, 127, (4,), dtype=torch.int8)
sd["u8"] = torch.randint(0, 255, (4,), dtype=torch.uint8)
sd["bool"] = torch.rand(5) > 0.5
sd["transposed"] = base.t()
sd["base"] = base
sd["slice"] = base[2:4]
sd["strided"] = base[1:, ::2]
sd["half_t"] = torch.randn(3, 4).half().t()
sd["bf16_slice"] = torch.randn(4, 6).bfloat16()[1:3, 2:]
sd["expanded"] = torch.randn(3, 1).expand(3, 4)
sd["empty"] = torch.zeros(0, 3)
sd["scalar"] = torch.tensor(2.5)
sd["param"] = torch.nn.Parameter(torch.randn(2, 2))
ckpt = {"epoch": 3, "model": sd, "note": "x", "lr": 1e-4}
torch.save(ckpt, os.path.join(out, "rand.pth"))
torch.save(ckpt, os.path.join(out, "rand_legacy.pth"), _use_new_zipfile_serialization=False)
dump(sd, "rand")
dump(collections.OrderedDict((k, v.float()) for k, v in sd.items()), "rand_f32")
class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + os.path.join(out, "pwned"),))
torch.save({"w": torch.ones(2), "x": Evil()}, os.path.join(out, "evil.pth"))
torch.save({"w": torch.ones(2), "x": Evil()}, os.path.join(out, "evil_legacy.pth"), _use_new_zipfile_serialization=False)
`;

let dir: Promise<string> | undefined;
/** Runs the script once for all tests in this file; the folder is removed when the test process exits. */
function fixtures(): Promise<string> {
  dir ??= (async () => {
    const d = await Deno.makeTempDir({ prefix: "pth_torch_" });
    globalThis.addEventListener("unload", () => Deno.removeSync(d, { recursive: true }));
    await runPython(python!, SCRIPT, [d, TINY]);
    return d;
  })();
  return dir;
}

/** Checks every tensor of the torch dump against what we read: dtype, shape and exact bytes. */
async function assertMatchesDump(
  got: Map<string, { dtype: string; shape: number[]; data: unknown }>,
  d: string,
  name: string,
  prefix = "",
) {
  const index: Record<string, [string, number[], number, number]> = JSON.parse(
    await Deno.readTextFile(`${d}/${name}.json`),
  );
  const bin = await Deno.readFile(`${d}/${name}.bin`);
  assert.deepEqual([...got.keys()], Object.keys(index).map((k) => prefix + k));
  for (const [k, [dtype, shape, at, len]] of Object.entries(index)) {
    const t = got.get(prefix + k)!;
    assert.equal(t.dtype, dtype, k);
    assert.deepEqual(t.shape, shape, k);
    assert.deepEqual(
      dataBytes(t.data as Float32Array),
      bin.subarray(at, at + len),
      `${k}: bytes differ from torch`,
    );
  }
}

Deno.test({
  name: "readPth: tiny_sam.pth equals torch.load bit for bit",
  ignore: !python,
  fn: async () => {
    const d = await fixtures();
    await assertMatchesDump(await readPth(TINY), d, "tiny");
  },
});

Deno.test({
  name:
    "readPth: torch-written checkpoint (all dtypes, transposed, sliced, expanded, Parameter), zip and legacy",
  ignore: !python,
  fn: async () => {
    const d = await fixtures();
    for (const file of ["rand.pth", "rand_legacy.pth"]) {
      const got = await readPth(`${d}/${file}`);
      // Non-tensor entries (epoch, note, lr) are skipped; the nested dict's tensors keep their path.
      await assertMatchesDump(got, d, "rand", "model.");
    }
    // toFloat32 (half, bfloat16, double, ints, bool) must agree exactly with torch's .float().
    const got = await readPth(`${d}/rand.pth`);
    const asF32 = new Map([...got].map(([k, t]) => [k, hostTensor("float32", t.shape, toFloat32(t))]));
    await assertMatchesDump(asF32, d, "rand_f32", "model.");
  },
});

Deno.test({
  name: "readPth: a torch.save'd object whose __reduce__ calls os.system is refused and nothing runs",
  ignore: !python,
  fn: async () => {
    const d = await fixtures();
    for (const file of ["evil.pth", "evil_legacy.pth"]) {
      await assert.rejects(() => readPth(`${d}/${file}`), (e: Error) => {
        assert.ok(e instanceof PickleError, String(e));
        assert.match(e.message, /refusing global posix\.system/);
        return true;
      });
    }
    assert.equal(
      await Deno.stat(`${d}/pwned`).then(() => true, () => false),
      false,
      "the command must not run",
    );
  },
});
