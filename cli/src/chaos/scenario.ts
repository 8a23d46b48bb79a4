/**
 * Chaos scenarios: named YAML files (cli/scenarios/<name>.yaml) saying which topology to run,
 * what load to apply, which faults to inject when, and what must hold afterwards. Validated
 * strictly; a mistake names the field and the accepted form.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDuration } from '@concord/core';
import { parse } from 'yaml';
import { ROOT } from '../paths.js';

export type FaultAction =
  | { kind: 'kill'; target: string }
  | { kind: 'pause'; target: string; forMs: number }
  /** Cuts an instance off the network (its own namespace's link goes down) for a while. */
  | { kind: 'partition'; target: string; forMs: number }
  | { kind: 'meshFault'; service: string; abortPercent: number; abortStatus: number; delayPercent: number; delayMs: number; forMs: number };

export interface FaultRule {
  atMs?: number;
  everyMs?: number;
  action: FaultAction;
}

export interface Scenario {
  name: string;
  description: string;
  topology: string;
  load: { durationMs: number; rate: number; connections: number; cancelRatio: number };
  faults: FaultRule[];
  expect: { minSuccess: number; settleWithinMs: number };
}

export class ScenarioError extends Error {
  override name = 'ScenarioError';
}

const SCENARIO_NAME = /^[a-z0-9][a-z0-9-]{0,40}$/;

export function scenarioPath(nameOrPath: string): string {
  if (SCENARIO_NAME.test(nameOrPath)) return join(ROOT, 'cli', 'scenarios', `${nameOrPath}.yaml`);
  return nameOrPath;
}

export function loadScenario(nameOrPath: string): Scenario {
  const path = scenarioPath(nameOrPath);
  if (!existsSync(path)) throw new ScenarioError(`no scenario "${nameOrPath}" (looked for ${path}); the named ones are in cli/scenarios/`);
  return parseScenario(readFileSync(path, 'utf8'), nameOrPath);
}

export function parseScenario(text: string, name: string): Scenario {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new ScenarioError(`${name}: not valid YAML: ${(err as Error).message}`);
  }
  const problems: string[] = [];
  const dur = (v: unknown, at: string, def?: number): number => {
    if (v === undefined && def !== undefined) return def;
    const r = parseDuration(v);
    if (!r.ok) {
      problems.push(`${at}: ${r.error}`);
      return 0;
    }
    return r.ms;
  };
  const num = (v: unknown, at: string, def: number, min: number, max: number): number => {
    if (v === undefined) return def;
    if (typeof v !== 'number' || !(v >= min && v <= max)) {
      problems.push(`${at} must be a number from ${min} to ${max}`);
      return def;
    }
    return v;
  };
  if (!doc || typeof doc !== 'object') throw new ScenarioError(`${name}: expected a mapping with load, faults and expect`);
  for (const k of Object.keys(doc)) if (!['description', 'topology', 'load', 'faults', 'expect'].includes(k)) problems.push(`${k} is not a known field (description, topology, load, faults, expect)`);
  const load = (doc.load ?? {}) as Record<string, unknown>;
  const expect = (doc.expect ?? {}) as Record<string, unknown>;
  const faults: FaultRule[] = [];
  const rawFaults = doc.faults ?? [];
  if (!Array.isArray(rawFaults)) problems.push('faults must be a list');
  else
    rawFaults.forEach((f: Record<string, unknown>, i: number) => {
      const at = `faults[${i}]`;
      const rule: Partial<FaultRule> = {};
      if (f.at !== undefined) rule.atMs = dur(f.at, `${at}.at`);
      if (f.every !== undefined) rule.everyMs = dur(f.every, `${at}.every`);
      if ((rule.atMs === undefined) === (rule.everyMs === undefined)) problems.push(`${at}: give exactly one of "at" (once) or "every" (repeating)`);
      if (typeof f.kill === 'string') rule.action = { kind: 'kill', target: f.kill };
      else if (typeof f.pause === 'string') rule.action = { kind: 'pause', target: f.pause, forMs: dur(f.for, `${at}.for`, 2000) };
      else if (typeof f.partition === 'string') {
        if (f.partition === 'control-plane') problems.push(`${at}.partition: the control plane stays in the root namespace; partition an instance, a service or random`);
        rule.action = { kind: 'partition', target: f.partition, forMs: dur(f.for, `${at}.for`, 5000) };
      }
      else if (typeof f.meshFault === 'string') {
        rule.action = {
          kind: 'meshFault',
          service: f.meshFault,
          abortPercent: num(f.abortPercent, `${at}.abortPercent`, 0, 0, 100),
          abortStatus: num(f.abortStatus, `${at}.abortStatus`, 503, 200, 599),
          delayPercent: num(f.delayPercent, `${at}.delayPercent`, 0, 0, 100),
          delayMs: dur(f.delay, `${at}.delay`, 100),
          forMs: dur(f.for, `${at}.for`, 10_000),
        };
      } else problems.push(`${at}: needs one of kill: <instance|service|random|control-plane>, pause: <…>, partition: <instance|service|random>, meshFault: <service>`);
      if (rule.action) faults.push(rule as FaultRule);
    });
  const scenario: Scenario = {
    name,
    description: typeof doc.description === 'string' ? doc.description : '',
    topology: typeof doc.topology === 'string' ? doc.topology : 'ha',
    load: {
      durationMs: dur(load.duration, 'load.duration', 60_000),
      rate: num(load.rate, 'load.rate', 0, 0, 1_000_000),
      connections: num(load.connections, 'load.connections', 32, 1, 10_000),
      cancelRatio: num(load.cancelRatio, 'load.cancelRatio', 0, 0, 1),
    },
    faults,
    expect: { minSuccess: num(expect.minSuccess, 'expect.minSuccess', 0.999, 0, 1), settleWithinMs: dur(expect.settleWithin, 'expect.settleWithin', 30_000) },
  };
  if (problems.length > 0) throw new ScenarioError(`${name}:\n  ${problems.join('\n  ')}`);
  return scenario;
}

/** Whether a scenario needs each instance in its own network namespace. */
export function needsNetworkLab(s: Scenario): boolean {
  return s.faults.some((f) => f.action.kind === 'partition');
}
