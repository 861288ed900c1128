/**
 * tfjs-backend-wasm's threaded SIMD build, made to run under Deno, so the wasm backend uses every core.
 *
 * Why tfjs 4.22 cannot start it by itself here:
 * 1. Its `WASM_HAS_MULTITHREAD_SUPPORT` flag answers false whenever `IS_NODE` (tfjs issue #3830), and Deno's
 *    npm compatibility layer makes `process.versions.node` a string.
 * 2. Forced on, Emscripten's glue takes its Node path: it hands node:worker_threads' `Worker` the `blob:` URL
 *    that tfjs's `locateFile` makes for the pthread worker, and Worker accepts only a file path there
 *    (`ERR_WORKER_PATH`, from `allocateUnusedWorker` in tf-backend-wasm.node.js). Past that, each worker
 *    would `importScripts` tfjs's main script from a Blob holding `wasmFactoryThreadedSimd.toString()`: a
 *    function cut out of the rollup bundle that refers to the bundle's closure variables (`require$$0`...),
 *    which a worker lacks, and Emscripten's Node path reads scripts with `fs.readFileSync`, not from Blobs.
 *
 * So the "wasm" backend factory is replaced here: it runs Emscripten's own self-contained glue from the
 * package's wasm-out/ folder (the file the bundle was built from) and gives it a `Worker` that starts
 * Emscripten's pthread worker code with node:worker_threads' `eval` option, which Deno supports, together
 * with SharedArrayBuffer-backed wasm memory and WebAssembly.Module messages. The kernels tfjs registered for
 * "wasm" run unchanged on the `BackendWasm` built from that module.
 */
import * as tfc from "@tensorflow/tfjs-core";
import { BackendWasm, getThreadsCount, setThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { Worker as NodeWorker } from "node:worker_threads";
import { createRequire } from "node:module";
import nodeOs from "node:os";
import { ConfigError } from "../errors.ts";

const GLUE = "tfjs-backend-wasm-threaded-simd.js";
const WORKER = "tfjs-backend-wasm-threaded-simd.worker.js";
const BINARY = "tfjs-backend-wasm-threaded-simd.wasm";

/** tfjs's own backend priority for wasm (below webgpu, above cpu), kept so `auto` ordering is unchanged. */
const WASM_PRIORITY = 2;

/** The most threads tfjs's C++ side uses: Emscripten starts 8 pthread workers and it caps at those. */
export const MAX_WASM_THREADS = 8;

/**
 * Threads the wasm backend should use: `TFJS_WASM_THREADS` if set (1 = tfjs's single-threaded build), else
 * every logical core, up to MAX_WASM_THREADS.
 */
export function wasmThreadsWanted(): number {
  let text: string | undefined;
  try {
    text = Deno.env.get("TFJS_WASM_THREADS");
  } catch {
    // no --allow-env: the default
  }
  if (text === undefined || text.trim() === "") {
    return Math.min(MAX_WASM_THREADS, Math.max(1, navigator.hardwareConcurrency || 1));
  }
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WASM_THREADS) {
    throw new ConfigError(
      `TFJS_WASM_THREADS: "${text}" is not a whole number of threads from 1 to ${MAX_WASM_THREADS}`,
    );
  }
  return n;
}

/** Threads the active wasm backend runs (1 for the single-threaded build); undefined before wasm starts. */
export function wasmThreads(): number | undefined {
  try {
    return getThreadsCount();
  } catch {
    return undefined;
  }
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The folder holding the threaded glue, its worker and binary: TFJS_WASM_DIR's copy, else wasm-out/. */
function glueDir(wasmDir: string): string | undefined {
  for (const dir of [wasmDir, wasmDir + "../wasm-out/"]) {
    if ([GLUE, WORKER, BINARY].every((f) => isFile(dir + f))) return dir;
  }
  return undefined;
}

/**
 * Runs one of Emscripten's CommonJS files and returns its exports, with our own `global`, `Worker` and `os`.
 * The glue's Node path assigns `global.Worker = worker_threads.Worker` (which would replace Deno's web Worker
 * for the whole process) and then calls `new Worker(path)`: here that assignment lands on a throwaway object
 * and `new Worker` reaches the class given. `os` is there for the core count, see threadedBackend.
 */
function runCommonJs(path: string, worker?: unknown, os?: unknown): Record<string, unknown> {
  const module = { exports: {} as Record<string, unknown> };
  const nodeRequire = createRequire(path);
  const require = (name: string) => name === "os" && os ? os : nodeRequire(name);
  const params = ["module", "exports", "require", "__filename", "__dirname", "global", "Worker"];
  new Function(...params, Deno.readTextFileSync(path))(
    module,
    module.exports,
    require,
    path,
    path.slice(0, path.lastIndexOf("/")),
    {},
    worker,
  );
  return module.exports;
}

/**
 * The `Worker` Emscripten's pthread pool gets: it ignores the file name it is given and starts Emscripten's
 * worker code in a node:worker_threads worker (`eval`). Emscripten unrefs each worker once it has loaded and
 * refs it while it runs a thread; XNNPACK's pool threads run for the life of the backend, so that ref would
 * keep `deno` from ever exiting. It is dropped: the workers only compute for a main thread that waits on
 * them, so they need not hold the process open (until loaded they do, as the backend's start awaits them).
 */
function pthreadWorker(code: string) {
  return class PthreadWorker extends NodeWorker {
    constructor(_file: string) {
      super(code, { eval: true });
    }
    override ref(): void {}
  };
}

interface EmscriptenModule {
  cwrap: (name: string, ret: string | null, args: string[]) => unknown;
  tfjs?: Record<string, unknown>;
}

async function threadedBackend(dir: string, threads: number): Promise<tfc.KernelBackend> {
  const { wasmWorkerContents } = runCommonJs(dir + WORKER) as { wasmWorkerContents: string };
  // The worker code sits in a template literal, so its "\n" escapes became real newlines: put them back.
  // Deno's worker global has a getter-only `location`, which the code's Node path assigns: make it writable.
  const workerCode = 'Object.defineProperty(globalThis, "location", { writable: true, value: undefined });' +
    wasmWorkerContents.replace(/\n/g, "\\n");
  // tfjs's C++ side (init_with_threads_count in backend.cc) caps the thread count at half the logical cores,
  // assuming two hyperthreads a core, and at the 8 workers Emscripten starts. The glue learns the logical
  // cores from Node's os.cpus(), so it is told twice the threads wanted: the cap then lets those through.
  const os = { ...nodeOs, cpus: () => Array.from({ length: 2 * threads }, () => nodeOs.cpus()[0]) };
  const factory = runCommonJs(dir + GLUE, pthreadWorker(workerCode), os) as unknown as (
    config: object,
  ) => Promise<EmscriptenModule>;
  const module = await factory({
    locateFile: (file: string) => dir + (file.endsWith(".wasm") ? BINARY : file),
    // Each worker loads the glue itself (Emscripten's Node path reads this file and evaluates it).
    mainScriptUrlOrBlob: dir + GLUE,
  });
  // The bridge tfjs's own init() builds (tf-backend-wasm's init in backend_wasm.ts), which BackendWasm reads.
  module.tfjs = {
    init: module.cwrap("init", null, []),
    initWithThreadsCount: module.cwrap("init_with_threads_count", null, ["number"]),
    getThreadsCount: module.cwrap("get_threads_count", "number", []),
    registerTensor: module.cwrap("register_tensor", null, ["number", "number", "number"]),
    disposeData: module.cwrap("dispose_data", null, ["number"]),
    dispose: module.cwrap("dispose", null, []),
  };
  setThreadsCount(threads);
  return new BackendWasm(module as never);
}

let installed = false;

/**
 * Replaces tfjs's "wasm" backend factory with one that starts the threaded build when more than one thread is
 * wanted and its files are found under `wasmDir` (or its ../wasm-out/), else tfjs's own single-threaded one.
 */
export function installThreadedWasm(wasmDir: string): void {
  if (installed) return;
  const single = tfc.findBackendFactory("wasm");
  if (!single) return;
  installed = true;
  tfc.removeBackend("wasm");
  tfc.registerBackend("wasm", async () => {
    const threads = wasmThreadsWanted();
    const dir = threads > 1 ? glueDir(wasmDir) : undefined;
    if (!dir) {
      setThreadsCount(1);
      return await single();
    }
    try {
      return await threadedBackend(dir, threads);
    } catch (e) {
      // One line, not tfjs's "Initialization of backend wasm failed" and a stack: one thread still works.
      console.error(`wasm: the threaded build did not start (${(e as Error).message}); running one thread`);
      setThreadsCount(1);
      return await single();
    }
  }, WASM_PRIORITY);
}
