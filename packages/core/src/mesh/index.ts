/**
 * The mesh core: the normalised Istio configuration (types.ts) and the pure decision modules of
 * the data plane, one idea per file. Exposed as the `mesh` namespace of @concord/core:
 * `mesh.VirtualService`, `mesh.compileVirtualService(...)`, `mesh.OutlierDetector`, …
 *
 * | file          | decides                                                                  |
 * |---------------|--------------------------------------------------------------------------|
 * | route.ts      | which VirtualService route a request takes, its weighted destination, mirroring |
 * | subsets.ts    | the endpoints of a destination+subset and its effective traffic policy  |
 * | balancers.ts  | which endpoint serves a try (RR, random, P2C least-request, ring hash)  |
 * | outlier.ts    | which endpoints are ejected, and until when                             |
 * | pool.ts       | dispatch / queue / reject (503) per connection-pool limits              |
 * | retry.ts      | retry or not, and the back-off                                           |
 * | fault.ts      | injected delay / abort for one try                                       |
 * | deadline.ts   | call and try budgets, the x-concord-timeout-ms header                    |
 * | headers.ts    | header set / add / remove                                                |
 * | authz.ts      | AuthorizationPolicy allow/deny, PeerAuthentication mode                  |
 * | telemetry.ts  | a workload's trace sampling percentage from Telemetry resources          |
 * | outcome.ts, random.ts, request.ts, labels.ts | shared vocabulary and helpers             |
 *
 * The order of one outbound call, as the shell (platform/mesh) composes them:
 * route → pickDestination → resolveDestination → (per try) decideFault → outlier.available →
 * balancer.pick → pool.acquire → send with attemptBudget → outlier.record → decideRetry.
 */
export * from './types.js';
export * from './outcome.js';
export * from './random.js';
export * from './request.js';
export * from './labels.js';
export * from './route.js';
export * from './subsets.js';
export * from './balancers.js';
export * from './outlier.js';
export * from './pool.js';
export * from './retry.js';
export * from './fault.js';
export * from './deadline.js';
export * from './headers.js';
export * from './authz.js';
export * from './telemetry.js';
