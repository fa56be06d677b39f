/**
 * The N-API module, with its errors made what users should see (`fromNative`): every
 * method of `NativeEngine` and every function is wrapped once, here. The success path
 * of `retry()` never crosses into it.
 * @internal
 */
import * as raw from '../native/index.js';
import { fromNative } from './errors.js';

/**
 * Each native method's parameters (`name:type`, `?` when optional), as in the generated
 * `native/index.d.ts`; tests/native-params.test.js checks them against that file.
 */
export const PARAMS: Readonly<Record<string, string>> = {
  close: '',
  decide: 'featuresJson:string nowMs:number?',
  decideFailure:
    'out:object jobType:string attemptNumber:number jobId:string? tenant:string? httpStatus:number? errorClass:string? errorCode:string? retryAfter:string? idempotent:boolean? sinceFirstFailureMs:number? deadlineMs:number? maxAttempts:number? priority:string? backoffJson:string? expected:boolean? nowMs:number?',
  record: 'attemptJson:string nowMs:number?',
  recordAttempt:
    'jobId:string jobType:string attemptNumber:number success:boolean delayMs:number tenant:string? httpStatus:number? errorClass:string? errorCode:string? sinceFirstFailureMs:number? nowMs:number?',
  released: 'jobType:string failedAtMs:number nowMs:number?',
  recordSuccesses: 'jobType:string tenant:string? count:number nowMs:number?',
  preview: 'featuresJson:string maxAttempts:number nowMs:number?',
  stats: 'jobType:string errorClass:string windowMs:number? nowMs:number?',
  policies: '',
  addPolicy: 'policyJson:string',
  removePolicy: 'name:string',
  guardrails: '',
  updateGuardrails: 'patchJson:string',
  emergencyStop: 'on:boolean',
  isEmergencyStopped: '',
  metrics: '',
  overrides: 'nowMs:number?',
  addOverride: 'overrideJson:string nowMs:number?',
  removeOverride: 'name:string',
  health: 'jobType:string nowMs:number?',
  subscribe: 'kinds:object capacity:number callback:function',
  registerModel: 'modelPath:string sidecarPath:string? nowMs:number?',
  models: '',
  deployModel: 'version:string canaryPercent:number nowMs:number?',
  shadowModel: 'version:string? nowMs:number?',
  rollbackModel: 'nowMs:number?',
  rollbackToBayesian: 'nowMs:number?',
  mlStatus: '',
  mlSnapshot: '',
  restoreMl: 'snapshotJson:string',
  flush: 'timeoutMs:number',
  auditTrail: 'limit:number',
  addDeadLetter: 'entryJson:string nowMs:number?',
  deadLetters: 'queryJson:string',
  deadLetter: 'id:string',
  retryDeadLetter: 'id:string nowMs:number?',
  resolveDeadLetter: 'id:string note:string nowMs:number?',
  deadLetterCount: 'status:string?',
  constructor: 'seed:number? configJson:string? mlRuntime:string? store:string?',
  checkRetryOption: 'name:string valueJson:string',
  retryOptions: '',
};

const paramsOf = (name: string): string[] => (PARAMS[name] ?? '').split(' ').filter(Boolean);

type AnyFn = (...args: unknown[]) => unknown;

function guard<F extends AnyFn>(name: string, fn: F): F {
  const params = paramsOf(name);
  return function (this: unknown, ...args: unknown[]) {
    try {
      return fn.apply(this, args);
    } catch (error) {
      throw fromNative(error, params, args);
    }
  } as F;
}

const proto = raw.NativeEngine.prototype as unknown as Record<string, unknown>;
for (const name of Object.getOwnPropertyNames(proto)) {
  const descriptor = Object.getOwnPropertyDescriptor(proto, name);
  if (name !== 'constructor' && typeof descriptor?.value === 'function') {
    proto[name] = guard(name, descriptor.value as AnyFn);
  }
}

const constructorParams = paramsOf('constructor');

/** `new raw.NativeEngine(...)` with its errors made users' errors. */
export function newNativeEngine(...args: ConstructorParameters<typeof raw.NativeEngine>): raw.NativeEngine {
  try {
    return new raw.NativeEngine(...args);
  } catch (error) {
    throw fromNative(error, constructorParams, args);
  }
}

export type NativeEngine = raw.NativeEngine;
export type NativeSubscription = raw.NativeSubscription;
export const checkRetryOption = guard('checkRetryOption', raw.checkRetryOption as AnyFn) as typeof raw.checkRetryOption;
export const retryOptions = guard('retryOptions', raw.retryOptions as AnyFn) as typeof raw.retryOptions;
