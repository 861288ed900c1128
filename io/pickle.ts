/**
 * A restricted, hand-written pickle reader: there is no safe JavaScript unpickler, and a checkpoint is
 * untrusted input (pickle's REDUCE can call any Python function). This one never executes or imports
 * anything: it understands only the opcodes a state dict uses, and a global is accepted only when the caller
 * supplies a handler for it by name; every other global is refused with a PickleError naming it.
 */
import { printable, UserError } from "../errors.ts";

export class PickleError extends UserError {
  /** True when the stream simply ended early (a reader that grows its buffer may retry). */
  truncated: boolean;
  constructor(message: string, truncated = false) {
    super(message);
    this.truncated = truncated;
  }
}

/** What an allowed global does: a plain value (a dtype marker), or a function REDUCE/NEWOBJ may call. */
export interface GlobalHandler {
  value?: unknown;
  /** Called by REDUCE (and NEWOBJ) with the argument tuple; returns the constructed JS value. */
  call?: (args: unknown[]) => unknown;
}

/** A global the caller allowed, as it sits on the stack until REDUCE applies it. */
export class PyGlobal {
  constructor(readonly qualname: string, readonly handler: GlobalHandler) {}
}

export interface UnpickleOptions {
  /** Allowed globals by "module.name"; anything absent is refused. */
  globals: ReadonlyMap<string, GlobalHandler>;
  /** Resolves BINPERSID ids (torch's storages); without it BINPERSID is refused. */
  persistentLoad?: (pid: unknown) => unknown;
  /** For messages. */
  file: string;
  /** Byte offset to start at (a legacy torch file holds several pickles back to back). */
  start?: number;
}

/** Python dicts become Maps (keys may be ints); lists and tuples become arrays; None is null. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): { value: unknown; end: number } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder();
  const { file, globals } = opts;
  let pos = opts.start ?? 0;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const fail = (msg: string): never => {
    throw new PickleError(`${file}: pickle: ${msg} (at byte ${pos})`);
  };
  const need = (n: number) => {
    if (n < 0 || pos + n > bytes.length) {
      throw new PickleError(`${file}: pickle: truncated (needed ${n} bytes at byte ${pos})`, true);
    }
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), pos += 2, dv.getUint16(pos - 2, true));
  const u32 = () => (need(4), pos += 4, dv.getUint32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) fail(`length ${v} is larger than the whole pickle`);
    return Number(v);
  };
  const take = (n: number) => (need(n), pos += n, bytes.subarray(pos - n, pos));
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) need(bytes.length - pos + 1);
    const s = new TextDecoder("latin1").decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = () => (stack.length ? stack.pop() : fail("stack underflow"));
  const top = () => (stack.length ? stack[stack.length - 1] : fail("stack underflow"));
  const popMark = () => {
    const items = stack;
    stack = marks.pop() ?? fail("MARK missing");
    return items;
  };
  const resolveGlobal = (module: string, name: string) => {
    const qualname = `${module}.${name}`;
    const handler = globals.get(qualname);
    if (!handler) {
      fail(
        `refusing global ${printable(qualname)}: only tensor and container types are allowed in a checkpoint`,
      );
    }
    return handler!.value !== undefined ? handler!.value : new PyGlobal(qualname, handler!);
  };
  const callable = (fn: unknown, args: unknown, op: string) => {
    if (!(fn instanceof PyGlobal) || !fn.handler.call) {
      fail(`${op} of something that is not an allowed callable`);
    }
    if (!Array.isArray(args)) fail(`${op} arguments are not a tuple`);
    return (fn as PyGlobal).handler.call!(args as unknown[]);
  };
  const setItems = (dict: unknown, items: unknown[]) => {
    if (!(dict instanceof Map)) fail("SETITEM(S) on something that is not a dict");
    if (items.length % 2) fail("SETITEMS with an odd number of items");
    for (let i = 0; i < items.length; i += 2) (dict as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const appendItems = (list: unknown, items: unknown[]) => {
    if (!Array.isArray(list)) fail("APPEND(S) on something that is not a list");
    for (const it of items) (list as unknown[]).push(it);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v < 2 || v > 5) fail(`unsupported pickle protocol ${v}`);
        break;
      }
      case 0x95: // FRAME: only a read-ahead hint
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) fail("STOP with an unbalanced stack");
        return { value: stack[0], end: pos };
      case 0x28: // MARK
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        need(4), stack.push(dv.getInt32(pos, true)), pos += 4;
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(littleSigned(take(u8())));
        break;
      case 0x8b: { // LONG4
        const n = u32();
        if (n > 1024) fail(`LONG4 of ${n} bytes`);
        stack.push(littleSigned(take(n)));
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8), stack.push(dv.getFloat64(pos, false)), pos += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8.decode(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8.decode(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8.decode(take(u64())));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str)
        stack.push(new TextDecoder("latin1").decode(take(u8())));
        break;
      case 0x54: { // BINSTRING
        const n = dv.getInt32((need(4), pos), true);
        pos += 4;
        stack.push(new TextDecoder("latin1").decode(take(n)));
        break;
      }
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(take(u64()).slice());
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x64: { // DICT
        const d = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x6c: // LIST
      case 0x74: { // TUPLE
        const items = popMark(); // (popMark replaces `stack`, so read it before touching stack)
        stack.push(items);
        break;
      }
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop(), b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`memo key ${k} was never stored`);
        stack.push(memo.get(k));
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        stack.push(resolveGlobal(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof name !== "string" || typeof module !== "string") fail("STACK_GLOBAL needs two strings");
        stack.push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        stack.push(callable(pop(), args, "REDUCE"));
        break;
      }
      case 0x81: { // NEWOBJ (cls.__new__(cls, *args)): same handlers as REDUCE
        const args = pop();
        stack.push(callable(pop(), args, "NEWOBJ"));
        break;
      }
      case 0x62: { // BUILD: only the instance dict of an OrderedDict (torch's _metadata), which we drop
        pop();
        if (!(top() instanceof Map)) fail("BUILD on something other than a dict");
        break;
      }
      case 0x51: { // BINPERSID
        if (!opts.persistentLoad) fail("persistent id without a loader");
        stack.push(opts.persistentLoad!(pop()));
        break;
      }
      default:
        fail(`unsupported opcode 0x${op.toString(16).padStart(2, "0")} (${opName(op)})`);
    }
  }
}

/** Little-endian two's-complement bytes to a number (or a bigint when past 2^53). */
function littleSigned(b: Uint8Array): number | bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b.length && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Names of the opcodes we refuse, so an error says what the file tried (INST and OBJ can call code). */
function opName(op: number): string {
  const names: Record<number, string> = {
    0x69: "INST",
    0x6f: "OBJ",
    0x50: "PERSID",
    0x82: "EXT1",
    0x83: "EXT2",
    0x84: "EXT4",
    0x92: "NEWOBJ_EX",
    0x49: "INT",
    0x4c: "LONG",
    0x53: "STRING",
    0x56: "UNICODE",
    0x46: "FLOAT",
    0x70: "PUT",
    0x67: "GET",
    0x8f: "EMPTY_SET",
    0x90: "ADDITEMS",
    0x91: "FROZENSET",
    0x96: "BYTEARRAY8",
    0x97: "NEXT_BUFFER",
  };
  return names[op] ?? "unknown";
}
