/**
 * The options of `retry()` and `wrap()`, checked against the core's options contract
 * (`core/src/options.rs`, docs/options.md) when `retry` is called or `wrap` builds its
 * function. The core knows every option, its type and range; it checks each data value
 * (a number, a string, a schedule) the first time it is seen, and this module remembers
 * its verdict per value, so an options object written fresh on every call costs a few
 * lookups, not a native call. What only JavaScript can see is checked here: that a
 * function is a function, an `engine` an `Engine`, a `signal` an `AbortSignal`.
 * @internal
 */
import type { Clock } from './clock.js';
import { Engine } from './engine.js';
import { SmartRetryError } from './errors.js';
import { checkRetryOption, retryOptions } from './native.js';

type Kind = 'data' | 'function' | 'host' | 'schedule';

interface Spec {
  name: string;
  kind: Kind;
  type: string;
}

/** The contract as Node spells it, from the core. */
const SPECS: ReadonlyMap<string, Spec> = new Map(
  (JSON.parse(retryOptions()) as Spec[]).map((spec) => [spec.name, spec]),
);

/** What the loop needs of a checked options object beyond its own fields. */
export interface Checked {
  /** The call's own schedule as `decideFailure` takes it (JSON), if it has one. */
  readonly backoff: string | undefined;
}

export const UNCHECKED: Checked = Object.freeze({ backoff: undefined });

/** Data values the core accepted, per option; bounded, so unique ids cannot grow it. */
const accepted = new Map<string, Set<unknown>>();
const MAX_REMEMBERED = 1024;
/** Schedules the core accepted, by object, with the JSON it made of them. */
const schedules = new WeakMap<object, string>();

/** A value as the core's check takes it: JSON, with what JSON cannot say tagged. */
export function describeOption(value: unknown): unknown {
  switch (typeof value) {
    case 'undefined':
      return null;
    case 'number':
      return Number.isFinite(value) ? value : { $: String(value) };
    case 'function':
      return { $: 'function' };
    case 'bigint':
    case 'symbol':
      return { $: 'object', type: typeof value };
    case 'object': {
      if (value === null) return null;
      const proto = Object.getPrototypeOf(value) as object | null;
      if (proto === Object.prototype || proto === null) {
        const out: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(value)) out[k] = describeOption(v);
        return out;
      }
      return { $: 'object', type: Array.isArray(value) ? 'Array' : (value.constructor?.name ?? 'Object') };
    }
    default:
      return value;
  }
}

/** The core's verdict on one option (throws its `SmartRetryError`); a schedule's JSON. */
function core(name: string, value: unknown): string | null {
  return checkRetryOption(name, JSON.stringify(describeOption(value)));
}

function wrongType(spec: Spec, value: unknown): never {
  const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? `a ${value.constructor?.name ?? 'object'}` : `a ${typeof value}`;
  const reason = `expected ${spec.type}, got ${got}`;
  throw new SmartRetryError(`invalid type: ${spec.name}: ${reason}`, 'invalid_type', spec.name, reason);
}

/** A class (what `instanceof` takes): a function with a prototype object, not an arrow. */
const isClass = (c: unknown): boolean =>
  typeof c === 'function' && typeof (c as { prototype?: unknown }).prototype === 'object';

function isErrorClasses(value: unknown): boolean {
  return isClass(value) || (Array.isArray(value) && value.length > 0 && value.every(isClass));
}

function checkHost(spec: Spec, value: unknown): void {
  let ok: boolean;
  switch (spec.name) {
    case 'engine':
      ok = value instanceof Engine;
      break;
    case 'signal':
      ok = value instanceof AbortSignal;
      break;
    case 'clock':
      ok = typeof (value as Clock | null)?.now === 'function' && typeof (value as Clock).sleep === 'function';
      break;
    case 'retryOn':
    case 'giveUpOn':
      ok = isErrorClasses(value);
      break;
    default:
      ok = true; // fallback: any value
  }
  if (!ok) {
    core(spec.name, value); // a data value: the core's own message
    wrongType(spec, value);
  }
}

/**
 * Checks every option of `o`: unknown keys, types and ranges, naming the option on
 * error (a `SmartRetryError`, `code` `invalid_input` or `invalid_type`).
 */
export function checkOptions(o: object): Checked {
  let backoff: string | undefined;
  // for…in with a switch: the cheapest walk of a small options object (measured; a Map
  // lookup per key cost twice as much), and it sees every key, so none goes unnoticed.
  for (const key in o) {
    const value = (o as Record<string, unknown>)[key];
    if (value === undefined) {
      if (!SPECS.has(key)) core(key, value);
      continue;
    }
    switch (key) {
      case 'engine':
        if (!(value instanceof Engine)) hostValue(key, value);
        break;
      case 'jobType':
      case 'tenant':
      case 'jobId':
      case 'maxAttempts':
      case 'deadline':
      case 'timeout':
      case 'idempotent':
      case 'priority':
        data(key, value);
        break;
      case 'signal':
        if (!(value instanceof AbortSignal)) hostValue(key, value);
        break;
      case 'backoff':
        backoff = schedule(key, value);
        break;
      default:
        other(key, value);
    }
  }
  return backoff === undefined ? UNCHECKED : { backoff };
}

/** The value of each data option accepted last: the usual case is the same again. */
const lastAccepted: Record<string, unknown> = Object.create(null) as Record<string, unknown>;

/** A data value: the core's verdict, remembered per value. */
function data(key: string, value: unknown): void {
  if (lastAccepted[key] === value) return;
  let seen = accepted.get(key);
  if (seen?.has(value) !== true) {
    core(key, value);
    if (seen === undefined) accepted.set(key, (seen = new Set()));
    else if (seen.size >= MAX_REMEMBERED) seen.clear();
    seen.add(value);
  }
  lastAccepted[key] = value;
}

function hostValue(key: string, value: unknown): void {
  checkHost(SPECS.get(key) as Spec, value);
}

/** The options less often given: by the kind the core's table says they are. */
function other(key: string, value: unknown): void {
  const spec = SPECS.get(key);
  if (spec === undefined) {
    core(key, value); // the core names the unknown option, with a suggestion
    return;
  }
  switch (spec.kind) {
    case 'function':
      if (typeof value !== 'function') core(key, value);
      break;
    case 'host':
      checkHost(spec, value);
      break;
    case 'schedule':
      schedule(key, value);
      break;
    default:
      data(key, value);
  }
}

function schedule(key: string, value: unknown): string {
  if (typeof value === 'object' && value !== null) {
    const known = schedules.get(value);
    if (known !== undefined) return known;
  }
  const json = core(key, value) as string;
  if (typeof value === 'object' && value !== null) schedules.set(value, json);
  return json;
}
