'use strict';
const { Engine, testing } = require('smartretry');

const T0 = 1_700_000_000_000;

/** Records every call the JS layer makes to the native engine, by method name. */
function spyNative(engine) {
  const calls = {};
  const real = engine.native;
  engine.native = new Proxy(real, {
    get(target, key) {
      const value = target[key];
      if (typeof value !== 'function') return value;
      return (...args) => {
        (calls[key] ??= []).push(args);
        return value.apply(target, args);
      };
    },
  });
  return calls;
}

/** A fresh seeded engine, a virtual clock and a spy on native calls. */
function setup(seed = 1) {
  const engine = new Engine({ seed });
  const clock = testing.virtualClock(T0);
  const calls = spyNative(engine);
  return { engine, clock, calls };
}

/** An error shaped like a failed HTTP call. */
function httpError(status, extra = {}) {
  return Object.assign(new Error(`HTTP ${status}`), { status }, extra);
}

/** A function that fails with each of `failures` in turn, then returns `value`. */
function flaky(failures, value = 'ok') {
  const seen = [];
  const fn = async (attempt, ctx) => {
    seen.push({ attempt, ctx });
    if (attempt <= failures.length) {
      const f = failures[attempt - 1];
      throw typeof f === 'function' ? f() : f;
    }
    return value;
  };
  fn.seen = seen;
  return fn;
}

module.exports = { T0, spyNative, setup, httpError, flaky };
