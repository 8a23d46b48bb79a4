/**
 * Load-balancing choices over a list of endpoints. Pure: state lives in the returned objects,
 * randomness is injected. The mesh issue adds LEAST_REQUEST and consistent hashing.
 */
export interface Picker<T> {
  pick(endpoints: readonly T[]): T | undefined;
}

export function randomPicker<T>(random: () => number): Picker<T> {
  return {
    pick(endpoints) {
      if (endpoints.length === 0) return undefined;
      return endpoints[Math.floor(random() * endpoints.length) % endpoints.length];
    },
  };
}

export function roundRobinPicker<T>(): Picker<T> {
  let next = 0;
  return {
    pick(endpoints) {
      if (endpoints.length === 0) return undefined;
      const i = next % endpoints.length;
      next = (i + 1) % 1_000_000_007;
      return endpoints[i];
    },
  };
}
