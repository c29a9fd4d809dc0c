/**
 * A push source as an async iterator: what is pushed is queued until read,
 * and the iterator ends once the source has ended and the queue is read.
 * runGraft's record stream is one; nothing is dropped, so a reader that
 * falls behind holds the records in memory until it catches up.
 */
export interface PushSource<T> {
  /** starts delivering to `push`; returns the stop */
  subscribe(push: (item: T) => void): () => void;
  /** settles when no more items can come */
  readonly ended: Promise<unknown>;
}

export function iterate<T>(source: PushSource<T>): AsyncIterableIterator<T> {
  const queue: T[] = [];
  let waiting: ((result: IteratorResult<T>) => void) | undefined;
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    stop();
    waiting?.({ value: undefined, done: true });
    waiting = undefined;
  };
  const stop = source.subscribe((item) => {
    if (done) return;
    if (waiting) {
      const w = waiting;
      waiting = undefined;
      w({ value: item, done: false });
    } else queue.push(item);
  });
  // the items queued before the end are still read; a reader waiting on an empty queue is told at once
  let sourceEnded = false;
  const onEnd = (): void => {
    sourceEnded = true;
    if (!queue.length) finish();
  };
  void source.ended.then(onEnd, onEnd);
  const iterator: AsyncIterableIterator<T> = {
    next: () => {
      if (queue.length) return Promise.resolve({ value: queue.shift()!, done: false });
      if (done || sourceEnded) {
        finish();
        return Promise.resolve({ value: undefined, done: true });
      }
      return new Promise((resolve) => (waiting = resolve));
    },
    return: () => {
      finish();
      queue.length = 0;
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
