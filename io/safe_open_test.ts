/** The safe-open helper: non-regular paths are refused without being opened, I/O errors read as one line. */
import { nobodyCannotRead } from "../tests/as_nobody.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { UserError } from "../errors.ts";
import {
  asInputError,
  InputError,
  openInput,
  readInputDir,
  readInputFile,
  readInputText,
  statInput,
} from "./safe_open.ts";

/** Refusals must come at once; a blocking open would hang here, so each call races a timer. */
async function quick<T>(p: Promise<T>, ms = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still blocked after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function refused(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(quick(p), (err: Error) => {
    assert.ok(err instanceof InputError, `${err.name}: ${err.message}`);
    assert.ok(err instanceof UserError);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes("\n"));
    return true;
  });
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "safe_open_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function mkfifo(path: string) {
  const r = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.equal(r.code, 0, "mkfifo failed");
}

Deno.test("safe_open: a regular file (and a symlink to one) opens and reads", async () => {
  await withDir(async (dir) => {
    const f = join(dir, "a.txt");
    await Deno.writeTextFile(f, "hello");
    await Deno.symlink(f, join(dir, "link"));
    assert.equal(await readInputText(f), "hello");
    assert.equal(await readInputText(join(dir, "link")), "hello");
    assert.equal((await statInput(f)).size, 5);
    const h = await openInput(f);
    const buf = new Uint8Array(5);
    assert.equal(await h.read(buf), 5);
    h.close();
  });
});

Deno.test("safe_open: a FIFO is refused at once by every entry point, never opened", async () => {
  await withDir(async (dir) => {
    const fifo = join(dir, "scan.nii.gz");
    await mkfifo(fifo);
    for (const call of [openInput, statInput, readInputFile, readInputText]) {
      await refused(call(fifo), /scan\.nii\.gz: is a named pipe \(FIFO\), not a regular file/);
    }
    await Deno.symlink(fifo, join(dir, "via_link"));
    await refused(openInput(join(dir, "via_link")), /via_link: is a named pipe/);
  });
});

Deno.test("safe_open: folders, devices and sockets are refused with what they are", async () => {
  await withDir(async (dir) => {
    await refused(openInput(dir), /: is a folder, not a file$/);
    await refused(openInput("/dev/null"), /^\/dev\/null: is a character device/);
    await refused(readInputFile("/dev/zero"), /^\/dev\/zero: is a character device/);
    const sock = join(dir, "s.sock");
    const listener = Deno.listen({ transport: "unix", path: sock });
    try {
      await refused(openInput(sock), /s\.sock: is a socket/);
    } finally {
      listener.close();
    }
  });
});

Deno.test("safe_open: missing files, symlink loops and file-as-folder are one line naming the path", async () => {
  await withDir(async (dir) => {
    await refused(openInput(join(dir, "nope.nii")), /nope\.nii: not found$/);
    const loop = join(dir, "loop");
    await Deno.symlink(loop, loop);
    await refused(openInput(loop), /loop: symlink loop \(too many levels of symbolic links\)$/);
    await refused(readInputDir(loop), /loop: symlink loop/);
    const f = join(dir, "f");
    await Deno.writeTextFile(f, "x");
    await refused(openInput(join(f, "inner")), /f\/inner: not found \(a part of the path is not a folder\)/);
    await refused(readInputDir(f), /f: is a file, not a folder$/);
    await refused(readInputDir(join(dir, "absent")), /absent: not found$/);
  });
});

Deno.test("safe_open: maxBytes refuses a large file before reading it", async () => {
  await withDir(async (dir) => {
    const f = join(dir, "big.json");
    await Deno.writeFile(f, new Uint8Array(2000));
    await refused(readInputText(f, { maxBytes: 1000, what: "config file" }), /big\.json: 2000 bytes, over/);
    assert.equal((await readInputFile(f, { maxBytes: 2000 })).length, 2000);
  });
});

Deno.test("safe_open: asInputError maps OS errors (EIO too) and leaves bugs and user errors alone", () => {
  const eio = Object.assign(new Error("Input/output error (os error 5): read 'x'"), { code: "EIO" });
  const mapped = asInputError("/data/x.nii", eio);
  assert.ok(mapped instanceof InputError);
  assert.equal(mapped.message, "/data/x.nii: cannot read: Input/output error (EIO)");
  const bug = new TypeError("undefined is not a function");
  assert.equal(asInputError("x", bug), bug);
  const user = new UserError("x: already explained");
  assert.equal(asInputError("x", user), user);
  assert.equal(asInputError("x", new Deno.errors.BadResource("closed")).constructor, Deno.errors.BadResource);
});

/** Root reads anything, so permission is tested in a subprocess that runs as nobody (setpriv, util-linux). */
Deno.test({
  name: "safe_open: an unreadable file is 'permission denied', also when run as nobody",
  ignore: !!nobodyCannotRead,
  fn: async () => {
    const hasSetpriv =
      (await new Deno.Command("sh", { args: ["-c", "command -v setpriv"] }).output()).code === 0;
    await withDir(async (dir) => {
      await Deno.chmod(dir, 0o755);
      const f = join(dir, "secret.pth");
      await Deno.writeTextFile(f, "x");
      await Deno.chmod(f, 0o000);
      if (Deno.uid() !== 0) {
        await refused(openInput(f), /secret\.pth: permission denied$/);
        return;
      }
      assert.ok(hasSetpriv, "running as root, this test needs setpriv (util-linux) to drop to nobody");
      const code = `import { readInputFile } from ${
        JSON.stringify(new URL("./safe_open.ts", import.meta.url).href)
      };
      try { await readInputFile(${JSON.stringify(f)}); console.log("read it"); }
      catch (e) { console.log(e.name + ": " + e.message); }`;
      const script = join(dir, "probe.ts");
      await Deno.writeTextFile(script, code);
      const out = await new Deno.Command("setpriv", {
        args: [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          Deno.execPath(),
          "run",
          "-A",
          "--no-lock",
          script,
        ],
        env: { DENO_DIR: Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? "/root", ".cache/deno") },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.match(text, /InputError: .*secret\.pth: permission denied/, text);
    });
  },
});
