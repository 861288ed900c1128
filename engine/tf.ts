/**
 * The one place tfjs is imported and its backends registered, so every module shares a single engine
 * (importing tfjs-core from two places would give two registries and "backend not found" errors).
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-webgpu";
// tfjs-core alone registers no gradient functions; the union package's bundle registers them into the
// global gradient registry this engine reads (tf.grads / variableGrads fail with "no gradient" without it).
import "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { createRequire } from "node:module";
import { installThreadedWasm } from "./wasm_threads.ts";
import { installWasmKernels } from "./wasm_kernels.ts";

// The wasm backend fetches its .wasm binaries at init; point it at the copy inside node_modules, or at
// TFJS_WASM_DIR where there is none (a bundled build, e.g. the GPU benchmark in bench/gpu.sh).
function wasmDir(): string | undefined {
  try {
    const fromEnv = Deno.env.get("TFJS_WASM_DIR");
    if (fromEnv) return fromEnv.endsWith("/") ? fromEnv : fromEnv + "/";
    const entry = createRequire(import.meta.url).resolve("@tensorflow/tfjs-backend-wasm");
    return entry.slice(0, entry.lastIndexOf("/") + 1);
  } catch {
    return undefined; // no env/read permission or no node_modules: wasm then fails to initialise with tfjs's own message; cpu and webgpu still work
  }
}
installWasmKernels();
const dir = wasmDir();
if (dir) {
  setWasmPaths(dir);
  installThreadedWasm(dir);
}

// tfjs-backend-cpu prints an advert for tfjs-node (which cannot be installed here) on first use.
const warn = console.warn;
console.warn = (...args: unknown[]) => {
  if (typeof args[0] === "string" && args[0].includes("tfjs-node")) return;
  warn(...args);
};
const log = console.log;
console.log = (...args: unknown[]) => {
  if (typeof args[0] === "string" && args[0].includes("looks like you are running TensorFlow.js in Node")) {
    return;
  }
  log(...args);
};

// Mesa's WebGPU adapter probe prints "XDG_RUNTIME_DIR is invalid" to stderr when the variable is unset.
try {
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
} catch {
  // no --allow-env: the probe's message is noise, not an error
}

export { tf };
