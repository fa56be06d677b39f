// ESM entry: re-exports the CommonJS build, so `import` and `require` share one
// module instance (one default engine per process).
import cjs from './dist/index.js';

export const {
  retry,
  wrap,
  setDefaultClock,
  historyOf,
  Engine,
  defaultEngine,
  setDefaultEngine,
  retryBatch,
  realClock,
  VirtualClock,
  testing,
  describeFailure,
  AttemptTimeoutError,
  SmartRetryError,
  RetryStatistics,
  isEngineError,
} = cjs;
export default cjs;
