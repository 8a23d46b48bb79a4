/**
 * Label selectors, as Kubernetes `matchLabels` and Istio workload selectors use them: every
 * key/value of the selector must be present on the labels; an absent or empty selector selects
 * everything.
 *
 * ```ts
 * matchesSelector(selector, labels): boolean
 * ```
 */
export function matchesSelector(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) {
    if (!Object.hasOwn(labels, k) || labels[k] !== v) return false;
  }
  return true;
}
