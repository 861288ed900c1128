/**
 * The admission rule for predictions: `running` at once, `waiting` more in line, and beyond that a 503 with
 * Retry-After (an estimate from recent prediction times), so an overloaded server answers at once instead of
 * piling up uploads in memory. Hand-written: limiters such as p-limit queue without bound and cannot refuse.
 */
import { HttpError } from "./http_error.ts";

export class PredictGate {
  private active = 0;
  private queue: (() => void)[] = [];
  /** Smoothed seconds per prediction, for Retry-After. */
  private secondsEach = 1;

  constructor(private readonly running: number, private readonly waiting: number) {}

  /** Predictions running and waiting now. */
  get load(): { running: number; waiting: number } {
    return { running: this.active, waiting: this.queue.length };
  }

  /** Runs fn when a place is free; refuses with 503 when every place and the line are taken. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.running) {
      if (this.queue.length >= this.waiting) {
        const wait = Math.max(1, Math.ceil(this.secondsEach * (1 + this.queue.length / this.running)));
        throw new HttpError(
          503,
          "busy",
          `${this.active} predictions running and ${this.queue.length} waiting; try again later`,
          { "Retry-After": String(wait) },
        );
      }
      await new Promise<void>((resolve) => this.queue.push(resolve));
    } else {
      this.active++;
    }
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.secondsEach = 0.8 * this.secondsEach + 0.2 * ((performance.now() - t0) / 1000);
      const next = this.queue.shift();
      if (next) next(); // the place passes straight to the next in line
      else this.active--;
    }
  }
}
