/**
 * A topology file names the processes to run: services, instances per service and versions.
 * The control plane is implicit and always first.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export interface TopologyService {
  name: string;
  /** The app folder under apps/ (defaults to the name). */
  app: string;
  instances: number;
  /** Instances take versions in turn: 2 instances over [v1, v2] → one of each. */
  versions: string[];
  env: Record<string, string>;
  /** Extra Node.js flags for these processes (e.g. --cpu-prof), which NODE_OPTIONS refuses. */
  nodeArgs: string[];
}

export interface Topology {
  services: TopologyService[];
}

export interface ProcessSpec {
  service: string;
  app: string;
  instanceId: string;
  version: string;
  env: Record<string, string>;
  nodeArgs: string[];
}

const MAX_INSTANCES = 16;
const NAME = /^[a-z][a-z0-9-]{0,30}$/;

export class TopologyError extends Error {
  override name = 'TopologyError';
}

export function parseTopology(text: string, source: string): Topology {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new TopologyError(`${source}: not valid YAML: ${(err as Error).message}`);
  }
  const problems: string[] = [];
  const services: TopologyService[] = [];
  const root = doc as { services?: unknown } | null;
  if (!root || typeof root !== 'object' || !Array.isArray(root.services)) {
    throw new TopologyError(`${source}: expected a mapping with a "services" list, e.g.\nservices:\n  - name: order\n    instances: 2`);
  }
  const seen = new Set<string>();
  for (const [i, raw] of (root.services as unknown[]).entries()) {
    const at = `${source}: services[${i}]`;
    if (!raw || typeof raw !== 'object') {
      problems.push(`${at} must be a mapping`);
      continue;
    }
    const s = raw as Record<string, unknown>;
    for (const k of Object.keys(s)) if (!['name', 'app', 'instances', 'versions', 'env', 'nodeArgs'].includes(k)) problems.push(`${at}.${k} is not a known field (name, app, instances, versions, env, nodeArgs)`);
    if (typeof s.name !== 'string' || !NAME.test(s.name)) {
      problems.push(`${at}.name must be a lower-case name such as "order"`);
      continue;
    }
    if (s.name === 'control-plane') {
      problems.push(`${at}: the control plane is started implicitly; remove it`);
      continue;
    }
    if (seen.has(s.name)) problems.push(`${at}.name "${s.name}" appears twice`);
    seen.add(s.name);
    const instances = s.instances ?? 1;
    if (typeof instances !== 'number' || !Number.isInteger(instances) || instances < 1 || instances > MAX_INSTANCES) {
      problems.push(`${at}.instances must be an integer from 1 to ${MAX_INSTANCES}`);
    }
    const versions = s.versions ?? ['v1'];
    if (!Array.isArray(versions) || versions.length === 0 || !versions.every((v) => typeof v === 'string' && /^[A-Za-z0-9._-]{1,32}$/.test(v))) {
      problems.push(`${at}.versions must be a non-empty list of labels such as [v1, v2]`);
    }
    const env = s.env ?? {};
    if (typeof env !== 'object' || env === null || Array.isArray(env) || !Object.values(env).every((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) {
      problems.push(`${at}.env must map variable names to strings`);
    }
    const nodeArgs = s.nodeArgs ?? [];
    if (!Array.isArray(nodeArgs) || !nodeArgs.every((a) => typeof a === 'string' && /^--[a-z0-9-]+(=\S*)?$/.test(a))) {
      problems.push(`${at}.nodeArgs must be a list of Node.js flags such as ["--cpu-prof", "--cpu-prof-dir=/tmp/prof"]`);
    }
    const app = s.app ?? s.name;
    if (typeof app !== 'string' || !NAME.test(app)) problems.push(`${at}.app must be an app folder name`);
    services.push({
      name: s.name,
      app: app as string,
      instances: instances as number,
      versions: versions as string[],
      env: Object.fromEntries(Object.entries(env as object).map(([k, v]) => [k, String(v)])),
      nodeArgs: nodeArgs as string[],
    });
  }
  if (problems.length > 0) throw new TopologyError(problems.join('\n'));
  return { services };
}

export function loadTopology(path: string): Topology {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TopologyError(`cannot read the topology file ${path}: ${(err as Error).message}`);
  }
  return parseTopology(text, path);
}

/** The apps a system of this topology runs: the control plane and every service's app. */
export function appsOf(t: Topology): Set<string> {
  return new Set(['control-plane', ...processesOf(t).map((p) => p.app)]);
}

/** Expands a topology into processes, each with a stable instance id (order-1, order-2, …). */
export function processesOf(t: Topology): ProcessSpec[] {
  const out: ProcessSpec[] = [];
  for (const s of t.services) {
    for (let i = 0; i < s.instances; i++) {
      const version = s.versions[i % s.versions.length] as string;
      out.push({ service: s.name, app: s.app, instanceId: `${s.name}-${i + 1}`, version, env: s.env, nodeArgs: s.nodeArgs });
    }
  }
  return out;
}
