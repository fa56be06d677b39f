/**
 * The stable kinds of engine errors (the core's `Error::kind()`), found in `error.code`;
 * plus `closed` for a call on an engine after `close()`.
 */
export type EngineErrorCode =
  | 'invalid_input'
  | 'invalid_type'
  | 'config'
  | 'not_found'
  | 'store'
  | 'model'
  | 'closed';

const ENGINE_CODES = new Set<string>(['invalid_input', 'invalid_type', 'config', 'not_found', 'store', 'model', 'closed']);

/**
 * What the engine throws, and what `retry()`/`wrap()` throw for a bad option: `code` is
 * the kind (`invalid_input` for a bad value or an unknown option, `invalid_type` for a
 * value of the wrong type…), `field` names the offending field or option (`null` for
 * kinds without one) and `reason` says why.
 */
export class SmartRetryError extends Error {
  declare readonly code: EngineErrorCode;
  declare readonly field: string | null;
  declare readonly reason: string;

  constructor(message: string, code: EngineErrorCode, field: string | null, reason?: string, options?: ErrorOptions) {
    super(message, options);
    Object.defineProperties(this, {
      code: { value: code, enumerable: true },
      field: { value: field, enumerable: true },
      reason: { value: reason ?? message, enumerable: true },
    });
  }
}
Object.defineProperty(SmartRetryError.prototype, 'name', { value: 'SmartRetryError', writable: true, configurable: true });

/** Kept for code written before `SmartRetryError`: the same object. */
export type EngineError = SmartRetryError;

/** Whether `error` came from the engine (as opposed to the function being retried). */
export function isEngineError(error: unknown): error is SmartRetryError {
  if (error instanceof SmartRetryError) return true;
  if (!(error instanceof Error) || !('field' in error)) return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && ENGINE_CODES.has(code);
}

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

/** The JS types a parameter of a native method takes (see `native.ts`). */
type ParamType = 'string' | 'number' | 'boolean' | 'object' | 'function';

/**
 * An error thrown by a native call as users should see it: the engine's own errors
 * become `SmartRetryError`s; napi's conversion errors ("Failed to convert napi value
 * String into rust type f64") become `invalid_type` naming the argument, found by
 * checking `args` against the method's parameters.
 * @internal
 */
export function fromNative(error: unknown, params: readonly string[], args: readonly unknown[]): unknown {
  if (!(error instanceof Error) || error instanceof SmartRetryError) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return error;
  if (ENGINE_CODES.has(code) && 'field' in error) {
    Object.setPrototypeOf(error, SmartRetryError.prototype);
    if (!('reason' in error)) Object.defineProperty(error, 'reason', { value: error.message, enumerable: true });
    return error;
  }
  if (code !== 'InvalidArg' && !code.endsWith('Expected')) return error;
  for (let i = 0; i < params.length; i++) {
    const [name, spec] = params[i].split(':') as [string, string];
    const optional = spec.endsWith('?');
    const want = (optional ? spec.slice(0, -1) : spec) as ParamType;
    const value = args[i];
    if (optional && (value === undefined || value === null)) continue;
    const got = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
    const ok = want === 'object' ? got === 'object' || got === 'array' : got === want;
    if (!ok || (want === 'number' && !Number.isFinite(value as number))) {
      const reason = ok ? `expected a finite number, got ${String(value)}` : `expected a ${want}, got ${got}`;
      return new SmartRetryError(`invalid type: ${name}: ${reason}`, 'invalid_type', name, reason, { cause: error });
    }
  }
  return new SmartRetryError(`invalid type: ${error.message}`, 'invalid_type', null, error.message, { cause: error });
}
