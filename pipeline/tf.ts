/**
 * The one place tfjs is imported and its backends registered, so every module shares a single engine
 * (importing tfjs-core from two places would give two registries and "backend not found" errors).
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-webgpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { createRequire } from "node:module";

// The wasm backend fetches its .wasm binaries at init; point it at the copy inside node_modules.
const wasmEntry = createRequire(import.meta.url).resolve("@tensorflow/tfjs-backend-wasm");
setWasmPaths(wasmEntry.slice(0, wasmEntry.lastIndexOf("/") + 1));

// tfjs-backend-cpu prints an advert for tfjs-node (which cannot be installed here) on first use.
const warn = console.warn;
console.warn = (...args: unknown[]) => {
  if (typeof args[0] === "string" && args[0].includes("tfjs-node")) return;
  warn(...args);
};
const log = console.log;
console.log = (...args: unknown[]) => {
  if (typeof args[0] === "string" && args[0].includes("looks like you are running TensorFlow.js in Node")) return;
  log(...args);
};

export { tf };
