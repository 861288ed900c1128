/** Pull-based stage composition: async generators chained so memory stays bounded by what is in flight. */

/** A stage turns one async stream into another; stages compose with pipe(). */
export type Stage<I, O> = (source: AsyncIterable<I>) => AsyncIterable<O>;

/** Anything a pipeline can start from: arrays and sync generators are lifted to async streams. */
export type Source<T> = AsyncIterable<T> | Iterable<T>;

/** Lifts a sync iterable to an async one (pass-through for async iterables). */
export function fromIterable<T>(source: Source<T>): AsyncIterable<T> {
  if (Symbol.asyncIterator in source) return source as AsyncIterable<T>;
  const items = source as Iterable<T>;
  return (async function* () {
    yield* items;
  })();
}

export function pipe<A>(source: Source<A>): AsyncIterable<A>;
export function pipe<A, B>(source: Source<A>, s1: Stage<A, B>): AsyncIterable<B>;
export function pipe<A, B, C>(source: Source<A>, s1: Stage<A, B>, s2: Stage<B, C>): AsyncIterable<C>;
export function pipe<A, B, C, D>(
  source: Source<A>,
  s1: Stage<A, B>,
  s2: Stage<B, C>,
  s3: Stage<C, D>,
): AsyncIterable<D>;
export function pipe<A, B, C, D, E>(
  source: Source<A>,
  s1: Stage<A, B>,
  s2: Stage<B, C>,
  s3: Stage<C, D>,
  s4: Stage<D, E>,
): AsyncIterable<E>;
export function pipe<A, B, C, D, E, F>(
  source: Source<A>,
  s1: Stage<A, B>,
  s2: Stage<B, C>,
  s3: Stage<C, D>,
  s4: Stage<D, E>,
  s5: Stage<E, F>,
): AsyncIterable<F>;
export function pipe<A, B, C, D, E, F, G>(
  source: Source<A>,
  s1: Stage<A, B>,
  s2: Stage<B, C>,
  s3: Stage<C, D>,
  s4: Stage<D, E>,
  s5: Stage<E, F>,
  s6: Stage<F, G>,
): AsyncIterable<G>;
/** Composes stages left to right; nothing runs until the result is iterated. */
export function pipe(source: Source<unknown>, ...stages: Stage<unknown, unknown>[]): AsyncIterable<unknown> {
  return stages.reduce((stream, stage) => stage(stream), fromIterable(source));
}

/** A stage applying fn to each item (fn may be async). */
export function map<I, O>(fn: (item: I) => O | Promise<O>): Stage<I, O> {
  return async function* (source) {
    for await (const item of source) yield await fn(item);
  };
}

/** A stage passing through at most n items, then closing its source. */
export function take<T>(n: number): Stage<T, T> {
  return async function* (source) {
    if (n <= 0) return;
    let count = 0;
    for await (const item of source) {
      yield item;
      if (++count >= n) return;
    }
  };
}

/** Drains a stream into an array (tests, small streams only). */
export async function collect<T>(source: Source<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of fromIterable(source)) out.push(item);
  return out;
}
