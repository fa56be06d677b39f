/** The stable kinds of engine errors (the core's `Error::kind()`), found in `error.code`. */
export type EngineErrorCode = 'invalid_input' | 'config' | 'not_found' | 'store' | 'model';

/**
 * What the engine throws: a plain `Error` with the core's kind in `code` and the
 * offending field in `field` (`null` for kinds without one).
 */
export interface EngineError extends Error {
  code: EngineErrorCode;
  field: string | null;
}

/** Whether `error` came from the engine (as opposed to the function being retried). */
export function isEngineError(error: unknown): error is EngineError {
  if (!(error instanceof Error) || !('field' in error)) return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && ENGINE_CODES.has(code);
}

const ENGINE_CODES = new Set<string>(['invalid_input', 'config', 'not_found', 'store', 'model']);

/**
 * Rejects an attempt that ran longer than the `timeout` option. Its name and code are
 * the ones Node uses for timeouts, so the engine classifies it as a timeout.
 */
export class AttemptTimeoutError extends Error {
  override readonly name = 'TimeoutError';
  readonly code = 'ETIMEDOUT';
  constructor(
    readonly timeoutMs: number,
    readonly attempt: number,
  ) {
    super(`attempt ${attempt} timed out after ${timeoutMs} ms`);
  }
}
