// Compiled by `tsc -p tests/tsconfig.json`: the CommonJS entry's types (`require`).
import smartretry = require('smartretry');

export async function usage(): Promise<number> {
  const engine = new smartretry.Engine({ seed: 1 });
  const d: smartretry.Decision = engine.decide({ job_type: 'a', attempt_number: 1 });
  return smartretry.retry(async (attempt) => attempt + d.delay_ms, { engine, maxAttempts: 2 });
}
