/**
 * Where retry() gets the time and how it waits. The real clock reads `Date.now()` and
 * waits with `setTimeout`; a virtual clock (see `testing`) waits for nothing but still
 * moves its time forward, so every decision and record happens as in real time.
 */
export interface Clock {
  /** Unix epoch milliseconds (integer). */
  now(): number;
  /** Resolves after `ms`, or rejects with `signal.reason` as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The wall clock and `setTimeout`: the default. */
export const realClock: Clock = {
  now: Date.now,
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal === undefined) {
        setTimeout(resolve, ms);
        return;
      }
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  },
};

/** A clock for tests and simulations: sleeping advances `now()` instead of waiting. */
export class VirtualClock implements Clock {
  /** Every wait requested, in order (ms). */
  readonly sleeps: number[] = [];
  private t: number;

  constructor(startMs: number = Date.now()) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  /** Moves the clock forward without waiting (e.g. to model a slow attempt). */
  advance(ms: number): void {
    this.t += ms;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.sleeps.push(ms);
    this.t += ms;
    return Promise.resolve();
  }
}

let defaultClock: Clock = realClock;

/** Sets the clock retry() uses when none is given (e.g. a virtual clock in a test suite). */
export function setDefaultClock(clock: Clock): void {
  defaultClock = clock;
}

/** The clock retry() uses when none is given. */
export function getDefaultClock(): Clock {
  return defaultClock;
}
