import { EventEmitter } from 'node:events';
import { newNativeEngine, type NativeEngine, type NativeSubscription } from './native.js';
import type { Clock } from './clock.js';
import { realClock } from './clock.js';
import type {
  Attempt,
  AuditRecord,
  Config,
  DeadLetterRecord,
  DeadLetterQuery,
  DeadLetterStatus,
  Decision,
  Deployment,
  EventName,
  Features,
  Guardrails,
  HealthReport,
  LifecycleEvent,
  MlStatus,
  ModelInfo,
  NewDeadLetter,
  Override,
  Policy,
  Preview,
  Stats,
} from './types.js';

const EVENT_NAMES: ReadonlySet<string> = new Set<EventName>([
  'retry_scheduled',
  'retry_succeeded',
  'retry_failed',
  'gave_up',
  'guardrail_triggered',
  'breaker_state_changed',
]);

/** A listener of the engine's lifecycle events. */
export type LifecycleListener = (event: LifecycleEvent) => void;

// Typed overloads for the lifecycle events, merged into the class below.
/* eslint-disable @typescript-eslint/no-explicit-any */
export interface Engine {
  on(event: EventName, listener: LifecycleListener): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: EventName, listener: LifecycleListener): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  off(event: EventName, listener: LifecycleListener): this;
  off(event: string | symbol, listener: (...args: any[]) => void): this;
  addListener(event: EventName, listener: LifecycleListener): this;
  addListener(event: string | symbol, listener: (...args: any[]) => void): this;
  removeListener(event: EventName, listener: LifecycleListener): this;
  removeListener(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Options of `new Engine()`. */
export interface EngineOptions {
  /** Makes every random choice (jitter, throttling) reproducible. */
  seed?: number;
  /** The configuration file's contents: an object, or its JSON text. */
  config?: Config | string;
  /**
   * The ONNX Runtime library for the ML tier. Default: `ORT_DYLIB_PATH`, else an
   * installed `onnxruntime` Python wheel or `onnxruntime-node` package.
   */
  mlRuntime?: string;
  /**
   * Where state lives: `'memory'` (default), `'sqlite:///path.db'` (survives restarts),
   * `'redis://host:port/db'` (shared by a fleet of workers).
   */
  store?: string;
}

/** First-attempt successes are flushed to the engine after this many… */
const FLUSH_EVERY = 1024;
/** …or this long after the first one of a batch (an unref'd timer). */
const FLUSH_AFTER_MS = 1000;

interface Slot {
  n: number;
  clock: Clock;
}

/** Engines holding unflushed successes, flushed when the process is about to exit. */
const pendingEngines = new Set<Engine>();
let exitHooked = false;

function flushAll(): void {
  for (const engine of pendingEngines) engine.flushSuccesses();
}

/**
 * The retry engine: one per process is usual (`defaultEngine()`), and it is safe to
 * share between any number of concurrent async tasks. Every method is synchronous
 * and cheap; none waits. Objects use the API document's snake_case field names.
 * Errors are `SmartRetryError`s with `code` (`invalid_input`, `invalid_type`,
 * `config`, `not_found`, `store`, `model`, `closed`) and `field`.
 *
 * `close()` (or `using engine = new Engine()`) frees it at once; an engine that is
 * only forgotten is freed when the garbage collector gets to it.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Engine extends EventEmitter {
  /** @internal the N-API engine. */
  readonly native: NativeEngine;
  // The core subscription behind the lifecycle events: open while anyone listens.
  private subscription: NativeSubscription | undefined;
  // First-attempt successes counted by retry() and not yet told to the engine,
  // by job type, then tenant ('' = none).
  private pending = new Map<string, Map<string, Slot>>();
  private pendingTotal = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  // The slot counted last: a run of calls for one job type skips the map lookups.
  private lastJobType: string | undefined;
  private lastTenant: string | undefined;
  private lastSlot: Slot | undefined;

  constructor(options: EngineOptions = {}) {
    const { seed, config, mlRuntime, store } = options;
    super();
    const json = config === undefined ? undefined : typeof config === 'string' ? config : JSON.stringify(config);
    this.native = newNativeEngine(seed, json, mlRuntime, store);
    // Lifecycle events ('retry_scheduled', 'gave_up', …) flow from the core only while
    // someone listens; they arrive on the event loop and never hold up a decision.
    this.on('newListener', (name: string | symbol) => {
      if (typeof name === 'string' && EVENT_NAMES.has(name) && this.subscription === undefined) {
        this.subscription = this.native.subscribe([], 1024, (json: string) => {
          const event = JSON.parse(json) as LifecycleEvent;
          this.emit(event.type, event);
        });
      }
    });
    this.on('removeListener', () => {
      if (this.subscription !== undefined && ![...EVENT_NAMES].some((n) => this.listenerCount(n) > 0)) {
        this.subscription.close();
        this.subscription = undefined;
      }
    });
  }

  /**
   * Frees the engine now: its memory, threads and store connections. Counted successes
   * are told to it first; event listeners stop. Later calls throw `code: 'closed'`
   * (retry() still returns a successful first attempt's value: its success path never
   * asks the engine). Calling it again does nothing.
   */
  close(): void {
    if (this.native.closed) return;
    this.flushSuccesses();
    this.subscription?.close();
    this.subscription = undefined;
    this.native.close();
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.native.closed;
  }

  /** `using engine = new Engine()` closes it at the end of the block. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** The operator overrides in force, most specific first. */
  overrides(nowMs?: number): Override[] {
    return JSON.parse(this.native.overrides(nowMs)) as Override[];
  }

  /** Adds an override (validated); returns the one of the same name it replaced, if any. */
  addOverride(override: Override, nowMs?: number): Override | null {
    return JSON.parse(this.native.addOverride(JSON.stringify(override), nowMs)) as Override | null;
  }

  /** Removes an override by name and returns it; `code: 'not_found'` if there is none. */
  removeOverride(name: string): Override {
    return JSON.parse(this.native.removeOverride(name)) as Override;
  }

  /** A downstream's 0–100 health score, the factor its rules-tier delays get, and why. */
  health(jobType: string, nowMs?: number): HealthReport {
    return JSON.parse(this.native.health(jobType, nowMs)) as HealthReport;
  }

  /** The engine's counters (decisions, guardrails, events by kind, dropped events…). */
  metrics(): Record<string, unknown> {
    return JSON.parse(this.native.metrics()) as Record<string, unknown>;
  }

  /** Should this failure be retried, and after how long? */
  decide(features: Features, nowMs?: number): Decision {
    if (this.pendingTotal !== 0) this.flushSuccesses();
    return JSON.parse(this.native.decide(JSON.stringify(features), nowMs)) as Decision;
  }

  /** Tells the engine what happened on an attempt, so it learns. */
  record(attempt: Attempt, nowMs?: number): void {
    this.native.record(JSON.stringify(attempt), nowMs);
  }

  /** Counts `count` first attempts of `jobType` that succeeded (the budget's base). */
  recordSuccesses(jobType: string, tenant?: string | null, count = 1, nowMs?: number): void {
    this.native.recordSuccesses(jobType, tenant ?? undefined, count, nowMs);
  }

  /**
   * Probe-and-release: has `jobType`'s downstream come back since `failedAtMs` (when a
   * waiting job's attempt failed)? Ask every `decision.check_in_ms`; retry now if so.
   */
  released(jobType: string, failedAtMs: number, nowMs?: number): boolean {
    if (this.pendingTotal !== 0) this.flushSuccesses();
    return this.native.released(jobType, failedAtMs, nowMs);
  }

  /** The schedule the engine would follow from this failure if every retry failed. */
  preview(features: Features, maxAttempts: number, nowMs?: number): Preview {
    return JSON.parse(this.native.preview(JSON.stringify(features), maxAttempts, nowMs)) as Preview;
  }

  /** What was seen for (jobType, errorClass) over the last `windowMs` (default 24 h). */
  stats(jobType: string, errorClass: string, windowMs?: number, nowMs?: number): Stats {
    return JSON.parse(this.native.stats(jobType, errorClass, windowMs, nowMs)) as Stats;
  }

  /** The rules tier's policies, highest priority first. */
  policies(): Policy[] {
    return JSON.parse(this.native.policies()) as Policy[];
  }

  /** Adds a policy; a name already in use is `invalid_input` on `name`. */
  addPolicy(policy: Policy): void {
    this.native.addPolicy(JSON.stringify(policy));
  }

  /** Removes a policy by name and returns it; `code: 'not_found'` if there is none. */
  removePolicy(name: string): Policy {
    return JSON.parse(this.native.removePolicy(name)) as Policy;
  }

  /** The guardrails in force. */
  guardrails(): Guardrails {
    return JSON.parse(this.native.guardrails()) as Guardrails;
  }

  /** Changes some guardrail fields (validated; nothing changes on error) and returns all of them. */
  updateGuardrails(partial: Partial<Guardrails>): Guardrails {
    return JSON.parse(this.native.updateGuardrails(JSON.stringify(partial))) as Guardrails;
  }

  /** The emergency stop: while on, nothing is retried. */
  emergencyStop(on: boolean): void {
    this.native.emergencyStop(on);
  }

  isEmergencyStopped(): boolean {
    return this.native.isEmergencyStopped();
  }

  /**
   * Adds a model version: an ONNX file and its sidecar JSON (default: beside it, `.json`).
   * The model is loaded once to prove it matches its feature contract; a mismatch
   * throws (`code: 'model'` or `'invalid_input'` naming the field) and nothing changes.
   */
  registerModel(modelPath: string, sidecarPath?: string, nowMs?: number): ModelInfo {
    return JSON.parse(this.native.registerModel(modelPath, sidecarPath, nowMs)) as ModelInfo;
  }

  /** Registered model versions with their training metrics and deployment state. */
  models(): ModelInfo[] {
    return JSON.parse(this.native.models()) as ModelInfo[];
  }

  /** Serves `version` to `canaryPercent` % of jobs (0–100, sticky per job id). */
  deployModel(version: string, canaryPercent = 100, nowMs?: number): Deployment {
    return JSON.parse(this.native.deployModel(version, canaryPercent, nowMs)) as Deployment;
  }

  /** Runs `version` in shadow (decides alongside, compared, never served); `null` stops it. */
  shadowModel(version: string | null, nowMs?: number): Deployment {
    return JSON.parse(this.native.shadowModel(version ?? undefined, nowMs)) as Deployment;
  }

  /** Back to the previous deployment (`code: 'not_found'` if there is none). */
  rollbackModel(nowMs?: number): Deployment {
    return JSON.parse(this.native.rollbackModel(nowMs)) as Deployment;
  }

  /** No model serves or watches: decisions come from the Bayesian tier. */
  rollbackToBayesian(nowMs?: number): Deployment {
    return JSON.parse(this.native.rollbackToBayesian(nowMs)) as Deployment;
  }

  /** The ML tier: runtime, deployment, versions, ML-vs-Bayesian comparison, failures. */
  mlStatus(): MlStatus {
    return JSON.parse(this.native.mlStatus()) as MlStatus;
  }

  /** The model registry as JSON text, for a store to persist. */
  mlSnapshot(): string {
    return this.native.mlSnapshot();
  }

  /** Replaces the model registry from `mlSnapshot()`'s JSON. */
  restoreMl(snapshot: string): void {
    this.native.restoreMl(snapshot);
  }

  /**
   * Waits until the store has every outcome and audit record so far (blocks this
   * thread, at most `timeoutMs`); throws `code: 'store'` while the store is unreachable.
   */
  flush(timeoutMs = 10_000): void {
    this.native.flush(timeoutMs);
  }

  /** The most recent sampled decisions, newest first (empty with the memory store). */
  auditTrail(limit = 100): AuditRecord[] {
    return JSON.parse(this.native.auditTrail(limit)) as AuditRecord[];
  }

  /** Puts a job in the dead-letter queue; returns the entry with its `id`. */
  addDeadLetter(entry: NewDeadLetter, nowMs?: number): DeadLetterRecord {
    return JSON.parse(this.native.addDeadLetter(JSON.stringify(entry), nowMs)) as DeadLetterRecord;
  }

  /** Dead letters, newest first. */
  deadLetters(query: DeadLetterQuery = {}): DeadLetterRecord[] {
    return JSON.parse(this.native.deadLetters(JSON.stringify(query))) as DeadLetterRecord[];
  }

  /** One dead letter with its attempt history; `code: 'not_found'` if there is none. */
  deadLetter(id: string): DeadLetterRecord {
    return JSON.parse(this.native.deadLetter(id)) as DeadLetterRecord;
  }

  /** Marks a dead letter retried and returns it (with its payload) for re-enqueueing. */
  retryDeadLetter(id: string, nowMs?: number): DeadLetterRecord {
    return JSON.parse(this.native.retryDeadLetter(id, nowMs)) as DeadLetterRecord;
  }

  /** Closes a dead letter with a note. */
  resolveDeadLetter(id: string, note: string, nowMs?: number): DeadLetterRecord {
    return JSON.parse(this.native.resolveDeadLetter(id, note, nowMs)) as DeadLetterRecord;
  }

  /** How many dead letters there are (with this status, or in all). */
  deadLetterCount(status?: DeadLetterStatus): number {
    return this.native.deadLetterCount(status);
  }

  /**
   * Tells the engine now about the first-attempt successes retry() has counted.
   * retry() batches them (no native call per success); they are flushed on the
   * next failure, every 1024 successes, a second after a batch starts (an unref'd
   * timer) and before the process exits. Invalid labels are dropped here: the
   * failure path reports them.
   */
  flushSuccesses(): void {
    if (this.native.closed) {
      this.pending = new Map();
      this.pendingTotal = 0;
      this.lastSlot = undefined;
    }
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    pendingEngines.delete(this);
    if (this.pendingTotal === 0) return;
    const pending = this.pending;
    this.pending = new Map();
    this.pendingTotal = 0;
    this.lastSlot = undefined;
    for (const [jobType, tenants] of pending) {
      for (const [tenant, slot] of tenants) {
        try {
          this.native.recordSuccesses(jobType, tenant === '' ? undefined : tenant, slot.n, slot.clock.now());
        } catch {
          // An invalid job type or tenant: the failure path throws a named error for it.
        }
      }
    }
  }

  /** @internal counts one first-attempt success (no native call). */
  countSuccess(jobType: string, tenant: string | undefined, clock: Clock): void {
    let slot = this.lastSlot;
    if (slot !== undefined && jobType === this.lastJobType && tenant === this.lastTenant) {
      slot.n++;
    } else {
      let tenants = this.pending.get(jobType);
      if (tenants === undefined) {
        tenants = new Map();
        this.pending.set(jobType, tenants);
      }
      const key = tenant ?? '';
      slot = tenants.get(key);
      if (slot === undefined) {
        slot = { n: 1, clock };
        tenants.set(key, slot);
      } else {
        slot.n++;
      }
      this.lastJobType = jobType;
      this.lastTenant = tenant;
      this.lastSlot = slot;
    }
    const total = ++this.pendingTotal;
    if (total >= FLUSH_EVERY) this.flushSuccesses();
    else if (total === 1) this.armFlush();
  }

  private armFlush(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushSuccesses();
    }, FLUSH_AFTER_MS);
    this.timer.unref();
    pendingEngines.add(this);
    if (!exitHooked) {
      exitHooked = true;
      process.on('beforeExit', flushAll);
      process.on('exit', flushAll);
    }
  }
}

let defaultInstance: Engine | undefined;

/** The process-wide engine used when retry() is given none (created on first use). */
export function defaultEngine(): Engine {
  if (defaultInstance === undefined) defaultInstance = new Engine();
  return defaultInstance;
}

/** Replaces the process-wide engine (e.g. one built from a config file). */
export function setDefaultEngine(engine: Engine): void {
  defaultInstance?.flushSuccesses();
  defaultInstance = engine;
}

export { realClock };
