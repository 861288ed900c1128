/**
 * Backend selection (`auto|webgpu|wasm|cpu`) and the WebGPU binding-size guard.
 *
 * tfjs-webgpu silently reads back zeros for a tensor larger than the device's maxStorageBufferBindingSize,
 * so on webgpu every kernel output and upload is checked against that limit and refused with a clear error.
 */
import { ConfigError, UserError } from "../errors.ts";
import { tf } from "./tf.ts";
import { wasmThreads, wasmThreadsWanted } from "./wasm_threads.ts";

export const BACKEND_NAMES = ["auto", "webgpu", "wasm", "cpu"] as const;
export type BackendName = typeof BACKEND_NAMES[number];

export interface BackendChoice {
  backend: "webgpu" | "wasm" | "cpu";
  /** Adapter description for webgpu ("llvmpipe (LLVM 15...)"), else undefined. */
  adapter?: string;
  /** Whether the WebGPU adapter is a real GPU rather than a software fallback. */
  hardware?: boolean;
  /** Largest tensor in bytes one kernel may bind (webgpu only). */
  maxBindingBytes?: number;
  /** The limits the WebGPU device granted (webgpu only). */
  limits?: DeviceLimits;
  /** Threads the wasm backend runs (wasm only; see engine/wasm_threads.ts and TFJS_WASM_THREADS). */
  threads?: number;
  /** One sentence saying why this backend was picked. */
  reason: string;
}

/** Thrown when a tensor would exceed what the device can bind; never silently zeros. */
export class BindingLimitError extends UserError {
  constructor(public bytes: number, public limit: number, public shape: number[]) {
    super(
      `tensor of shape [${shape}] needs ${(bytes / 2 ** 20).toFixed(1)} MiB, over the WebGPU ` +
        `maxStorageBufferBindingSize of ${
          (limit / 2 ** 20).toFixed(1)
        } MiB; use a smaller batch or chunk size`,
    );
  }
}

/** What `auto` must avoid: e.g. training needs Conv2DBackpropFilter, which tfjs-backend-wasm lacks. */
export interface BackendNeeds {
  /** Kernel names the job will run (forward and backward); wasm is skipped when it lacks one. */
  kernels?: string[];
}

interface AdapterInfo {
  description: string;
  hardware: boolean;
  limits: GPUSupportedLimits;
}

async function probeAdapter(): Promise<AdapterInfo | undefined> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return undefined;
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) return undefined;
    const info = adapter.info;
    const description = [info.vendor, info.architecture, info.device, info.description]
      .filter((s) => s && s !== "0").join(" ").trim() || "unknown adapter";
    const software = info.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader|software/i.test(description);
    return { description, hardware: !software, limits: adapter.limits };
  } catch {
    return undefined;
  }
}

/** Kernels a backend lacks, of those asked for. */
export function missingKernels(backend: string, kernels: string[] = []): string[] {
  return kernels.filter((k) => !tf.getKernel(k, backend));
}

let installedGuard: object | undefined;

/** Wraps the webgpu backend so no output or upload can exceed the binding limit. */
function installBindingGuard(limit: number) {
  const backend = tf.backend() as unknown as {
    makeTensorInfo: (shape: number[], dtype: string, values?: unknown) => unknown;
    write: (values: unknown, shape: number[], dtype: string) => unknown;
  };
  if (installedGuard === backend) return;
  installedGuard = backend;
  const check = (shape: number[], dtype: string) => {
    const bytes = shape.reduce((a, b) => a * b, 1) * (dtype === "complex64" ? 8 : 4);
    if (bytes > limit) throw new BindingLimitError(bytes, limit, shape);
  };
  const make = backend.makeTensorInfo.bind(backend);
  backend.makeTensorInfo = (shape, dtype, values) => {
    check(shape, dtype);
    return make(shape, dtype, values);
  };
  const write = backend.write.bind(backend);
  backend.write = (values, shape, dtype) => {
    check(shape, dtype);
    return write(values, shape, dtype);
  };
}

/** The device limits that size our work, as the device granted them (tfjs asks for the adapter's maxima). */
export interface DeviceLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
}

/** The active WebGPU device's granted limits (undefined off webgpu). */
export function deviceLimits(): DeviceLimits | undefined {
  if (tf.getBackend() !== "webgpu") return undefined;
  const l = (tf.backend() as unknown as { device: GPUDevice }).device.limits;
  return {
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
  };
}

/**
 * The largest tensor one kernel may bind on the active backend, in bytes (Infinity off webgpu): a storage
 * binding can be no larger than its buffer, so the smaller of the two limits.
 */
export function bindingLimit(): number {
  const l = deviceLimits();
  return l ? Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize) : Infinity;
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;

async function activate(name: "webgpu" | "wasm" | "cpu"): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok || tf.getBackend() !== name) throw new Error(`backend ${name} failed to initialise`);
  await tf.ready();
}

/**
 * Picks and activates a backend. `auto`: a hardware WebGPU adapter, else wasm when it has every kernel
 * the job needs, else cpu. An explicit name is honoured or fails with a clear error.
 */
export async function selectBackend(
  want: BackendName,
  needs: BackendNeeds = {},
  log: (line: string) => void = (s) => console.error(s),
): Promise<BackendChoice> {
  if (!BACKEND_NAMES.includes(want)) {
    throw new ConfigError(`--backend: "${want}" is not one of ${BACKEND_NAMES.join(", ")}`);
  }
  let choice: BackendChoice;
  const adapter = want === "auto" || want === "webgpu" ? await probeAdapter() : undefined;
  if (want === "webgpu") {
    if (!adapter) throw new ConfigError("--backend webgpu: no WebGPU adapter (navigator.gpu gave none)");
    choice = {
      backend: "webgpu",
      adapter: adapter.description,
      hardware: adapter.hardware,
      reason: `asked for webgpu; adapter ${adapter.description}${adapter.hardware ? "" : " (software)"}`,
    };
  } else if (want === "wasm" || want === "cpu") {
    const missing = missingKernels(want, needs.kernels);
    if (missing.length) {
      throw new ConfigError(`--backend ${want}: lacks kernel(s) ${missing.join(", ")} that this job needs`);
    }
    choice = { backend: want, reason: `asked for ${want}` };
  } else if (adapter?.hardware) {
    choice = {
      backend: "webgpu",
      adapter: adapter.description,
      hardware: true,
      reason: `auto: hardware WebGPU adapter ${adapter.description}`,
    };
  } else {
    const why = adapter ? `WebGPU adapter ${adapter.description} is software` : "no WebGPU adapter";
    const missing = missingKernels("wasm", needs.kernels);
    choice = missing.length
      ? { backend: "cpu", reason: `auto: ${why}; wasm lacks ${missing.join(", ")}, so cpu` }
      : { backend: "wasm", reason: `auto: ${why}; wasm has every kernel needed` };
  }
  // A bad TFJS_WASM_THREADS is a one-line user error here, not a failed backend init inside tfjs.
  if (choice.backend === "wasm") wasmThreadsWanted();
  await activate(choice.backend);
  if (choice.backend === "wasm") {
    const n = wasmThreads() ?? 1;
    choice.threads = n;
    choice.reason += `; ${n} thread${n === 1 ? "" : "s"}`;
  }
  if (choice.backend === "webgpu") {
    choice.maxBindingBytes = bindingLimit();
    installBindingGuard(choice.maxBindingBytes);
    const granted = deviceLimits()!, offered = adapter?.limits;
    choice.limits = granted;
    log(
      `webgpu device limits: storage binding ${mib(granted.maxStorageBufferBindingSize)} (adapter ` +
        `${offered ? mib(offered.maxStorageBufferBindingSize) : "?"}), buffer ${
          mib(granted.maxBufferSize)
        }, ` +
        `workgroup storage ${granted.maxComputeWorkgroupStorageSize} B, ${granted.maxComputeInvocationsPerWorkgroup} ` +
        `invocations per workgroup; no tensor may exceed ${mib(choice.maxBindingBytes)}`,
    );
  }
  log(`backend: ${choice.backend} (${choice.reason})`);
  return choice;
}
