/**
 * A bounded read-ahead stage: the source is pulled while the consumer is busy awaiting (e.g. a GPU step), so
 * loading and augmentation overlap training, and at most `size` finished items wait in memory.
 */
import type { Stage } from "./pipe.ts";

export interface PrefetchOptions<T> {
  /** Frees an item that was read ahead but never consumed (the consumer stopped early), e.g. tensors. */
  dispose?: (item: T) => void;
}

/** Reads up to `size` items ahead of the consumer, in order; errors surface where the item would have. */
export function prefetch<T>(size: number, opts: PrefetchOptions<T> = {}): Stage<T, T> {
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`prefetch size must be an integer >= 1, got ${size}`);
  }
  return async function* (source) {
    const it = source[Symbol.asyncIterator]();
    const queue: IteratorResult<T>[] = [];
    let failure: { error: unknown } | undefined;
    let sourceFinished = false;
    let stopped = false;
    let wakeConsumer: (() => void) | undefined;
    let wakeProducer: (() => void) | undefined;
    const signalConsumer = () => {
      const wake = wakeConsumer;
      wakeConsumer = undefined;
      wake?.();
    };

    const producer = (async () => {
      try {
        while (!stopped) {
          if (queue.length >= size) {
            await new Promise<void>((resolve) => (wakeProducer = resolve));
            continue;
          }
          const result = await it.next();
          if (result.done) sourceFinished = true;
          if (stopped) {
            if (!result.done) opts.dispose?.(result.value);
            break;
          }
          queue.push(result);
          signalConsumer();
          if (result.done) break;
        }
      } catch (error) {
        sourceFinished = true; // a generator that threw is closed
        failure = { error };
        signalConsumer();
      }
    })();

    try {
      while (true) {
        if (queue.length === 0) {
          if (failure) throw failure.error;
          await new Promise<void>((resolve) => (wakeConsumer = resolve));
          continue;
        }
        const result = queue.shift()!;
        const wake = wakeProducer;
        wakeProducer = undefined;
        wake?.();
        if (result.done) return;
        yield result.value;
      }
    } finally {
      stopped = true;
      const wake = wakeProducer;
      wakeProducer = undefined;
      wake?.();
      await producer;
      for (const result of queue) if (!result.done) opts.dispose?.(result.value);
      queue.length = 0;
      if (!sourceFinished) await it.return?.();
    }
  };
}
