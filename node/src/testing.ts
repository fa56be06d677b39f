import { VirtualClock } from './clock.js';

/**
 * Testing helpers. `virtualClock()` gives retry() a clock that skips real waiting but
 * keeps every decision and record, at the times they would have happened:
 *
 * ```js
 * const clock = testing.virtualClock();
 * await retry(flaky, { clock, engine: new Engine({ seed: 1 }) });
 * clock.sleeps; // the delays the engine chose, in ms
 * ```
 */
export const testing = {
  virtualClock(startMs?: number): VirtualClock {
    return new VirtualClock(startMs);
  },
};
