import assert from "node:assert/strict";
import { type GlobalHandler, PickleError, unpickle } from "./pickle.ts";

const hex = (s: string) => new Uint8Array(s.match(/../g)!.map((b) => parseInt(b, 16)));
const latin1 = (s: string) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));
const none = new Map<string, GlobalHandler>();

// pickle.dumps({'a': [1, -2, 3.5, None, True, False, 'é', 2**70, -(2**63), (1, 2), (), (7,)],
//               'b': {1: 'x', 2: b'\x00\x01'}, 'c': 70000, 'd': -1}, protocol=P) under CPython 3.
const P2 =
  "80027d71002858010000006171015d7102284b014afeffffff47400c0000000000004e88895802000000c3a971038a09" +
  "0000000000000000408a0800000000000000804b014b02867104294b078571056558010000006271067d7107284b015801000000" +
  "7871084b02635f636f646563730a656e636f64650a710958020000000001710a58060000006c6174696e31710b86710c52710d75" +
  "580100000063710e4a70110100580100000064710f4affffffff752e";
const P5 =
  "8005956c000000000000007d94288c0161945d94284b014afeffffff47400c0000000000004e88898c02c3a9948a09000000" +
  "0000000000408a0800000000000000804b014b028694294b078594658c0162947d94284b018c0178944b024302000194758c0163" +
  "944a701101008c0164944affffffff752e";

function expected(bytesValue: unknown) {
  return new Map<unknown, unknown>([
    ["a", [1, -2, 3.5, null, true, false, "é", 2n ** 70n, -(2n ** 63n), [1, 2], [], [7]]],
    ["b", new Map<unknown, unknown>([[1, "x"], [2, bytesValue]])],
    ["c", 70000],
    ["d", -1],
  ]);
}

Deno.test("unpickle: CPython protocol 2 and 5 streams decode to plain JS values", () => {
  const p5 = unpickle(hex(P5), { globals: none, file: "p5" });
  assert.deepEqual(p5.value, expected(new Uint8Array([0, 1])));
  assert.equal(p5.end, hex(P5).length);
  // Protocol 2 spells bytes as _codecs.encode(str, 'latin1'): refused unless the caller allows that global.
  assert.throws(() => unpickle(hex(P2), { globals: none, file: "p2" }), /refusing global _codecs\.encode/);
  const codecs = new Map<string, GlobalHandler>([["_codecs.encode", {
    call: (a) => latin1(a[0] as string),
  }]]);
  assert.deepEqual(
    unpickle(hex(P2), { globals: codecs, file: "p2" }).value,
    expected(new Uint8Array([0, 1])),
  );
});

Deno.test("unpickle: code-executing globals are refused by name, never called", () => {
  const attacks: [string, Uint8Array, string][] = [
    // class E: __reduce__ = lambda self: (os.system, ('echo pwned',)), protocol 2 and 4
    [
      "p2",
      latin1("\x80\x02cposix\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03."),
      "posix.system",
    ],
    [
      "p4",
      hex(
        "80049525000000000000008c05706f736978948c0673797374656d94938c0a6563686f2070776e6564948594" +
          "5294" + "2e",
      ),
      "posix.system",
    ],
    ["eval", latin1("\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R."), "builtins.eval"],
    ["exec", latin1("\x80\x02c__builtin__\nexec\nX\x01\x00\x00\x001\x85R."), "__builtin__.exec"],
    ["nt", latin1("\x80\x02cnt\nsystem\nX\x01\x00\x00\x001\x85R."), "nt.system"],
    ["subprocess", latin1("\x80\x02csubprocess\nPopen\n."), "subprocess.Popen"],
  ];
  for (const [name, bytes, qualname] of attacks) {
    assert.throws(
      () => unpickle(bytes, { globals: none, file: "evil.pth" }),
      (e: Error) =>
        e instanceof PickleError && e.message.startsWith("evil.pth: pickle: refusing global " + qualname) &&
        !e.truncated,
      name,
    );
  }
  // INST and OBJ build objects by calling classes: refused outright.
  assert.throws(
    () => unpickle(latin1("\x80\x02(iposix\nsystem\n."), { globals: none, file: "f" }),
    /opcode 0x69 \(INST\)/,
  );
  assert.throws(() => unpickle(latin1("\x80\x02(o."), { globals: none, file: "f" }), /opcode 0x6f \(OBJ\)/);
});

Deno.test("unpickle: malformed streams give PickleErrors, truncation is flagged", () => {
  const bad: [string, string, RegExp, boolean?][] = [
    ["empty", "", /truncated/, true],
    ["cut string", "\x80\x02X\x10\x00\x00\x00abc", /truncated \(needed 16 bytes at byte 7\)/, true],
    ["no STOP", "\x80\x02K\x01", /truncated/, true],
    ["underflow", "\x80\x02R.", /stack underflow/],
    ["memo miss", "\x80\x02h\x05.", /memo key 5 was never stored/],
    ["unbalanced", "\x80\x02K\x01K\x02.", /STOP with an unbalanced stack/],
    ["setitem on list", "\x80\x02]K\x01K\x02s.", /SETITEM\(S\) on something that is not a dict/],
    ["reduce non-callable", "\x80\x02K\x01)R.", /REDUCE of something that is not an allowed callable/],
    ["protocol 9", "\x80\x09.", /unsupported pickle protocol 9/],
    ["text INT", "\x80\x02I1\n.", /opcode 0x49 \(INT\)/],
    ["persid without loader", "\x80\x02K\x01Q.", /persistent id without a loader/],
    ["build on int", "\x80\x02K\x01}b.", /BUILD on something other than a dict/],
  ];
  for (const [name, s, re, truncated] of bad) {
    assert.throws(() => unpickle(latin1(s), { globals: none, file: "f" }), (e: Error) => {
      assert.ok(e instanceof PickleError, name);
      assert.match(e.message, re, name);
      assert.equal(e.truncated, !!truncated, name);
      return true;
    });
  }
});

Deno.test("unpickle: allowed globals and persistent ids go through the caller's handlers", () => {
  const calls: unknown[][] = [];
  const globals = new Map<string, GlobalHandler>([
    ["m.f", { call: (a) => (calls.push(a), { made: a }) }],
    ["m.marker", { value: "MARKER" }],
  ]);
  // m.f(m.marker, persid('k'))
  const s = "\x80\x02cm\nf\ncm\nmarker\nX\x01\x00\x00\x00kQ\x86R.";
  const r = unpickle(latin1(s), { globals, file: "f", persistentLoad: (pid) => ({ pid }) });
  assert.deepEqual(r.value, { made: ["MARKER", { pid: "k" }] });
  assert.equal(calls.length, 1);
  // A second pickle after the first one (legacy torch files chain several).
  const two = latin1("\x80\x02K\x07.\x80\x02K\x08.");
  const first = unpickle(two, { globals, file: "f" });
  assert.deepEqual([first.value, unpickle(two, { globals, file: "f", start: first.end }).value], [7, 8]);
});
