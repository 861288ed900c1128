import assert from "node:assert/strict";
import { findTorchPython } from "../../io/torch_python.ts";
import { tf } from "../../engine/tf.ts";
import { selectBackend } from "../../engine/backend.ts";
import { Rng } from "../../engine/rng.ts";
import { writeSafetensors } from "../../io/safetensors.ts";
import {
  CNN_HEAD_VIT_B,
  cnnHead,
  type CnnHeadConfig,
  cnnHeadLayers,
  cnnHeadParamCount,
  cnnHeadScale,
  fromTorchLayout,
  initCnnHead,
  toTorchLayout,
} from "./cnn_head.ts";

const quiet = () => {};
const small: CnnHeadConfig = { inChans: 6, topChannel: 2, depth: 4, numClasses: 4 };

Deno.test("cnn head: the paper's head has 20,686,340 parameters and upsamples x4", () => {
  assert.equal(cnnHeadParamCount(CNN_HEAD_VIT_B), 20_686_340);
  assert.equal(cnnHeadScale(CNN_HEAD_VIT_B), 4);
  assert.equal(cnnHeadLayers(CNN_HEAD_VIT_B).length, 2 + 2 + 2 + 3 + 3 + 2);
  assert.equal(cnnHeadScale({ ...small, depth: 2 }), 4);
  assert.equal(cnnHeadScale({ ...small, depth: 3 }), 2);
});

Deno.test("cnn head: init is seeded, shapes and counts agree, layouts round-trip", async () => {
  await selectBackend("cpu", {}, quiet);
  const a = initCnnHead(small, new Rng(3));
  const b = initCnnHead(small, new Rng(3));
  let n = 0;
  for (const [name, v] of a) {
    n += v.size;
    const da = await v.data();
    assert.deepEqual(da, await b.get(name)!.data());
    const host = { dtype: "float32" as const, shape: v.shape, data: da as Float32Array };
    const torch = toTorchLayout(name, host, small);
    assert.deepEqual(fromTorchLayout(name, torch, small), host);
  }
  assert.equal(n, cnnHeadParamCount(small));
  tf.dispose([...a.values(), ...b.values()]);
});

/** An interpreter with torch (PATH or /usr/bin), or undefined: the cross-checks then skip. */
const py = await findTorchPython();
if (!py) console.error("cnn_head_test: PyTorch cross-check skipped: no python3 with torch found");

Deno.test({
  name: "cnn head: matches the same head built from torch.nn layers (weights in torch layout)",
  ignore: !py,
  async fn() {
    await selectBackend("cpu", {}, quiet);
    const vars = initCnnHead(small, new Rng(5));
    const x = tf.randomNormal([2, 5, 4, small.inChans], 0, 1, "float32", 9) as tf.Tensor4D;
    const y = cnnHead(vars, small, x); // [2, 20, 16, 4]
    const dir = await Deno.makeTempDir();
    const tensors = new Map();
    for (const [name, v] of vars) {
      tensors.set(
        name,
        toTorchLayout(
          name,
          { dtype: "float32", shape: v.shape, data: (await v.data()) as Float32Array },
          small,
        ),
      );
    }
    tensors.set("x", { dtype: "float32", shape: x.shape, data: await x.data() });
    await writeSafetensors(`${dir}/in.safetensors`, tensors);
    const layers = JSON.stringify(cnnHeadLayers(small));
    const script = `
import json, struct, sys, torch, numpy as np
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n]); out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']; out[k] = torch.from_numpy(np.frombuffer(b[8+n+s:8+n+e], dtype=np.float32).reshape(v['shape']).copy())
    return out
t = load(sys.argv[1]); x = t['x'].permute(0, 3, 1, 2)
for l in json.loads(sys.argv[2]):
    m = {'conv1': lambda: torch.nn.Conv2d(l['cin'], l['cout'], 1), 'conv3': lambda: torch.nn.Conv2d(l['cin'], l['cout'], 3, padding=1),
         'convT': lambda: torch.nn.ConvTranspose2d(l['cin'], l['cout'], 2, stride=2)}[l['kind']]()
    m.weight.data = t[l['name'] + '.weight']; m.bias.data = t[l['name'] + '.bias']
    x = m(x)
    if l['relu']: x = torch.relu(x)
sys.stdout.write(json.dumps(x.permute(0, 2, 3, 1).detach().numpy().ravel().tolist()))
`;
    const out = new Deno.Command(py!, {
      args: ["-c", script, `${dir}/in.safetensors`, layers],
    }).outputSync();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const ref = JSON.parse(new TextDecoder().decode(out.stdout)) as number[];
    const ours = await y.data();
    assert.deepEqual(y.shape, [2, 20, 16, 4]);
    const scale = Math.max(...ref.map(Math.abs));
    const diff = Math.max(...ref.map((r, i) => Math.abs(r - ours[i])));
    assert.ok(diff <= 1e-5 * scale, `max diff ${diff} (scale ${scale})`);
    tf.dispose([...vars.values(), x, y]);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("cnn head: 'he' init keeps the signal's scale through the head, PyTorch's default shrinks it", async () => {
  await selectBackend("cpu", {}, quiet);
  const cfg: CnnHeadConfig = { inChans: 32, topChannel: 4, depth: 4, numClasses: 4 };
  const x = tf.randomNormal([2, 4, 4, 32], 0, 1, "float32", 3) as tf.Tensor4D;
  const rms = async (init: "torch" | "he") => {
    const vars = initCnnHead(cfg, new Rng(1), init);
    const y = cnnHead(vars, cfg, x);
    const centred = tf.tidy(() => tf.sub(y, tf.mean(y, [0, 1, 2])));
    const v = Math.sqrt((await tf.mean(tf.square(centred)).data())[0]);
    tf.dispose([...vars.values(), y, centred]);
    return v;
  };
  const [torch, he] = [await rms("torch"), await rms("he")];
  assert.ok(he > 0.1 && he < 10, `he: output rms ${he}`);
  assert.ok(torch < he / 20, `torch ${torch} vs he ${he}`);
  x.dispose();
});
