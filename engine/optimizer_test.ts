import assert from "node:assert/strict";
import { findTorchPython } from "../io/torch_python.ts";
import { tf } from "./tf.ts";
import { selectBackend } from "./backend.ts";
import { Adam, LrSchedule, PLATEAU_DEFAULTS } from "./optimizer.ts";

await selectBackend("cpu", {}, () => {});

/** An interpreter with torch (PATH or /usr/bin), or undefined: the cross-checks then skip. */
const py = await findTorchPython();
if (!py) console.error("optimizer_test: PyTorch cross-checks skipped: no python3 with torch found");

async function torch(script: string, input: unknown): Promise<unknown> {
  const cmd = new Deno.Command(py!, { args: ["-c", script], stdin: "piped", stdout: "piped" })
    .spawn();
  const w = cmd.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(input)));
  await w.close();
  return JSON.parse(new TextDecoder().decode((await cmd.output()).stdout));
}

const grads = [[0.5, -1, 2], [0.1, 0.1, -3], [-0.7, 0, 1], [2, -2, 0.5]];

Deno.test({
  name: "Adam matches torch.optim.Adam(betas=(0.5, 0.999)) step by step",
  ignore: !py,
  async fn() {
    const x = tf.variable(tf.tensor1d([1, 2, 3]));
    const opt = new Adam(new Map([["x", x]]), { lr: 5e-4 * 100, beta1: 0.5, beta2: 0.999, eps: 1e-8 });
    for (const g of grads) {
      const t = tf.tensor1d(g);
      opt.step(new Map([["x", t]]));
      t.dispose();
    }
    const ref = await torch(
      `
import json, sys, torch
g = json.loads(sys.stdin.read())
x = torch.nn.Parameter(torch.tensor([1., 2., 3.]))
o = torch.optim.Adam([x], lr=5e-2, betas=(0.5, 0.999))
for gi in g:
    x.grad = torch.tensor(gi); o.step()
print(json.dumps(x.detach().tolist()))
`,
      grads,
    ) as number[];
    const ours = await x.data();
    ref.forEach((r, i) => assert.ok(Math.abs(r - ours[i]) < 1e-6, `${ours[i]} vs ${r}`));
    opt.dispose();
    x.dispose();
  },
});

Deno.test("Adam state round-trips: a restored optimizer continues identically", async () => {
  const mk = () => tf.variable(tf.tensor2d([[1, -1], [0.5, 2]]));
  const a = mk(), b = mk();
  const oa = new Adam(new Map([["w", a]]), { lr: 0.1, beta1: 0.5, beta2: 0.999, eps: 1e-8 });
  const step = (o: Adam, g: number[]) => {
    const t = tf.tensor2d(g, [2, 2]);
    o.step(new Map([["w", t]]));
    t.dispose();
  };
  step(oa, [1, 2, 3, 4]);
  const before = tf.memory().numTensors;
  const ob = new Adam(new Map([["w", b]]), { lr: 0.1, beta1: 0.5, beta2: 0.999, eps: 1e-8 });
  const host = await a.data() as Float32Array;
  tf.tidy(() => b.assign(tf.tensor2d(host, [2, 2])));
  ob.importState(await oa.exportState(), oa.t);
  step(oa, [-1, 0.5, 2, 0]);
  step(ob, [-1, 0.5, 2, 0]);
  assert.deepEqual(await a.data(), await b.data());
  assert.throws(() => ob.importState(new Map(), 1), /lacks w.exp_avg/);
  ob.dispose();
  assert.equal(tf.memory().numTensors, before);
  oa.dispose();
  tf.dispose([a, b]);
});

const losses = [
  5,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  3.9999,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  2,
];

Deno.test("plateau schedule: constant never changes; state round-trips", () => {
  const c = new LrSchedule({ ...PLATEAU_DEFAULTS, kind: "constant" });
  assert.equal(losses.reduce((lr, l, e) => c.step(e, l, lr), 1), 1);
  const a = new LrSchedule(PLATEAU_DEFAULTS);
  let lr = 1;
  for (let e = 0; e < 20; e++) lr = a.step(e, losses[e], lr);
  const b = new LrSchedule(PLATEAU_DEFAULTS);
  b.restore(JSON.parse(JSON.stringify(a.state())));
  let lb = lr;
  for (let e = 20; e < losses.length; e++) {
    lr = a.step(e, losses[e], lr);
    lb = b.step(e, losses[e], lb);
  }
  assert.equal(lr, lb);
});

Deno.test({
  name: "plateau schedule matches torch ReduceLROnPlateau stepped from epoch 10 (Hu code)",
  ignore: !py,
  async fn() {
    const s = new LrSchedule(PLATEAU_DEFAULTS);
    const ours: number[] = [];
    let lr = 5e-4;
    losses.forEach((l, e) => ours.push(lr = s.step(e, l, lr)));
    const ref = await torch(
      `
import json, sys, torch
ls = json.loads(sys.stdin.read())
x = torch.nn.Parameter(torch.zeros(1)); o = torch.optim.Adam([x], lr=5e-4)
s = torch.optim.lr_scheduler.ReduceLROnPlateau(o, 'min'); out = []
for e, l in enumerate(ls):
    if e >= 10: s.step(l)
    out.append(o.param_groups[0]['lr'])
print(json.dumps(out))
`,
      losses,
    ) as number[];
    ours.forEach((v, i) => assert.ok(Math.abs(v - ref[i]) < 1e-12, `epoch ${i}: ${v} vs ${ref[i]}`));
    assert.ok(ref.at(-1)! < 5e-4, "the sequence should trigger at least one reduction");
  },
});
