/**
 * Reading a run's log.jsonl while it grows: complete lines only (each record is appended with one write, so
 * a line without its newline is still being written), numbered from 1 so the numbers can serve as event ids.
 */
import { readInto } from "../io/file_io.ts";

/** A log.jsonl record (docs/run_directory.md): a step or an epoch, epochs 1-based. */
export interface LogRecord {
  type: string;
  epoch: number;
  step?: number;
  steps?: number;
  global_step?: number;
  loss?: number;
  lr?: number;
  elapsed_s?: number;
  val_dice?: Record<string, number>;
  best?: boolean;
}

const decoder = new TextDecoder();

function parse(line: string): LogRecord | undefined {
  try {
    const r = JSON.parse(line);
    return typeof r === "object" && r !== null && typeof r.type === "string" ? r : undefined;
  } catch {
    return undefined;
  }
}

async function readFrom(path: string, offset: number): Promise<{ bytes: Uint8Array; size: number } | null> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path);
  } catch {
    return null;
  }
  try {
    const size = (await f.stat()).size;
    if (size <= offset) return { bytes: new Uint8Array(), size };
    await f.seek(offset, Deno.SeekMode.Start);
    const bytes = new Uint8Array(size - offset);
    return { bytes: bytes.subarray(0, await readInto(f, bytes)), size };
  } finally {
    f.close();
  }
}

/** Follows one log.jsonl: each call to next() returns the complete lines added since the last. */
export class LogFollower {
  private offset = 0;
  private lines = 0;

  constructor(readonly path: string) {}

  /** Line count read so far (the last line's number). */
  get count(): number {
    return this.lines;
  }

  /** New complete records with their 1-based line numbers; starts over if the file shrank (a resume). */
  async next(): Promise<{ n: number; record: LogRecord }[]> {
    const got = await readFrom(this.path, this.offset);
    if (!got) return [];
    if (got.size < this.offset) {
      this.offset = 0;
      this.lines = 0;
      return await this.next();
    }
    const end = got.bytes.lastIndexOf(0x0a) + 1; // only up to the last newline
    if (end === 0) return [];
    this.offset += end;
    const out: { n: number; record: LogRecord }[] = [];
    for (const line of decoder.decode(got.bytes.subarray(0, end)).split("\n")) {
      if (!line.trim()) continue;
      this.lines++;
      const record = parse(line);
      if (record) out.push({ n: this.lines, record });
    }
    return out;
  }
}

/** Tail bytes read for a summary: a few dozen records, enough for the last step and the last epoch. */
const TAIL_BYTES = 16 << 10;

/** The last step record and the last epoch record of a log (null where there is none in its tail). */
export async function lastRecords(
  path: string,
): Promise<{ step: LogRecord | null; epoch: LogRecord | null }> {
  const size = await Deno.stat(path).then((s) => s.size, () => 0);
  const got = await readFrom(path, Math.max(0, size - TAIL_BYTES));
  const out = { step: null as LogRecord | null, epoch: null as LogRecord | null };
  if (!got) return out;
  const lines = decoder.decode(got.bytes).split("\n").filter((l) => l.trim());
  for (let i = lines.length - 1; i >= 0 && !(out.step && out.epoch); i--) {
    const r = parse(lines[i]);
    if (r?.type === "step") out.step ??= r;
    if (r?.type === "epoch") out.epoch ??= r;
  }
  return out;
}
