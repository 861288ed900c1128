import assert from "node:assert/strict";
import { flattenTensors, readPth } from "./pth.ts";
import { PickleError, unpickle } from "./pickle.ts";
import { torchGlobals } from "./torch_globals.ts";

const SAMPLES = new URL("../fixtures/samples/pth/", import.meta.url).pathname;
const TEST_PT = await Deno.readFile(`${SAMPLES}test.pt`);
const ascii = (s: string) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));

function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  throw new Error("pattern not found in fixture");
}

/** Offset of the central-directory record for entry name. */
function centralEntry(zip: Uint8Array, name: string): number {
  for (let at = 0;; at++) {
    at = indexOf(zip, ascii("PK\x01\x02"), at);
    if (new TextDecoder().decode(zip.subarray(at + 46, at + 46 + name.length)) === name) return at;
  }
}

/** A copy of test.pt with patch applied. */
function patched(patch: (b: Uint8Array, dv: DataView) => void): Uint8Array {
  const b = TEST_PT.slice();
  patch(b, new DataView(b.buffer));
  return b;
}

async function withFile<T>(bytes: Uint8Array, fn: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ suffix: ".pth" });
  try {
    await Deno.writeFile(path, bytes);
    return await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("readPth: candle's int64, nested-key and Fortran-order samples", async () => {
  const plain = await readPth(`${SAMPLES}test.pt`);
  assert.deepEqual([...plain.keys()], ["test"]);
  const t = plain.get("test")!;
  assert.equal(t.dtype, "int64");
  assert.deepEqual(t.shape, [2, 4]);
  assert.deepEqual(t.data, new BigInt64Array([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]));

  const nested = await readPth(`${SAMPLES}test_with_key.pt`);
  assert.deepEqual([...nested.keys()], ["model_state_dict.test"]);
  assert.deepEqual(nested.get("model_state_dict.test"), t);

  // Stored column-major (strides 1, 2, 6): must come back row-major, i.e. as torch's t.flatten() = 1..24.
  const fortran = (await readPth(`${SAMPLES}fortran_tensor_3d.pth`)).get("tensor_fortran")!;
  assert.deepEqual(fortran.shape, [2, 3, 4]);
  assert.deepEqual(fortran.data, BigInt64Array.from({ length: 24 }, (_, i) => BigInt(i + 1)));
});

Deno.test("readPth: broken and hostile archives give a PickleError naming the problem", async () => {
  const pkl = indexOf(TEST_PT, ascii("\x80\x02ccollections"));
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty file", new Uint8Array(0), /not a PyTorch checkpoint/],
    [
      "random bytes",
      crypto.getRandomValues(new Uint8Array(5000)).map((v, i) => (i ? v : 0x42)),
      /not a PyTorch/,
    ],
    ["truncated zip", TEST_PT.slice(0, 600), /no end-of-central-directory record/],
    [
      "entry past EOF",
      patched((_, dv) => {
        const at = centralEntry(TEST_PT, "test/data/0");
        dv.setUint32(at + 20, 1 << 20, true);
        dv.setUint32(at + 24, 1 << 20, true);
      }),
      /entry "test\/data\/0" \(1048576 bytes at \d+\) runs past the end of the file/,
    ],
    [
      "header past EOF",
      patched((_, dv) => {
        dv.setUint32(centralEntry(TEST_PT, "test/data/0") + 42, 0x7fff0000, true);
      }),
      /entry "test\/data\/0" points past the end of the file/,
    ],
    [
      "compressed entry",
      patched((_, dv) => {
        dv.setUint16(centralEntry(TEST_PT, "test/data/0") + 10, 8, true);
      }),
      /zip entry "test\/data\/0" is compressed \(method 8\)/,
    ],
    [
      "storage shorter than shape*stride",
      patched((b) => {
        b[indexOf(b, ascii("K\x02K\x04\x86"), pkl) + 3] = 5; // size (2, 4) -> (2, 5), stride still (4, 1)
      }),
      /size \[2,5\], stride \[4,1\], offset 0 needs storage "0" to hold 9 elements, it holds 8/,
    ],
    [
      "storage size disagrees with entry",
      patched((b) => {
        b[indexOf(b, ascii("cpuq\x07K\x08"), pkl) + 6] = 9;
      }),
      /storage "0" holds 64 bytes, the pickle says 9 int64 elements \(72 bytes\)/,
    ],
    [
      "missing storage",
      patched((b) => {
        for (let at = 0; (at = b.indexOf(0x74, at)) >= 0; at++) { // rename every "test/data/0" to "test/data/9"
          if (new TextDecoder().decode(b.subarray(at, at + 11)) === "test/data/0") b[at + 10] = 0x39;
        }
      }),
      /storage "0" is missing from the archive/,
    ],
    [
      "os.system in data.pkl",
      patched((b) => {
        b.set(ascii("\x80\x02cposix\nsystem\nX\x0a\x00\x00\x00echo pwned\x85R."), pkl);
      }),
      /pickle: refusing global posix\.system/,
    ],
  ];
  for (const [name, bytes, re] of cases) {
    await withFile(bytes, (path) =>
      assert.rejects(() => readPth(path), (e: Error) => {
        assert.ok(e instanceof PickleError, `${name}: ${e.stack}`);
        assert.match(e.message, re, name);
        assert.ok(e.message.startsWith(path), name);
        return true;
      }));
  }
});

Deno.test("flattenTensors: cycles and doubling DAGs fail fast instead of hanging, naming the file", () => {
  let dag: unknown[] = [];
  for (let i = 0; i < 60; i++) dag = [dag, dag]; // 2^60 paths, 61 distinct objects
  const t0 = performance.now();
  const named = (re: RegExp) => (e: Error) => e instanceof PickleError && re.test(e.message);
  assert.throws(
    () => flattenTensors(dag, "d.pth"),
    named(/^d\.pth: checkpoint structure has over a million entries$/),
  );
  const cyc: unknown[] = [];
  cyc.push(cyc);
  assert.throws(
    () => flattenTensors(new Map([["a", cyc]]), "c.pth"),
    named(/^c\.pth: .*deeper than 64 levels/),
  );
  assert.ok(performance.now() - t0 < 5000);
});

Deno.test("_rebuild_tensor_v2 only accepts a storage from a persistent id", () => {
  // _rebuild_tensor_v2({}, 0, (1,), (1,)): a dict posing as a storage.
  const s = "\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(}K\x00K\x01\x85K\x01\x85\x89}tR.";
  assert.throws(
    () => unpickle(ascii(s), { globals: torchGlobals("x.pth"), file: "x.pth" }),
    /x\.pth: tensor without a storage/,
  );
});
