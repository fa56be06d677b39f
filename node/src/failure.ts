/**
 * What a thrown error (or a result judged a failure) tells the engine: HTTP status,
 * error name and code, and the raw `Retry-After` header. Extraction only: the engine
 * classifies these and parses the header (core/src/classify.rs).
 *
 * Shapes understood without importing any client:
 * - fetch `Response` (returned, or attached to an error as `response`): `status`,
 *   `headers.get('retry-after')`;
 * - axios errors: `response.status`, `response.headers` (AxiosHeaders or a plain
 *   object), `code` (`ECONNRESET`, `ECONNABORTED`, …);
 * - got errors: `response.statusCode`, `response.headers['retry-after']`, `code`;
 * - Node errors: `code` (`ECONNRESET`, `ETIMEDOUT`, …), `name` (`AbortError`,
 *   `TimeoutError`), and `cause.code` (undici's `fetch failed`);
 * - anything with `status` or `statusCode`.
 */
export interface FailureInfo {
  http_status?: number;
  error_class?: string;
  error_code?: string;
  retry_after?: string;
}

type Bag = Record<string, unknown>;

function isBag(x: unknown): x is Bag {
  return (typeof x === 'object' && x !== null) || typeof x === 'function';
}

function statusOf(x: Bag): number | undefined {
  let s = x.status ?? x.statusCode;
  if (s === undefined && isBag(x.response)) s = x.response.status ?? x.response.statusCode;
  if (typeof s === 'string' && /^\d{3}$/.test(s)) s = Number(s);
  return typeof s === 'number' && Number.isInteger(s) ? s : undefined;
}

function header(headers: unknown, name: string): string | undefined {
  if (!isBag(headers)) return undefined;
  let v: unknown;
  if (typeof headers.get === 'function') {
    v = (headers.get as (n: string) => unknown).call(headers, name);
  } else {
    v = headers[name];
    if (v === undefined) {
      const wanted = name.toLowerCase();
      for (const key of Object.keys(headers)) {
        if (key.toLowerCase() === wanted) {
          v = headers[key];
          break;
        }
      }
    }
  }
  if (Array.isArray(v)) v = v[0];
  if (typeof v === 'number') return String(v);
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function codeOf(x: Bag): string | undefined {
  let c = x.code;
  if (c === undefined && isBag(x.cause)) c = x.cause.code;
  if (typeof c === 'number') return String(c);
  return typeof c === 'string' && c !== '' ? c : undefined;
}

/**
 * Describes a failure for the engine. The error's `name` is passed as the error class
 * unless an HTTP status was found (then the status names the failure better than a
 * client's wrapper class such as `AxiosError`) or it is the bare `Error`.
 */
export function describeFailure(failure: unknown): FailureInfo {
  const info: FailureInfo = {};
  if (!isBag(failure)) return info;
  const status = statusOf(failure);
  if (status !== undefined) info.http_status = status;
  const code = codeOf(failure);
  if (code !== undefined) info.error_code = code;
  const name = failure.name;
  if (status === undefined && typeof name === 'string' && name !== '' && name !== 'Error') {
    info.error_class = name;
  }
  const retryAfter =
    header(failure.headers, 'retry-after') ??
    (isBag(failure.response) ? header(failure.response.headers, 'retry-after') : undefined);
  if (retryAfter !== undefined) info.retry_after = retryAfter;
  return info;
}
