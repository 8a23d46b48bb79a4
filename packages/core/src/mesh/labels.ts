/**
 * Label selectors, as Kubernetes `matchLabels` and Istio workload selectors use them: every
 * key/value of the selector must be present on the labels; an absent or empty selector selects
 * everything.
 *
 * ```ts
 * matchesSelector(selector, labels): boolean
 * governing(resources, labels)    // → the resource selecting these labels, else the mesh-wide one
 * instanceVersion({meta, tags})   // → the `version` label of a registered instance
 * ```
 */
export function matchesSelector(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) {
    if (!Object.hasOwn(labels, k) || labels[k] !== v) return false;
  }
  return true;
}

/**
 * The resources that govern a workload, most specific first: the one whose non-empty `selector`
 * matches its labels (several: the first by name), then the mesh-wide one (no or an empty
 * selector; several: the first by name). Istio's hierarchy for PeerAuthentication and Telemetry,
 * where it would take the oldest; Concord's configuration has no creation time.
 */
export function governing<T extends { name: string; selector?: Readonly<Record<string, string>> }>(
  resources: readonly T[],
  labels: Readonly<Record<string, string>>,
): { specific?: T; meshWide?: T } {
  const byName = (a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const selects = (r: T) => r.selector !== undefined && Object.keys(r.selector).length > 0;
  const specific = resources.filter((r) => selects(r) && matchesSelector(r.selector, labels)).sort(byName)[0];
  const meshWide = resources.filter((r) => !selects(r)).sort(byName)[0];
  return { ...(specific ? { specific } : {}), ...(meshWide ? { meshWide } : {}) };
}

/** A registered instance's version: its `version` metadata, else its first tag (Consul's convention). */
export function instanceVersion(i: { meta: Readonly<Record<string, string>>; tags: readonly string[] }): string {
  return i.meta.version ?? i.tags[0] ?? '';
}
