import { canMount, mountTmpfs, umount } from "../tests/tmpfs.ts";
import { nobodyCannotRead } from "../tests/as_nobody.ts";
import assert from "node:assert/strict";
import {
  appendOutput,
  checkOutputFile,
  checkWritable,
  OutputError,
  outputError,
  prepareOutputDir,
  writeOutput,
  writeOutputBytes,
  writeOutputText,
} from "./safe_output.ts";

const isRoot = Deno.uid() === 0;
const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

/** A one-line OutputError whose message matches re. */
function refused(re: RegExp) {
  return (e: unknown) => e instanceof OutputError && !e.message.includes("\n") && re.test(e.message);
}

Deno.test("writeOutput replaces a regular file atomically, keeps its mode, leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/out.txt`;
    await writeOutputText(path, "one");
    await Deno.chmod(path, 0o640);
    await writeOutputText(path, "two");
    assert.equal(await Deno.readTextFile(path), "two");
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o640);
    // A failing writer leaves the old file whole and no temporary behind.
    await assert.rejects(() =>
      writeOutput(path, async (f) => {
        await f.write(new TextEncoder().encode("partial"));
        throw new Error("boom");
      }), /boom/);
    assert.equal(await Deno.readTextFile(path), "two");
    assert.deepEqual(names(dir), ["out.txt"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a link is written through: its target is replaced, the link stays", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/real.txt`, "old");
    await Deno.symlink(`${dir}/real.txt`, `${dir}/link.txt`);
    await writeOutputText(`${dir}/link.txt`, "new");
    assert.ok(Deno.lstatSync(`${dir}/link.txt`).isSymlink);
    assert.equal(await Deno.readTextFile(`${dir}/real.txt`), "new");
    await Deno.symlink(`${dir}/gone.txt`, `${dir}/dangling.txt`);
    await assert.rejects(
      () => writeOutputText(`${dir}/dangling.txt`, "x"),
      refused(/link to a missing file/),
    );
    await Deno.symlink(`${dir}/loop1`, `${dir}/loop2`);
    await Deno.symlink(`${dir}/loop2`, `${dir}/loop1`);
    await assert.rejects(() => writeOutputText(`${dir}/loop1`, "x"), refused(/loop1: cannot write: .*ELOOP/));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("non-regular targets are refused and never replaced: a folder, a named pipe, a socket", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/folder`);
    await assert.rejects(
      () => writeOutputText(`${dir}/folder`, "x", { label: "--output" }),
      refused(/^--output .*folder: exists and is a folder, not a regular file/),
    );
    const mk = await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
    assert.ok(mk.success);
    // Would block forever if opened; refused at once instead.
    await assert.rejects(
      () => writeOutputText(`${dir}/fifo`, "x"),
      refused(/fifo: exists and is a named pipe/),
    );
    assert.ok(Deno.lstatSync(`${dir}/fifo`).isFifo);
    const listener = Deno.listen({ transport: "unix", path: `${dir}/sock` });
    try {
      await assert.rejects(
        () => writeOutputText(`${dir}/sock`, "x"),
        refused(/sock: exists and is a socket/),
      );
    } finally {
      listener.close();
    }
    assert.deepEqual(names(dir), ["fifo", "folder"]); // the socket went with its listener
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("device nodes: /dev/null and /dev/full are written in place (ENOSPC is one line), never replaced", async () => {
  await writeOutputText("/dev/null", "fine");
  const before = Deno.statSync("/dev/full");
  await assert.rejects(
    () => writeOutputText("/dev/full", "x".repeat(10000), { label: "--dump-batch" }),
    refused(/^--dump-batch \/dev\/full: cannot write: no space left on device \(ENOSPC\)$/),
  );
  const after = Deno.statSync("/dev/full");
  assert.ok(after.isCharDevice);
  assert.equal(after.ino, before.ino);
  assert.equal((await checkOutputFile("/dev/stdout")).kind, "stream");
  assert.equal((await checkOutputFile("/dev/null")).kind, "stream");
  // A device nobody streams to (here the kernel's random source) is refused.
  await assert.rejects(() => checkOutputFile("/dev/urandom"), refused(/exists and is a character device/));
});

Deno.test("an input is never an output: same path, another spelling, a link, a hard link", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const scan = `${dir}/scan.nii.gz`;
    await Deno.writeTextFile(scan, "scan");
    await Deno.symlink(scan, `${dir}/alias.nii.gz`);
    await Deno.link(scan, `${dir}/hard.nii.gz`);
    await Deno.mkdir(`${dir}/sub`);
    for (const out of [scan, `${dir}/sub/../scan.nii.gz`, `${dir}/alias.nii.gz`, `${dir}/hard.nii.gz`]) {
      await assert.rejects(
        () => writeOutputText(out, "labels", { inputs: [scan], label: "--output" }),
        refused(/is the input .*scan\.nii\.gz; refusing to overwrite an input/),
        out,
      );
    }
    assert.equal(await Deno.readTextFile(scan), "scan");
    await writeOutputText(`${dir}/labels.nii.gz`, "labels", { inputs: [scan] });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("missing parent folder, a file used as a folder: one line naming the path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => writeOutputText(`${dir}/no/such/out.txt`, "x"),
      refused(/out\.txt: cannot write: folder .*no\/such does not exist/),
    );
    await Deno.writeTextFile(`${dir}/file`, "");
    await assert.rejects(
      () => writeOutputText(`${dir}/file/out.txt`, "x"),
      refused(/file\/out\.txt: cannot write: a part of the path is not a folder \(ENOTDIR\)/),
    );
    await assert.rejects(
      () => prepareOutputDir(`${dir}/file`),
      refused(/exists and is a file, not a folder/),
    );
    await assert.rejects(() => prepareOutputDir(`${dir}/file/sub`), refused(/ENOTDIR/));
    assert.deepEqual(await prepareOutputDir(`${dir}/a/b`), { created: true });
    assert.deepEqual(await prepareOutputDir(`${dir}/a/b`), { created: false });
    assert.deepEqual(names(`${dir}/a/b`), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("outputError maps OS errors to one line and leaves bugs and user errors alone", () => {
  const enospc = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
  const mapped = outputError("/x/out.bin", enospc, "--out") as Error;
  assert.ok(mapped instanceof OutputError);
  assert.equal(mapped.message, "--out /x/out.bin: cannot write: no space left on device (ENOSPC)");
  const perm = outputError(
    "/x",
    new Deno.errors.PermissionDenied("Permission denied (os error 13)"),
  ) as Error;
  assert.ok(perm instanceof OutputError);
  const bug = new TypeError("x is undefined");
  assert.equal(outputError("/x", bug), bug);
  const user = new OutputError("already one line");
  assert.equal(outputError("/x", user), user);
});

Deno.test({
  name:
    "read-only file system and a full disk (tmpfs mounts; ignored where mounting is not allowed): one line",
  ignore: !canMount,
  fn: async (t) => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${dir}/ro`);
      await Deno.mkdir(`${dir}/tiny`);
      assert.ok(await mountTmpfs(`${dir}/ro`, "ro,size=64k"));
      try {
        await t.step("EROFS", async () => {
          await assert.rejects(
            () => writeOutputText(`${dir}/ro/out.txt`, "x"),
            refused(/read-only file system/),
          );
          await assert.rejects(() => checkWritable(`${dir}/ro/out.txt`), refused(/EROFS/));
          await assert.rejects(() => prepareOutputDir(`${dir}/ro/sub`), refused(/EROFS/));
          await assert.rejects(() => appendOutput(`${dir}/ro/log`, new Uint8Array(1)), refused(/EROFS/));
        });
      } finally {
        await umount(`${dir}/ro`);
      }
      assert.ok(await mountTmpfs(`${dir}/tiny`, "size=64k"));
      try {
        await t.step("ENOSPC", async () => {
          await Deno.writeTextFile(`${dir}/tiny/keep.txt`, "kept");
          await assert.rejects(
            () => writeOutputBytes(`${dir}/tiny/keep.txt`, new Uint8Array(1 << 20)),
            refused(/keep\.txt: cannot write: no space left on device/),
          );
          assert.equal(await Deno.readTextFile(`${dir}/tiny/keep.txt`), "kept");
          assert.deepEqual(names(`${dir}/tiny`), ["keep.txt"]);
        });
      } finally {
        await umount(`${dir}/tiny`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: `a folder without write permission: one line${isRoot ? " (as user nobody, via setpriv)" : ""}`,
  ignore: !!nobodyCannotRead,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.chmod(dir, 0o755); // nobody may enter but not write
      const script = `${dir}/probe.ts`;
      await Deno.writeTextFile(
        script,
        `import { checkWritable } from "${new URL("./safe_output.ts", import.meta.url).href}";
try { await checkWritable("${dir}/out.bin", { label: "--output" }); console.log("WROTE"); }
catch (e) { console.log(e.constructor.name + ": " + e.message); }`,
      );
      const deno = Deno.execPath();
      // nobody's own Deno cache (root's is not readable to it).
      const cache = await Deno.makeTempDir();
      await Deno.chmod(cache, 0o777);
      const cmd = isRoot
        ? new Deno.Command("setpriv", {
          args: ["--reuid=65534", "--regid=65534", "--clear-groups", deno, "run", "-A", "--no-lock", script],
          env: { XDG_RUNTIME_DIR: "/tmp", DENO_DIR: `${cache}` },
        })
        : new Deno.Command(deno, { args: ["run", "-A", "--no-lock", script] });
      await Deno.chmod(dir, 0o555);
      const out = new TextDecoder().decode((await cmd.output()).stdout).trim();
      assert.match(out, /^OutputError: --output .*out\.bin: cannot write: permission denied \(EACCES\)$/);
      await Deno.remove(cache, { recursive: true });
    } finally {
      await Deno.chmod(dir, 0o755);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("/dev/stdout redirected to a file: the output lands after what was printed, not over it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/print.ts`;
    await Deno.writeTextFile(
      script,
      `import { writeOutputText } from "${new URL("./safe_output.ts", import.meta.url).href}";
console.log("first");
await writeOutputText("/dev/stdout", "second\\n");
console.log("third");`,
    );
    const r = await new Deno.Command("sh", {
      args: ["-c", `"${Deno.execPath()}" run -A --no-lock "${script}" > "${dir}/out.txt"`],
      env: { XDG_RUNTIME_DIR: "/tmp" },
    }).output();
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
    assert.equal(await Deno.readTextFile(`${dir}/out.txt`), "first\nsecond\nthird\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
