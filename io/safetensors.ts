/**
 * Safetensors read/write: the header is validated in full (sizes, dtypes, ranges) before any tensor memory is
 * allocated, and files are read tensor by tensor so a 375 MB checkpoint costs one copy of its weights.
 */
import { quoted, UserError } from "../errors.ts";
import {
  allocData,
  checkedNumel,
  dataBytes,
  type HostDtype,
  type HostTensor,
  ITEM_SIZE,
  LITTLE_ENDIAN,
  tensorProblem,
} from "./host_tensor.ts";
import { readFully, writeAll } from "./file_io.ts";
import { type OutputOptions, writeOutput } from "./safe_output.ts";
import { openInput } from "./safe_open.ts";

export class SafetensorsError extends UserError {}

const TO_HOST: Record<string, HostDtype> = {
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  F64: "float64",
  I64: "int64",
  I32: "int32",
  I16: "int16",
  I8: "int8",
  U8: "uint8",
  BOOL: "bool",
};
const TO_FILE = Object.fromEntries(Object.entries(TO_HOST).map(([k, v]) => [v, k])) as Record<
  HostDtype,
  string
>;

/** The reference implementation's cap; a larger header is a corrupt or hostile file, not a real checkpoint. */
const MAX_HEADER = 100_000_000;

export interface SafetensorsEntry {
  dtype: HostDtype;
  shape: number[];
  /** Byte range within the data section (after the 8-byte length and the header). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Byte offset of the data section in the file. */
  dataStart: number;
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

export interface SafetensorsContents {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

/**
 * What a file that is not safetensors looks like, from its first bytes, so a checkpoint of another format
 * given in its place is named as such instead of as an absurd header length.
 */
function lookalike(prefix: Uint8Array): string | undefined {
  const [a, b, c, d] = prefix;
  if (a === 0x50 && b === 0x4b && (c === 3 || c === 5) && (d === 4 || d === 6)) {
    return "looks like a PyTorch zip checkpoint";
  }
  if (a === 0x80 && b >= 2 && b <= 5) return "looks like a legacy PyTorch pickle checkpoint";
  if (a === 0x1f && b === 0x8b) return "looks like gzip data";
  return undefined;
}

/** Reads the 8-byte header length; file is only for messages. */
function headerLength(prefix: Uint8Array, fileSize: number, file: string): number {
  // Only a file that fails as safetensors is named by its look-alike: a real header length can start 0x80 0x02.
  const notSafetensors = (why: string) => {
    const other = lookalike(prefix.subarray(0, Math.min(fileSize, 8)));
    return new SafetensorsError(`${file}: not a safetensors file (${other ?? why})`);
  };
  if (fileSize < 8) throw notSafetensors(`${fileSize} bytes, need at least 8`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    throw notSafetensors(`header length ${n} runs past the end of the file, ${fileSize} bytes`);
  }
  if (n > BigInt(MAX_HEADER)) {
    throw new SafetensorsError(`${file}: header length ${n} is over the 100 MB limit`);
  }
  if (n < 2n) throw new SafetensorsError(`${file}: header length ${n} is too small for a JSON object`);
  return Number(n);
}

/** Parses and validates the JSON header against the size of the data section. */
export function parseHeader(
  json: Uint8Array,
  dataStart: number,
  fileSize: number,
  file: string,
): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(json);
  } catch {
    throw new SafetensorsError(`${file}: header is not valid UTF-8`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError(`${file}: header is not valid JSON (${(err as Error).message})`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new SafetensorsError(`${file}: header is not a JSON object`);
  }
  const dataLen = fileSize - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = checkMetadata(raw, file);
      continue;
    }
    const where = `${file}: tensor ${quoted(name)}`;
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
      throw new SafetensorsError(
        `${where}: entry is ${
          JSON.stringify(raw)?.slice(0, 40)
        }, not an object with dtype, shape and data_offsets`,
      );
    }
    for (const key of ["dtype", "shape", "data_offsets"]) {
      if (!Object.hasOwn(raw, key)) throw new SafetensorsError(`${where}: entry has no ${quoted(key)}`);
    }
    const { dtype, shape, data_offsets: offs } = raw as Record<string, unknown>;
    const host = typeof dtype === "string" && Object.hasOwn(TO_HOST, dtype) ? TO_HOST[dtype] : undefined;
    if (!host) throw new SafetensorsError(`${where}: unsupported dtype ${JSON.stringify(dtype)}`);
    const n = checkedNumel(shape);
    if (n === undefined) throw new SafetensorsError(`${where}: bad shape ${JSON.stringify(shape)}`);
    if (
      !Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offs[0] > offs[1]
    ) {
      throw new SafetensorsError(`${where}: bad data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as number[];
    if (end > dataLen) {
      throw new SafetensorsError(
        `${where}: data_offsets [${begin}, ${end}] run past the data (${dataLen} bytes)`,
      );
    }
    if (end - begin !== n * ITEM_SIZE[host]) {
      throw new SafetensorsError(
        `${where}: shape [${shape}] of ${dtype} needs ${n * ITEM_SIZE[host]} bytes, data_offsets give ${
          end - begin
        }`,
      );
    }
    entries.set(name, { dtype: host, shape: (shape as number[]).slice(), begin, end });
  }
  const sorted = [...entries].filter(([, e]) => e.end > e.begin).sort((a, b) => a[1].begin - b[1].begin);
  for (let i = 1; i < sorted.length; i++) {
    const [prevName, prev] = sorted[i - 1];
    const [name, cur] = sorted[i];
    if (cur.begin < prev.end) {
      throw new SafetensorsError(
        `${file}: tensors ${quoted(prevName)} and ${quoted(name)} have overlapping data ranges`,
      );
    }
  }
  return { dataStart, entries, metadata };
}

function checkMetadata(raw: unknown, file: string): Record<string, string> {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    throw new SafetensorsError(`${file}: __metadata__ is not an object`);
  }
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== "string") {
      throw new SafetensorsError(`${file}: __metadata__ value for ${quoted(k)} is not a string`);
    }
  }
  return { ...(raw as Record<string, string>) };
}

function requireLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new SafetensorsError("safetensors support needs a little-endian machine");
}

/** Decodes a whole safetensors file held in memory; each tensor gets its own copy of its bytes. */
export function decodeSafetensorsWithMetadata(bytes: Uint8Array, file = "<memory>"): SafetensorsContents {
  requireLittleEndian();
  const n = headerLength(bytes, bytes.length, file);
  const header = parseHeader(bytes.subarray(8, 8 + n), 8 + n, bytes.length, file);
  const tensors = new Map<string, HostTensor>();
  for (const [name, e] of header.entries) {
    const data = allocData(e.dtype, (e.end - e.begin) / ITEM_SIZE[e.dtype]);
    dataBytes(data).set(bytes.subarray(header.dataStart + e.begin, header.dataStart + e.end));
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata: header.metadata };
}

/** Decodes a safetensors file held in memory (tensors only). */
export function decodeSafetensors(bytes: Uint8Array, file = "<memory>"): Map<string, HostTensor> {
  return decodeSafetensorsWithMetadata(bytes, file).tensors;
}

/** Reads and validates only the header of a safetensors file (cheap: for inspecting big files). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const f = await openInput(path);
  try {
    return await readHeaderFrom(f, path);
  } finally {
    f.close();
  }
}

async function readHeaderFrom(f: Deno.FsFile, path: string): Promise<SafetensorsHeader> {
  requireLittleEndian();
  const size = (await f.stat()).size;
  const prefix = new Uint8Array(8);
  if (size >= 8) await readFully(f, 0, prefix, path, SafetensorsError);
  const n = headerLength(prefix, size, path);
  const json = new Uint8Array(n);
  await readFully(f, 8, json, path, SafetensorsError);
  return parseHeader(json, 8 + n, size, path);
}

/** Reads a safetensors file tensor by tensor, straight from disk into each tensor's typed array. */
export async function readSafetensorsWithMetadata(
  path: string,
  opts: { filter?: (name: string) => boolean } = {},
): Promise<SafetensorsContents> {
  const f = await openInput(path);
  try {
    const header = await readHeaderFrom(f, path);
    const tensors = new Map<string, HostTensor>();
    for (const [name, e] of header.entries) {
      if (opts.filter && !opts.filter(name)) continue;
      const data = allocData(e.dtype, (e.end - e.begin) / ITEM_SIZE[e.dtype]);
      await readFully(f, header.dataStart + e.begin, dataBytes(data), path, SafetensorsError);
      tensors.set(name, { dtype: e.dtype, shape: e.shape, data });
    }
    return { tensors, metadata: header.metadata };
  } finally {
    f.close();
  }
}

/** Reads a safetensors file (tensors only, in header order). */
export async function readSafetensors(path: string): Promise<Map<string, HostTensor>> {
  return (await readSafetensorsWithMetadata(path)).tensors;
}

type TensorSet = Map<string, HostTensor> | Record<string, HostTensor>;

/** Builds the header bytes (padded with spaces to 8 bytes, as the reference writer does) and the data layout. */
function layout(tensors: TensorSet, metadata?: Record<string, string>) {
  requireLittleEndian();
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    checkMetadata(metadata, "metadata");
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const [name, t] of list) {
    if (name === "__metadata__") throw new SafetensorsError(`"__metadata__" cannot be a tensor name`);
    const problem = tensorProblem(t);
    if (problem) throw new SafetensorsError(`tensor ${quoted(name)}: ${problem}`);
    const len = t.data.byteLength;
    header[name] = { dtype: TO_FILE[t.dtype], shape: t.shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  padded.set(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded.length), true);
  return { list, prefix, json: padded, dataLen: offset };
}

/** Encodes tensors (and optional string metadata) to safetensors bytes in memory. */
export function encodeSafetensors(tensors: TensorSet, metadata?: Record<string, string>): Uint8Array {
  const { list, prefix, json, dataLen } = layout(tensors, metadata);
  const out = new Uint8Array(8 + json.length + dataLen);
  out.set(prefix);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const [, t] of list) {
    out.set(dataBytes(t.data), at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * Writes tensors to path through the safe-output helper (a temporary file in the same folder, then rename; a
 * bad target or an I/O error is an OutputError), streaming each tensor's bytes so no second copy of the weights
 * is built. out names the command's inputs (never overwritten) and the flag for messages.
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorSet,
  metadata?: Record<string, string>,
  out: OutputOptions = {},
): Promise<void> {
  const { list, prefix, json } = layout(tensors, metadata);
  await writeOutput(path, async (f) => {
    await writeAll(f, prefix);
    await writeAll(f, json);
    for (const [, t] of list) await writeAll(f, dataBytes(t.data));
  }, out);
}
