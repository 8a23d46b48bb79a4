/**
 * Hosts in Istio resources name Concord services. Concord has one namespace, `default`, so a
 * host is `<service>`, `<service>.default`, `<service>.default.svc` or
 * `<service>.default.svc.cluster.local` (the forms Kubernetes DNS gives a Service in
 * `default`). Wildcards, other namespaces and external names have no Concord service behind
 * them and are refused. Pure.
 */

const SERVICE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const SUFFIXES = ['', '.default', '.default.svc', '.default.svc.cluster.local'];

export type HostResult = { ok: true; service: string } | { ok: false; error: string };

export function serviceOfHost(host: string): HostResult {
  if (host.length === 0) return { ok: false, error: 'must not be empty' };
  if (host.includes('*')) return { ok: false, error: `wildcard host "${host}" is not supported by Concord; name one service` };
  for (const suffix of SUFFIXES) {
    if (!host.endsWith(suffix)) continue;
    const name = host.slice(0, host.length - suffix.length);
    if (SERVICE.test(name)) return { ok: true, service: name };
  }
  const ns = /^[^.]+\.([^.]+)(?:\.svc(?:\.cluster\.local)?)?$/.exec(host);
  if (ns && ns[1] !== 'default') return { ok: false, error: `host "${host}" is in namespace "${ns[1]}"; Concord has one namespace, "default"` };
  return { ok: false, error: `host "${host}" is not a Concord service name (use "<service>" or "<service>.default.svc.cluster.local", lower case)` };
}

/** The message for a host that no registered (or configured) service answers to. */
export function unknownHostMessage(service: string, known: ReadonlySet<string>): string {
  const names = [...known].filter((n) => n !== 'control-plane').sort();
  const shown = names.length > 20 ? `${names.slice(0, 20).join(', ')}, …` : names.join(', ');
  return `no service "${service}" is registered (known: ${shown || 'none'}); start it first, or list it in CONCORD_MESH_KNOWN_HOSTS`;
}
