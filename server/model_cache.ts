/**
 * Opened runs (their models on the device) kept for the next prediction: at most `max`, least recently used
 * first out, disposed on eviction once no prediction holds them; a run whose weights file changed (it kept
 * training) is opened afresh. Hand-written: an LRU library would not know about leases or tensor disposal.
 */
import { join } from "node:path";
import type { OpenedRun } from "../pipeline/eval_run.ts";
import { RUN_FILES } from "../pipeline/run_dir.ts";

export type Weights = "final" | "best";

export interface ModelLease {
  run: OpenedRun;
  /** Names this model and weights version (results computed with it can be cached under it). */
  key: string;
  release(): void;
}

interface Entry {
  /** dir and weights: one model per pair. */
  slot: string;
  /** The weights file's modification time when it was opened. */
  version: string;
  opened: Promise<OpenedRun>;
  leases: number;
}

export interface ModelCacheOptions {
  max: number;
  open: (dir: string, weights: Weights) => Promise<OpenedRun>;
}

export class ModelCache {
  /** In use order: the first entry is the least recently used. */
  private entries = new Map<string, Entry>();

  constructor(private readonly opts: ModelCacheOptions) {}

  get size(): number {
    return this.entries.size;
  }

  /** A lease on the model of run dir with these weights; call release() when done with it. */
  async acquire(dir: string, weights: Weights): Promise<ModelLease> {
    const slot = `${dir}\0${weights}`;
    const file = weights === "best"
      ? join(dir, RUN_FILES.best, RUN_FILES.trainable)
      : join(dir, RUN_FILES.trainable);
    const version = String(await Deno.stat(file).then((s) => s.mtime?.getTime(), () => "missing"));
    let entry = this.entries.get(slot);
    if (entry && entry.version !== version && entry.leases === 0) {
      this.drop(entry);
      entry = undefined;
    }
    if (!entry || entry.version !== version) {
      const fresh: Entry = { slot, version, opened: this.opts.open(dir, weights), leases: 0 };
      // A stale entry still leased keeps serving its holders; it is dropped when the last one releases.
      if (entry) this.entries.delete(slot);
      entry = fresh;
    } else {
      this.entries.delete(slot); // re-inserted below as the most recently used
    }
    this.entries.set(slot, entry);
    entry.leases++;
    const held = entry;
    let run: OpenedRun;
    try {
      run = await held.opened;
    } catch (err) {
      held.leases--;
      if (this.entries.get(slot) === held) this.entries.delete(slot);
      throw err;
    }
    this.evict();
    let released = false;
    return {
      run,
      key: `${slot}\0${version}`,
      release: () => {
        if (released) return;
        released = true;
        held.leases--;
        if (this.entries.get(slot) !== held && held.leases === 0) this.dispose(held);
        this.evict();
      },
    };
  }

  /** Disposes every model (at shutdown, after predictions have finished). */
  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => this.dispose(e)));
  }

  /** Drops unleased models, oldest first, down to max; the newest stays even when older ones are leased. */
  private evict(): void {
    const newest = [...this.entries.values()].at(-1);
    for (const e of this.entries.values()) {
      if (this.entries.size <= this.opts.max) return;
      if (e.leases === 0 && e !== newest) this.drop(e);
    }
  }

  private drop(e: Entry): void {
    this.entries.delete(e.slot);
    void this.dispose(e);
  }

  private async dispose(e: Entry): Promise<void> {
    await e.opened.then((run) => run.model.dispose(), () => {});
  }
}
