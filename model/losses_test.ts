import assert from "node:assert/strict";
import { findTorchPython } from "../io/torch_python.ts";
import { tf } from "../engine/tf.ts";
import { selectBackend } from "../engine/backend.ts";
import { ceDiceLoss, crossEntropy, sigmoidBceDiceLoss, softDiceLoss } from "./losses.ts";

const quiet = () => {};
await selectBackend("cpu", {}, quiet);

const close = (a: number, b: number, tol = 1e-5) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

Deno.test("cross-entropy equals -mean log softmax at the label", async () => {
  const logits = tf.tensor2d([[2, 0, 0, 0], [0, 1, 3, 0]]);
  const labels = tf.tensor1d([0, 2], "int32");
  const l = (i: number[], k: number) => Math.log(i.reduce((s, v) => s + Math.exp(v), 0)) - i[k];
  close((await crossEntropy(logits, labels).data())[0], (l([2, 0, 0, 0], 0) + l([0, 1, 3, 0], 2)) / 2);
});

Deno.test("soft Dice: hand value, background ignored, an absent well-predicted class is dropped", async () => {
  // Two pixels, classes 0..2; class 1 present once, class 2 absent with zero probability.
  const probs = tf.tensor2d([[0.5, 0.5, 0], [1, 0, 0]]);
  const labels = tf.tensor1d([1, 0], "int32");
  // class 1: inter 0.5, sum p^2 0.25, sum y^2 1 -> 1 - 2/2.25; class 2: 1 - 1/1 = 0 -> dropped.
  close((await softDiceLoss(probs, labels).data())[0], 1 - 2 / 2.25);
  const perfect = tf.tensor2d([[0, 1, 0], [1, 0, 0]]);
  close((await softDiceLoss(perfect, labels).data())[0], 0);
});

Deno.test("g-network loss: per-class sigmoid BCE + per-sample soft Dice, channel 0 ignored, equals a loop-by-loop value", async () => {
  const [b, n, c] = [2, 6, 4];
  const logits = tf.randomNormal([b, 2, 3, c], 0, 2, "float32", 3);
  const labels = tf.tensor(Int32Array.from({ length: b * n }, (_, i) => (i * 5) % 4), [b, 2, 3], "int32");
  const [l, y] = [await logits.data(), await labels.data()];
  let bce = 0, dice = 0;
  for (let k = 1; k < c; k++) {
    for (let s = 0; s < b; s++) {
      let tp = 0, sp = 0, sy = 0;
      for (let i = 0; i < n; i++) {
        const z = l[(s * n + i) * c + k], t = y[s * n + i] === k ? 1 : 0, p = 1 / (1 + Math.exp(-z));
        bce -= t * Math.log(p) + (1 - t) * Math.log(1 - p);
        [tp, sp, sy] = [tp + p * t, sp + p, sy + t];
      }
      dice += 1 - (tp + 1) / ((sp + sy) / 2 + 1);
    }
  }
  const expected = bce / (b * n * (c - 1)) + dice / (b * (c - 1));
  close((await sigmoidBceDiceLoss(logits, labels).data())[0], expected);
  // The background channel does not enter: changing it changes nothing.
  const moved = tf.concat(
    [tf.fill([b, 2, 3, 1], 50), tf.slice(logits, [0, 0, 0, 1], [-1, -1, -1, c - 1])],
    3,
  );
  close((await sigmoidBceDiceLoss(moved, labels).data())[0], expected);
  const g = await tf.grad((x: tf.Tensor) => sigmoidBceDiceLoss(x, labels))(logits).data();
  for (const i of [1, 6, 23, 46]) {
    const at = async (d: number) => {
      const v = Float32Array.from(l);
      v[i] += d;
      return (await sigmoidBceDiceLoss(tf.tensor(v, logits.shape), labels).data())[0];
    };
    close((await at(1e-2) - await at(-1e-2)) / 2e-2, g[i], 1e-2);
  }
  assert.equal(g[0], 0, "no gradient reaches the background channel");
});

Deno.test("CE + Dice gradients agree with central finite differences", async () => {
  const logits = tf.randomNormal([2, 3, 3, 4], 0, 1, "float32", 7);
  const labels = tf.tensor(Int32Array.from({ length: 18 }, (_, i) => (i * 7) % 4), [2, 3, 3], "int32");
  const g = await tf.grad((x: tf.Tensor) => ceDiceLoss(x, labels))(logits).data();
  const base = await logits.data();
  const h = 1e-2;
  for (const i of [0, 5, 17, 40, 71]) {
    const at = (d: number) => {
      const v = Float32Array.from(base);
      v[i] += d;
      return tf.tidy(() => ceDiceLoss(tf.tensor(v, logits.shape), labels).dataSync()[0]);
    };
    const fd = (at(h) - at(-h)) / (2 * h);
    assert.ok(Math.abs(fd - g[i]) < 2e-3, `logit ${i}: analytic ${g[i]} vs numeric ${fd}`);
  }
});

/** An interpreter with torch (PATH or /usr/bin), or undefined: the cross-checks then skip. */
Deno.test("every loss has the cpu value and gradient on wasm (its OneHot kernel ignores a float32 dtype)", async () => {
  const shape = [2, 4, 5, 4];
  const l = Float32Array.from({ length: 160 }, (_, i) => Math.sin(i * 1.7) * 3);
  const y = Int32Array.from({ length: 40 }, (_, i) => (i * 7 + (i >> 2)) % 4);
  const losses = { crossEntropy, ceDiceLoss, sigmoidBceDiceLoss };
  const run = async (backend: "cpu" | "wasm") => {
    await selectBackend(backend, {}, quiet);
    const [logits, labels] = [tf.tensor(l, shape), tf.tensor(y, [2, 4, 5], "int32")];
    const out = [];
    for (const f of Object.values(losses)) {
      const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => f(x, labels))(logits);
      out.push([(await value.data())[0], ...await grad.data()]);
      tf.dispose([value, grad]);
    }
    tf.dispose([logits, labels]);
    return out;
  };
  const cpu = await run("cpu");
  const wasm = await run("wasm");
  await selectBackend("cpu", {}, quiet);
  for (const [i, name] of Object.keys(losses).entries()) {
    close(wasm[i][0], cpu[i][0], 1e-5);
    for (let j = 1; j < cpu[i].length; j++) close(wasm[i][j], cpu[i][j], 1e-4);
    assert.ok(cpu[i][0] > 0.1, `${name}: a non-trivial value`);
  }
});

const py = await findTorchPython();
if (!py) console.error("losses_test: PyTorch cross-check skipped: no python3 with torch found");

Deno.test({
  name: "CE + Dice matches the same formula evaluated by PyTorch (NCHW, as the Hu code)",
  ignore: !py,
  async fn() {
    const logits = tf.randomNormal([2, 5, 4, 4], 0, 2, "float32", 11);
    const labels = tf.tensor(
      Int32Array.from({ length: 40 }, (_, i) => (i * 5 + (i >> 3)) % 3),
      [2, 5, 4],
      "int32",
    );
    const ours = (await ceDiceLoss(logits, labels).data())[0];
    const script = `
import json, sys, torch
d = json.loads(sys.stdin.read())
x = torch.tensor(d['x']).reshape(2, 5, 4, 4).permute(0, 3, 1, 2); y = torch.tensor(d['y']).reshape(2, 5, 4)
p = torch.softmax(x, 1); oh = torch.zeros_like(p).scatter_(1, y[:, None], 1)
p, oh = p[:, 1:], oh[:, 1:]
ax = (0, 2, 3)
r = 1 - (2 * (p * oh).sum(ax) + 1) / ((p * p).sum(ax) + (oh * oh).sum(ax) + 1)
r = r[r > 0].mean()
print(float(torch.nn.functional.cross_entropy(x, y) + r))
`;
    const cmd = new Deno.Command(py!, {
      args: ["-c", script],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const w = cmd.stdin.getWriter();
    await w.write(
      new TextEncoder().encode(
        JSON.stringify({ x: Array.from(await logits.data()), y: Array.from(await labels.data()) }),
      ),
    );
    await w.close();
    const out = await cmd.output();
    close(ours, Number(new TextDecoder().decode(out.stdout)), 1e-5);
  },
});
