/**
 * A network lab for chaos runs: each instance in its own Linux network namespace, joined to a
 * bridge in the root namespace by a veth pair, with its own address. A partition is then real:
 * the instance's link goes down and every packet to or from it is dropped silently — unlike a
 * kill, callers see timeouts, not refused connections. Needs root and iproute2 (`ip`).
 *
 * Names carry the owner's pid, so a lab left behind by a killed run is swept by the next one.
 */
import { execFileSync } from 'node:child_process';

const IP = '/usr/sbin/ip';
const NS_PREFIX = 'concord-';
/** Linux interface names are at most 15 bytes. */
const IFNAME_MAX_BYTES = 15;
const INSTANCES_MAX = 200;

export interface NetnsHost {
  instanceId: string;
  ns: string;
  address: string;
  /** The veth end on the bridge: down = partitioned. */
  hostIf: string;
}

function ip(args: string[]): string {
  return execFileSync(IP, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}

function quietly(fn: () => unknown): void {
  try {
    fn();
  } catch {
    /* already gone */
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why a lab cannot be made here, or null when it can. */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    ip(['netns', 'list']);
  } catch (err) {
    return `iproute2 is missing or refused (${(err as Error).message.split('\n')[0]}); apt-get install -y iproute2`;
  }
  return null;
}

export class NetnsLab {
  readonly bridge: string;
  /** The bridge's address: the root namespace (control plane, load generator) is reached here. */
  readonly gatewayAddress: string;
  private readonly tag: string;
  private readonly subnet: string;
  private readonly hosts = new Map<string, NetnsHost>();
  private destroyed = false;

  private constructor(tag: string, subnet: string) {
    this.tag = tag;
    this.subnet = subnet;
    this.bridge = `ccb${tag}`;
    this.gatewayAddress = `${subnet}.1`;
  }

  /** Sweeps labs of dead owners, then makes a bridge on a free 10.213.x.0/24. */
  static create(): NetnsLab {
    const why = netnsUnavailable();
    if (why) throw new Error(why);
    NetnsLab.sweep();
    const used = ip(['-o', '-4', 'addr']);
    let third = 1 + (process.pid % 250);
    for (let i = 0; i < 250 && used.includes(`10.213.${third}.`); i++) third = 1 + ((third + 1) % 250);
    const lab = new NetnsLab(process.pid.toString(36), `10.213.${third}`);
    ip(['link', 'add', lab.bridge, 'type', 'bridge']);
    ip(['addr', 'add', `${lab.gatewayAddress}/24`, 'dev', lab.bridge]);
    ip(['link', 'set', lab.bridge, 'up']);
    return lab;
  }

  /** Deletes namespaces and bridges whose owner process is gone. */
  static sweep(): void {
    let list = '';
    try {
      list = ip(['netns', 'list']);
    } catch {
      return;
    }
    for (const line of list.split('\n')) {
      const name = line.split(' ')[0] ?? '';
      const m = new RegExp(`^${NS_PREFIX}(\\d+)-`).exec(name);
      if (!m || alive(Number(m[1]))) continue;
      quietly(() => ip(['netns', 'del', name]));
      quietly(() => ip(['link', 'del', `ccb${Number(m[1]).toString(36)}`]));
    }
  }

  /** The namespace of an instance, made on first use and kept across its restarts. */
  host(instanceId: string): NetnsHost {
    const known = this.hosts.get(instanceId);
    if (known) return known;
    if (this.destroyed) throw new Error('the network lab is gone');
    const n = this.hosts.size + 2;
    if (n > INSTANCES_MAX) throw new Error(`a network lab holds at most ${INSTANCES_MAX} instances`);
    const h: NetnsHost = { instanceId, ns: `${NS_PREFIX}${process.pid}-${n}`, address: `${this.subnet}.${n}`, hostIf: `cch${this.tag}x${n}` };
    const peer = `ccp${this.tag}x${n}`;
    if (Buffer.byteLength(h.hostIf) > IFNAME_MAX_BYTES) throw new Error(`interface name ${h.hostIf} is too long`);
    ip(['netns', 'add', h.ns]);
    ip(['link', 'add', h.hostIf, 'type', 'veth', 'peer', 'name', peer]);
    ip(['link', 'set', peer, 'netns', h.ns]);
    ip(['link', 'set', h.hostIf, 'master', this.bridge]);
    ip(['link', 'set', h.hostIf, 'up']);
    ip(['-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', peer]);
    ip(['-n', h.ns, 'link', 'set', peer, 'up']);
    ip(['-n', h.ns, 'link', 'set', 'lo', 'up']);
    ip(['-n', h.ns, 'route', 'add', 'default', 'via', this.gatewayAddress]);
    this.hosts.set(instanceId, h);
    return h;
  }

  /** The command prefix that runs a program inside an instance's namespace. */
  prefix(instanceId: string): string[] {
    return [IP, 'netns', 'exec', this.host(instanceId).ns];
  }

  /** Cuts an instance off from every other process: its link goes down, packets are dropped. */
  partition(instanceId: string): void {
    const h = this.hosts.get(instanceId);
    if (!h) throw new Error(`${instanceId} is not in the network lab`);
    ip(['link', 'set', h.hostIf, 'down']);
  }

  /** Joins a partitioned instance again. */
  heal(instanceId: string): void {
    const h = this.hosts.get(instanceId);
    if (!h) throw new Error(`${instanceId} is not in the network lab`);
    ip(['link', 'set', h.hostIf, 'up']);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const h of this.hosts.values()) quietly(() => ip(['netns', 'del', h.ns]));
    quietly(() => ip(['link', 'del', this.bridge]));
    this.hosts.clear();
  }
}
