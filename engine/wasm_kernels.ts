/**
 * Identity, Slice, SplitV and Unpack for the wasm backend without copying their whole input.
 *
 * Why: tfjs-backend-wasm 4.22 implements these three in JavaScript, and its Slice starts with
 * `backend.readSync(x)`, which copies the entire input out of the wasm heap (HEAPU8.slice) before it copies
 * the part it wants; SplitV and Unpack call that Slice once per output. Splitting [3, 12, 4096, 64] (SAM's
 * q, k, v at 1024 px) thus copied 113 MiB to produce 38 MiB, and one ViT-B encoder forward spent about 7 s of
 * its 36 s in such copies. These replacements read the input through a view of the heap instead, copying
 * only the output; the numbers are the same bytes. tfjs's own kernels still serve string tensors.
 *
 * Identity is the hidden cost of training: tfjs keeps each recorded op's inputs for the backward pass as
 * `clone()`s, which the cpu and webgpu backends make by sharing the data (a reference count) and wasm by a
 * full copy, so on wasm every tensor the tape keeps existed twice. Sharing is what tfjs's cpu kernel and
 * wasm's own Reshape already do, and tensors are immutable, so nothing can tell the difference but memory.
 */
import * as tfc from "@tensorflow/tfjs-core";

type TypedArray = Float32Array | Int32Array | Uint8Array;

/** The part of tfjs-backend-wasm's BackendWasm these kernels use. */
interface WasmHeapBackend {
  incRef(dataId: tfc.DataId): void;
  makeOutput(shape: number[], dtype: tfc.DataType): tfc.TensorInfo;
  typedArrayFromHeap(t: tfc.TensorInfo): TypedArray;
}

/**
 * Copies x[begin : begin + size] into out (both row-major). The trailing axes that are taken whole merge with
 * the innermost partial one into runs of contiguous elements, copied with one `set` each.
 */
export function copyBox(
  x: TypedArray,
  shape: number[],
  begin: number[],
  size: number[],
  out: TypedArray,
): void {
  const rank = shape.length;
  const strides = tfc.util.computeStrides(shape);
  const stride = (a: number) => (a === rank - 1 ? 1 : strides[a]);
  // Axis k: the innermost axis not taken whole; everything inside it is one run.
  let k = rank - 1;
  while (k > 0 && begin[k] === 0 && size[k] === shape[k]) k--;
  const run = rank === 0 ? 1 : size[k] * (k === rank - 1 ? 1 : strides[k]);
  const outer = size.slice(0, k);
  const count = outer.reduce((a, b) => a * b, 1);
  if (count === 0 || run === 0) return;
  const idx = new Array(k).fill(0);
  for (let n = 0; n < count; n++) {
    let src = rank === 0 ? 0 : begin[k] * stride(k);
    for (let a = 0; a < k; a++) src += (begin[a] + idx[a]) * stride(a);
    out.set(x.subarray(src, src + run), n * run);
    for (let a = k - 1; a >= 0; a--) {
      if (++idx[a] < outer[a]) break;
      idx[a] = 0;
    }
  }
}

/** One slice as a new wasm tensor; views of the heap are taken after makeOutput, which may grow it. */
function sliceInfo(
  backend: WasmHeapBackend,
  x: tfc.TensorInfo,
  begin: number[],
  size: number[],
): tfc.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  copyBox(backend.typedArrayFromHeap(x), x.shape, begin, size, backend.typedArrayFromHeap(out));
  return out;
}

type KernelArgs = {
  inputs: tfc.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tfc.NamedAttrMap;
};

function slice({ inputs, backend, attrs }: KernelArgs) {
  const x = inputs.x as tfc.TensorInfo;
  const a = attrs as unknown as tfc.SliceAttrs;
  const [begin, size] = tfc.slice_util.parseSliceParams(x as tfc.Tensor, a.begin, a.size);
  return sliceInfo(backend as WasmHeapBackend, x, begin, size);
}

function splitV({ inputs, backend, attrs }: KernelArgs) {
  const x = inputs.x as tfc.TensorInfo;
  const a = attrs as unknown as tfc.SplitVAttrs;
  const axis = tfc.util.parseAxisParam(a.axis, x.shape)[0];
  const sizes = tfc.backend_util.prepareSplitSize(x as tfc.Tensor, a.numOrSizeSplits, axis);
  const begin = new Array(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = x.shape.slice();
    size[axis] = s;
    const out = sliceInfo(backend as WasmHeapBackend, x, begin, size);
    begin[axis] += s;
    return out;
  });
}

function unpack({ inputs, backend, attrs }: KernelArgs) {
  const x = inputs.value as tfc.TensorInfo;
  const a = attrs as unknown as tfc.UnpackAttrs;
  const axis = a.axis < 0 ? a.axis + x.shape.length : a.axis;
  const outShape = x.shape.filter((_, i) => i !== axis);
  const begin = new Array(x.shape.length).fill(0);
  const size = x.shape.slice();
  size[axis] = 1;
  const outs: tfc.TensorInfo[] = [];
  for (let i = 0; i < x.shape[axis]; i++) {
    begin[axis] = i;
    const { dataId, dtype } = sliceInfo(backend as WasmHeapBackend, x, begin, size);
    outs.push({ dataId, dtype, shape: outShape });
  }
  return outs;
}

function identity({ inputs, backend }: KernelArgs) {
  const x = inputs.x as tfc.TensorInfo;
  (backend as WasmHeapBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

const REPLACED: Record<string, (args: KernelArgs) => tfc.TensorInfo | tfc.TensorInfo[]> = {
  Identity: identity,
  Slice: slice,
  SplitV: splitV,
  Unpack: unpack,
};

/** Names of the kernels this module replaces for wasm. */
export const ZERO_COPY_KERNELS = Object.keys(REPLACED);

/**
 * Puts the zero-copy kernels in place of tfjs's for "wasm" (idempotent). String tensors still go to the
 * original kernel, which is the only one that knows their storage.
 */
export function installWasmKernels(): void {
  for (const [name, f] of Object.entries(REPLACED)) {
    const original = tfc.getKernel(name, "wasm");
    if (!original || (original.kernelFunc as { zeroCopy?: boolean }).zeroCopy) continue;
    const kernelFunc = Object.assign(
      (args: KernelArgs) => {
        const x = (args.inputs.x ?? args.inputs.value) as tfc.TensorInfo;
        return x.dtype === "string" ? original.kernelFunc(args as Parameters<tfc.KernelFunc>[0]) : f(args);
      },
      { zeroCopy: true },
    );
    tfc.unregisterKernel(name, "wasm");
    tfc.registerKernel({ ...original, kernelFunc: kernelFunc as unknown as tfc.KernelFunc });
  }
}
