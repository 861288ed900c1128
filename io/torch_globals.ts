/**
 * The torch side of unpickling a checkpoint: the few globals a state dict uses (OrderedDict, the tensor and
 * Parameter rebuild functions, the typed storage classes) as pure data builders, and torch's persistent ids.
 */
import { type GlobalHandler, PickleError } from "./pickle.ts";
import type { HostDtype } from "./host_tensor.ts";

/** A storage as named by the pickle; its bytes live in the file (zip entry data/<key>, or a legacy record). */
export interface PthStorage {
  key: string;
  dtype: HostDtype;
  numel: number;
}

/** A tensor not yet read: a view (offset, shape, strides, in elements) into a storage. */
export interface PthTensorRef {
  kind: "pth-tensor";
  storage: PthStorage;
  offset: number;
  shape: number[];
  stride: number[];
}

const STORAGES: Record<string, HostDtype> = {
  FloatStorage: "float32",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  DoubleStorage: "float64",
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
};

/** A storage class as it sits in a persistent id, e.g. torch.FloatStorage. */
class StorageType {
  constructor(readonly dtype: HostDtype) {}
}

/** Storages made by storageFromPid: a tensor may only point at one of these, never at other pickled data. */
const STORAGE_OBJECTS = new WeakSet<object>();

/** True for the tensor placeholders our _rebuild_tensor_v2 handler makes. */
export function isTensorRef(v: unknown): v is PthTensorRef {
  return !!v && typeof v === "object" && (v as PthTensorRef).kind === "pth-tensor";
}

const int = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** The only globals a state dict needs; each handler builds plain data and runs nothing. */
export function torchGlobals(file: string): Map<string, GlobalHandler> {
  const bad = (msg: string): never => {
    throw new PickleError(`${file}: ${msg}`);
  };
  const orderedDict: GlobalHandler = {
    call: (args) => {
      const m = new Map();
      if (args.length && Array.isArray(args[0])) {
        for (const kv of args[0]) if (Array.isArray(kv) && kv.length === 2) m.set(kv[0], kv[1]);
      }
      return m;
    },
  };
  const rebuildTensor = (args: unknown[]): PthTensorRef => {
    const [storage, offset, shape, stride] = args;
    if (!storage || typeof storage !== "object" || !STORAGE_OBJECTS.has(storage)) {
      bad("tensor without a storage");
    }
    if (!int(offset)) bad(`tensor with bad storage offset ${offset}`);
    if (!Array.isArray(shape) || !Array.isArray(stride) || shape.length !== stride.length) {
      bad(`tensor with bad size/stride ${JSON.stringify([shape, stride])}`);
    }
    const s = storage as PthStorage, sh = shape as number[], st = stride as number[];
    if (!sh.every(int) || !st.every(int)) bad(`tensor with bad size/stride ${JSON.stringify([sh, st])}`);
    let n = 1, last = offset as number;
    for (let i = 0; i < sh.length; i++) {
      n *= sh[i];
      last += (sh[i] - 1) * st[i];
    }
    if (!Number.isSafeInteger(n) || !Number.isSafeInteger(last)) bad(`tensor with absurd size [${sh}]`);
    if (n > 0 && last >= s.numel) {
      bad(
        `tensor of size [${sh}], stride [${st}], offset ${offset} needs storage "${s.key}" to hold ` +
          `${last + 1} elements, it holds ${s.numel}`,
      );
    }
    return {
      kind: "pth-tensor",
      storage: s,
      offset: offset as number,
      shape: sh.slice(),
      stride: st.slice(),
    };
  };
  const g = new Map<string, GlobalHandler>([
    ["collections.OrderedDict", orderedDict],
    ["torch._utils._rebuild_tensor_v2", { call: rebuildTensor }],
    // Parameter(tensor, requires_grad, hooks[, state]): the tensor is all a state dict needs.
    ["torch._utils._rebuild_parameter", {
      call: (a) => isTensorRef(a[0]) ? a[0] : bad("parameter without a tensor"),
    }],
    ["torch._utils._rebuild_parameter_with_state", {
      call: (a) => isTensorRef(a[0]) ? a[0] : bad("parameter without a tensor"),
    }],
    ["torch.Size", { call: (a) => Array.isArray(a[0]) ? a[0].slice() : bad("torch.Size without a tuple") }],
  ]);
  for (const [name, dtype] of Object.entries(STORAGES)) {
    g.set(`torch.${name}`, { value: new StorageType(dtype) });
  }
  return g;
}

/** Turns torch's persistent id ('storage', type, key, location, numel[, view]) into a PthStorage. */
export function storageFromPid(pid: unknown, file: string, seen: Map<string, PthStorage>): PthStorage {
  const bad = (msg: string): never => {
    throw new PickleError(`${file}: ${msg}`);
  };
  if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) bad(`unsupported persistent id`);
  const [, type, key, , numel, view] = pid as unknown[];
  if (!(type instanceof StorageType)) bad(`storage of unsupported type`);
  if (typeof key !== "string" || !/^[\w.-]{1,64}$/.test(key)) bad(`bad storage key ${JSON.stringify(key)}`);
  if (!int(numel)) bad(`storage "${key}" has bad size ${numel}`);
  if (view !== undefined && view !== null) bad(`storage "${key}" is a legacy storage view (unsupported)`);
  const prev = seen.get(key as string);
  if (prev) {
    if (prev.dtype !== (type as StorageType).dtype || prev.numel !== numel) {
      bad(`storage "${key}" is described twice`);
    }
    return prev;
  }
  const s = { key: key as string, dtype: (type as StorageType).dtype, numel: numel as number };
  seen.set(s.key, s);
  STORAGE_OBJECTS.add(s);
  return s;
}
