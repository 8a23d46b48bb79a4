/**
 * Validation of Istio resources: every kind of invalid input is refused with the resource and
 * the exact field path; Istio's own documentation examples normalise as expected.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { stringify } from 'yaml';
import { parseStream } from '../src/mesh-config/parse.js';
import { regexProblem } from '../src/mesh-config/regex.js';
import { identify, validateSet } from '../src/mesh-config/validate.js';

const KNOWN = new Set(['reviews', 'ratings', 'productpage', 'httpbin', 'recommendation', 'order', 'payment', 'gateway', 'inventory', 'points', 'user']);

function run(yaml: string, known: ReadonlySet<string> = KNOWN) {
  const p = parseStream(yaml, 'test');
  assert.ok(p.ok, `YAML should parse: ${JSON.stringify(!p.ok && p.errors)}`);
  return validateSet(
    p.documents.map((d) => ({ key: identify(d.value)?.key ?? `document ${d.number}`, doc: d.value, changed: true })),
    { knownHosts: known },
  );
}

function ok(yaml: string) {
  const r = run(yaml);
  assert.deepEqual(
    r.issues.map((i) => `${i.resource}: ${i.field}: ${i.message}`),
    [],
  );
  return r.config;
}

function paths(yaml: string): string[] {
  return run(yaml).issues.map((i) => `${i.resource}: ${i.field}`);
}

// Istio's bookinfo samples (samples/bookinfo/networking), as published.
const REVIEWS_DR = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v3
    labels:
      version: v3
`;

const REVIEWS_JASON_VS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
`;

const REVIEWS_50_50_VS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 50
    - destination:
        host: reviews
        subset: v3
      weight: 50
`;

const RATINGS_DELAY = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    fault:
      delay:
        percentage:
          value: 100.0
        fixedDelay: 7s
    route:
    - destination:
        host: ratings
        subset: v1
  - route:
    - destination:
        host: ratings
        subset: v1
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ratings
spec:
  host: ratings
  subsets:
  - name: v1
    labels:
      version: v1
`;

// Istio's circuit-breaking task.
const HTTPBIN_CIRCUIT_BREAKER = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
        maxRequestsPerConnection: 1
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
`;

describe('Istio documentation examples normalise', () => {
  test('bookinfo: jason goes to reviews v2, everyone else to v1', () => {
    const c = ok(REVIEWS_JASON_VS + '---' + REVIEWS_DR);
    assert.deepEqual(c.virtualServices, [
      {
        name: 'reviews',
        hosts: ['reviews'],
        http: [
          { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' }, weight: 100 }] },
          { match: [], route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 100 }] },
        ],
      },
    ]);
    assert.deepEqual(c.destinationRules, [
      {
        name: 'reviews',
        host: 'reviews',
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          { name: 'v2', labels: { version: 'v2' } },
          { name: 'v3', labels: { version: 'v3' } },
        ],
      },
    ]);
  });

  test('bookinfo: a 50/50 split keeps its relative weights', () => {
    const c = ok(REVIEWS_50_50_VS + '---' + REVIEWS_DR);
    assert.deepEqual(
      c.virtualServices[0]!.http[0]!.route.map((r) => [r.destination.subset, r.weight]),
      [
        ['v1', 50],
        ['v3', 50],
      ],
    );
  });

  test('fault injection: a 7s delay for jason', () => {
    const c = ok(RATINGS_DELAY);
    assert.deepEqual(c.virtualServices[0]!.http[0]!.fault, { delay: { fixedDelayMs: 7000, percentage: 100 } });
  });

  test('circuit breaking: connection pool and outlier detection', () => {
    const c = ok(HTTPBIN_CIRCUIT_BREAKER);
    assert.deepEqual(c.destinationRules[0]!.trafficPolicy, {
      connectionPool: { maxConnections: 1, http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 },
      outlierDetection: { consecutive5xxErrors: 1, intervalMs: 1000, baseEjectionTimeMs: 180_000, maxEjectionPercent: 100 },
    });
  });

  test("outlier detection defaults are Istio's: 5 errors, 10s interval, 30s ejection, 10%", () => {
    const c = ok(`
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: recommendation}
spec:
  host: recommendation.default.svc.cluster.local
  trafficPolicy:
    outlierDetection: {}
`);
    assert.deepEqual(c.destinationRules[0]!.trafficPolicy?.outlierDetection, {
      consecutive5xxErrors: 5,
      intervalMs: 10_000,
      baseEjectionTimeMs: 30_000,
      maxEjectionPercent: 10,
    });
    assert.equal(c.destinationRules[0]!.host, 'recommendation');
  });

  test('timeouts, retries and mirroring (Istio tasks)', () => {
    const c = ok(`
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: httpbin
  namespace: default
spec:
  hosts:
  - httpbin.default.svc
  http:
  - route:
    - destination:
        host: httpbin
        subset: v1
      weight: 100
    timeout: 0.5s
    retries:
      attempts: 3
      perTryTimeout: 2s
    mirror:
      host: httpbin
      subset: v2
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
`);
    const r = c.virtualServices[0]!.http[0]!;
    assert.equal(r.timeoutMs, 500);
    // retryOn omitted: left empty, so the data plane applies Istio's default conditions (incl. 503).
    assert.deepEqual(r.retries, { attempts: 3, retryOn: [], perTryTimeoutMs: 2000 });
    assert.deepEqual(r.mirror, { host: 'httpbin', subset: 'v2' });
    assert.equal(r.mirrorPercentage, 100, 'Istio mirrors everything when mirrorPercentage is unset');
  });

  test('retryOn keeps conditions and status codes; header names are lower-cased', () => {
    const c = ok(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: recommendation}
spec:
  hosts: [recommendation]
  http:
  - match:
    - headers:
        X-Canary: {prefix: "yes"}
      uri: {regex: "/api/recommendations(/.*)?"}
      method: {exact: GET}
      queryParams:
        debug: {exact: "1"}
      ignoreUriCase: true
    headers:
      request:
        set: {X-Route: canary}
        remove: [X-Debug]
      response:
        add: {X-Percent: "100%%"}
    route:
    - destination: {host: recommendation}
    retries:
      attempts: 2
      retryOn: 5xx,gateway-error,503
      retryRemoteLocalities: false
`);
    const r = c.virtualServices[0]!.http[0]!;
    assert.deepEqual(r.match[0], {
      uri: { regex: '/api/recommendations(/.*)?' },
      method: { exact: 'GET' },
      headers: { 'x-canary': { prefix: 'yes' } },
      queryParams: { debug: { exact: '1' } },
      ignoreUriCase: true,
    });
    assert.deepEqual(r.headers, { request: { set: { 'x-route': 'canary' }, remove: ['x-debug'] }, response: { add: { 'x-percent': '100%' } } });
    assert.deepEqual(r.retries, { attempts: 2, retryOn: ['5xx', 'gateway-error', '503'], retryRemoteLocalities: false });
  });

  test('a key named __proto__ is kept as a key (or refused), never turned into a prototype', () => {
    const c = ok(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: recommendation}
spec:
  hosts: [recommendation]
  http:
  - match:
    - headers:
        __proto__: {exact: polluted}
    route:
    - destination: {host: recommendation}
`);
    const headers = c.virtualServices[0]!.http[0]!.match[0]!.headers!;
    assert.ok(Object.hasOwn(headers, '__proto__'));
    assert.equal(Object.getOwnPropertyDescriptor(JSON.parse(JSON.stringify(headers)), '__proto__')?.value.exact, 'polluted');
    assert.equal(Object.getPrototypeOf(headers), Object.prototype);
  });

  test('consistent hashing, TLS and subset traffic policies', () => {
    const c = ok(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: recommendation}
spec:
  host: recommendation
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpHeaderName: X-User
        ringHash: {minimumRingSize: 1024}
    tls: {mode: ISTIO_MUTUAL}
    connectionPool:
      http: {http2MaxRequests: 100, maxRetries: 0, idleTimeout: 30s}
      tcp: {connectTimeout: 30ms}
  subsets:
  - name: v2
    labels: {version: v2, app: recommendation}
    trafficPolicy:
      loadBalancer: {simple: LEAST_REQUEST}
`);
    const dr = c.destinationRules[0]!;
    assert.deepEqual(dr.trafficPolicy, {
      loadBalancer: { consistentHash: { httpHeaderName: 'x-user', minimumRingSize: 1024 } },
      connectionPool: { connectTimeoutMs: 30, http2MaxRequests: 100, idleTimeoutMs: 30_000 },
      tls: { mode: 'ISTIO_MUTUAL' },
    });
    assert.deepEqual(dr.subsets[0], {
      name: 'v2',
      labels: { version: 'v2', app: 'recommendation' },
      trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } },
    });
  });

  test('PeerAuthentication: UNSET inherits the mesh-wide mode, else PERMISSIVE', () => {
    const c = ok(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: payment}
spec:
  selector: {matchLabels: {app: payment}}
  mtls: {mode: UNSET}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: order}
spec:
  selector: {matchLabels: {app: order}}
  mtls: {mode: PERMISSIVE}
`);
    assert.deepEqual(c.peerAuthentications, [
      { name: 'default', mode: 'STRICT' },
      { name: 'order', mode: 'PERMISSIVE', selector: { app: 'order' } },
      { name: 'payment', mode: 'STRICT', selector: { app: 'payment' } },
    ]);
    const alone = ok(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: payment}
spec:
  selector: {matchLabels: {app: payment}}
`);
    assert.deepEqual(alone.peerAuthentications, [{ name: 'payment', mode: 'PERMISSIVE', selector: { app: 'payment' } }]);
  });

  test("Telemetry: Istio's mesh-wide example (in istio-system) and a workload override normalise to sampling percentages", () => {
    const c = ok(`
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: mesh-default
  namespace: istio-system
spec:
  # no selector specified, applies to all workloads
  tracing:
  - randomSamplingPercentage: 10.00
---
apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata: {name: payment-all}
spec:
  selector: {matchLabels: {app: payment}}
  tracing:
  - randomSamplingPercentage: 100
    match: {mode: CLIENT_AND_SERVER}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: order-inherits}
spec:
  selector: {matchLabels: {app: order}}
`);
    assert.deepEqual(c.telemetries, [
      { name: 'mesh-default', randomSamplingPercentage: 10 },
      { name: 'order-inherits', selector: { app: 'order' } },
      { name: 'payment-all', selector: { app: 'payment' }, randomSamplingPercentage: 100 },
    ]);
  });

  test("AuthorizationPolicy: Istio principals map to Concord's trust domain", () => {
    const c = ok(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: payment-allow-order
spec:
  selector:
    matchLabels:
      app: payment
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/order"]
    to:
    - operation:
        methods: ["POST", "GET"]
        paths: ["/internal/charges*"]
  - from:
    - source:
        notPrincipals: ["*"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all-admin}
spec:
  action: DENY
  rules:
  - to:
    - operation: {paths: ["/api/admin/*"], notMethods: [GET]}
`);
    assert.deepEqual(c.authorizationPolicies, [
      { name: 'deny-all-admin', action: 'DENY', rules: [{ to: [{ paths: ['/api/admin/*'], notMethods: ['GET'] }] }] },
      {
        name: 'payment-allow-order',
        action: 'ALLOW',
        selector: { app: 'payment' },
        rules: [
          { from: [{ principals: ['concord.local/ns/default/sa/order'] }], to: [{ methods: ['POST', 'GET'], paths: ['/internal/charges*'] }] },
          { from: [{ notPrincipals: ['*'] }] },
        ],
      },
    ]);
  });

  test('an ALLOW policy without rules is kept (it denies every request, as in Istio)', () => {
    const c = ok(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing}
spec: {selector: {matchLabels: {app: payment}}}
`);
    assert.deepEqual(c.authorizationPolicies, [{ name: 'allow-nothing', action: 'ALLOW', rules: [], selector: { app: 'payment' } }]);
  });
});

/** A VirtualService + DestinationRule pair that is valid; each case breaks one thing. */
/** Free-form fixtures: each case reaches into them to break one thing. */
// biome-ignore lint/suspicious/noExplicitAny: test fixtures are free-form YAML data
type Fixture = any;

function base() {
  const vs: Fixture = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews' },
    spec: {
      hosts: ['reviews'],
      http: [
        {
          match: [{ uri: { prefix: '/api' }, headers: { 'end-user': { exact: 'jason' } } }],
          route: [{ destination: { host: 'reviews', subset: 'v2' } }],
          timeout: '10s',
          retries: { attempts: 3, perTryTimeout: '2s', retryOn: '5xx' },
          fault: { abort: { httpStatus: 503, percentage: { value: 10 } }, delay: { fixedDelay: '1s', percentage: { value: 5 } } },
        },
        {
          route: [
            { destination: { host: 'reviews', subset: 'v1' }, weight: 90 },
            { destination: { host: 'reviews', subset: 'v2' }, weight: 10 },
          ],
        },
      ],
    },
  };
  const dr: Fixture = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews' },
    spec: {
      host: 'reviews',
      trafficPolicy: {
        loadBalancer: { simple: 'ROUND_ROBIN' },
        connectionPool: { tcp: { maxConnections: 10 }, http: { http1MaxPendingRequests: 5 } },
        outlierDetection: { consecutive5xxErrors: 3, interval: '1s', baseEjectionTime: '30s', maxEjectionPercent: 50 },
        tls: { mode: 'ISTIO_MUTUAL' },
      },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    },
  };
  const pa: Fixture = { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default' }, spec: { mtls: { mode: 'STRICT' } } };
  const ap: Fixture = {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'payment' },
    spec: {
      selector: { matchLabels: { app: 'payment' } },
      action: 'ALLOW',
      rules: [
        { from: [{ source: { principals: ['cluster.local/ns/default/sa/order'] } }], to: [{ operation: { methods: ['POST'], paths: ['/internal/*'] } }] },
      ],
    },
  };
  const tel: Fixture = {
    apiVersion: 'telemetry.istio.io/v1',
    kind: 'Telemetry',
    metadata: { name: 'order-tracing' },
    spec: { selector: { matchLabels: { app: 'order' } }, tracing: [{ randomSamplingPercentage: 50 }] },
  };
  return { vs, dr, pa, ap, tel };
}

function yamlOf(docs: unknown[]): string {
  return docs.map((d) => stringify(d)).join('---\n');
}

type Docs = ReturnType<typeof base>;

const INVALID: Array<[string, (d: Docs) => unknown[] | undefined, string[]]> = [
  ['an unknown field', (d) => void (d.vs.spec.http[0].retry = { attempts: 1 }), ['VirtualService/reviews: spec.http[0].retry']],
  [
    'an unknown field deep down',
    (d) => void (d.dr.spec.trafficPolicy.outlierDetection.intervall = '1s'),
    ['DestinationRule/reviews: spec.trafficPolicy.outlierDetection.intervall'],
  ],
  ['an unknown top-level field', (d) => void (d.vs.status = {}), ['VirtualService/reviews: status']],
  ['a bad duration', (d) => void (d.vs.spec.http[0].timeout = '10 seconds'), ['VirtualService/reviews: spec.http[0].timeout']],
  ['a duration as a number', (d) => void (d.vs.spec.http[0].retries.perTryTimeout = 2), ['VirtualService/reviews: spec.http[0].retries.perTryTimeout']],
  ['a duration under 1ms', (d) => void (d.vs.spec.http[0].timeout = '500us'), ['VirtualService/reviews: spec.http[0].timeout']],
  ['a zero timeout', (d) => void (d.vs.spec.http[0].timeout = '0s'), ['VirtualService/reviews: spec.http[0].timeout']],
  [
    'a sub-millisecond precision duration',
    (d) => void (d.dr.spec.trafficPolicy.outlierDetection.interval = '1.0005s'),
    ['DestinationRule/reviews: spec.trafficPolicy.outlierDetection.interval'],
  ],
  ['a negative weight', (d) => void (d.vs.spec.http[1].route[1].weight = -10), ['VirtualService/reviews: spec.http[1].route[1].weight']],
  ['a fractional weight', (d) => void (d.vs.spec.http[1].route[0].weight = 1.5), ['VirtualService/reviews: spec.http[1].route[0].weight']],
  ['a weight written as a string', (d) => void (d.vs.spec.http[1].route[0].weight = '90'), ['VirtualService/reviews: spec.http[1].route[0].weight']],
  [
    'weights that sum to zero',
    (d) => {
      d.vs.spec.http[1].route[0].weight = 0;
      d.vs.spec.http[1].route[1].weight = 0;
    },
    ['VirtualService/reviews: spec.http[1].route'],
  ],
  [
    'a subset no DestinationRule defines',
    (d) => void (d.vs.spec.http[1].route[1].destination.subset = 'v3'),
    ['VirtualService/reviews: spec.http[1].route[1].destination.subset'],
  ],
  [
    'a subset of a host without a DestinationRule',
    (d) => [d.vs],
    [
      'VirtualService/reviews: spec.http[0].route[0].destination.subset',
      'VirtualService/reviews: spec.http[1].route[0].destination.subset',
      'VirtualService/reviews: spec.http[1].route[1].destination.subset',
    ],
  ],
  [
    'a destination host with no service',
    (d) => void (d.vs.spec.http[0].route[0].destination = { host: 'reveiws' }),
    ['VirtualService/reviews: spec.http[0].route[0].destination.host'],
  ],
  ['a VirtualService host with no service', (d) => void d.vs.spec.hosts.push('details'), ['VirtualService/reviews: spec.hosts[1]']],
  [
    'a DestinationRule host with no service',
    (d) => [{ ...d.dr, metadata: { name: 'details' }, spec: { host: 'details.default.svc.cluster.local' } }],
    ['DestinationRule/details: spec.host'],
  ],
  ['a host in another namespace', (d) => void (d.vs.spec.hosts = ['reviews.prod.svc.cluster.local']), ['VirtualService/reviews: spec.hosts[0]']],
  ['a wildcard host', (d) => void (d.vs.spec.hosts = ['*.example.com']), ['VirtualService/reviews: spec.hosts[0]']],
  ['a mirror host with no service', (d) => void (d.vs.spec.http[1].mirror = { host: 'shadow' }), ['VirtualService/reviews: spec.http[1].mirror.host']],
  [
    'a mirror subset not defined',
    (d) => void (d.vs.spec.http[1].mirror = { host: 'reviews', subset: 'v9' }),
    ['VirtualService/reviews: spec.http[1].mirror.subset'],
  ],
  [
    'mirrorPercentage without mirror',
    (d) => void (d.vs.spec.http[1].mirrorPercentage = { value: 50 }),
    ['VirtualService/reviews: spec.http[1].mirrorPercentage'],
  ],
  [
    'a mirror percentage above 100',
    (d) => void Object.assign(d.vs.spec.http[1], { mirror: { host: 'reviews' }, mirrorPercentage: { value: 101 } }),
    ['VirtualService/reviews: spec.http[1].mirrorPercentage.value'],
  ],
  ['VirtualService.gateways', (d) => void (d.vs.spec.gateways = ['my-gateway']), ['VirtualService/reviews: spec.gateways']],
  ['VirtualService.tcp', (d) => void (d.vs.spec.tcp = [{ route: [] }]), ['VirtualService/reviews: spec.tcp']],
  ['VirtualService.tls', (d) => void (d.vs.spec.tls = []), ['VirtualService/reviews: spec.tls']],
  ['VirtualService.exportTo', (d) => void (d.vs.spec.exportTo = ['.']), ['VirtualService/reviews: spec.exportTo']],
  ['an HTTP redirect', (d) => void (d.vs.spec.http[0].redirect = { uri: '/x' }), ['VirtualService/reviews: spec.http[0].redirect']],
  [
    'a destination port',
    (d) => void (d.vs.spec.http[0].route[0].destination.port = { number: 9080 }),
    ['VirtualService/reviews: spec.http[0].route[0].destination.port'],
  ],
  ['an http route without route', (d) => void delete d.vs.spec.http[0].route, ['VirtualService/reviews: spec.http[0].route']],
  ['no hosts', (d) => void (d.vs.spec.hosts = []), ['VirtualService/reviews: spec.hosts']],
  ['duplicate hosts', (d) => void (d.vs.spec.hosts = ['reviews', 'reviews.default.svc.cluster.local']), ['VirtualService/reviews: spec.hosts[1]']],
  [
    'a fault percentage above 100',
    (d) => void (d.vs.spec.http[0].fault.abort.percentage.value = 150),
    ['VirtualService/reviews: spec.http[0].fault.abort.percentage.value'],
  ],
  ['a fault without percentage', (d) => void delete d.vs.spec.http[0].fault.delay.percentage, ['VirtualService/reviews: spec.http[0].fault.delay.percentage']],
  [
    'an abort status out of range',
    (d) => void (d.vs.spec.http[0].fault.abort.httpStatus = 700),
    ['VirtualService/reviews: spec.http[0].fault.abort.httpStatus'],
  ],
  [
    'a gRPC abort',
    (d) => void (d.vs.spec.http[0].fault.abort = { grpcStatus: 'UNAVAILABLE', percentage: { value: 1 } }),
    ['VirtualService/reviews: spec.http[0].fault.abort.grpcStatus', 'VirtualService/reviews: spec.http[0].fault.abort.httpStatus'],
  ],
  ['the deprecated delay percent', (d) => void (d.vs.spec.http[0].fault.delay.percent = 5), ['VirtualService/reviews: spec.http[0].fault.delay.percent']],
  ['negative retry attempts', (d) => void (d.vs.spec.http[0].retries.attempts = -1), ['VirtualService/reviews: spec.http[0].retries.attempts']],
  ['retry settings with zero attempts', (d) => void (d.vs.spec.http[0].retries.attempts = 0), ['VirtualService/reviews: spec.http[0].retries.attempts']],
  ['an unknown retryOn condition', (d) => void (d.vs.spec.http[0].retries.retryOn = '5xx,bogus'), ['VirtualService/reviews: spec.http[0].retries.retryOn']],
  ['a retryOn with spaces', (d) => void (d.vs.spec.http[0].retries.retryOn = '5xx, reset'), ['VirtualService/reviews: spec.http[0].retries.retryOn']],
  ['a gRPC retryOn condition', (d) => void (d.vs.spec.http[0].retries.retryOn = 'unavailable'), ['VirtualService/reviews: spec.http[0].retries.retryOn']],
  [
    'a regex with lookbehind',
    (d) => void (d.vs.spec.http[0].match[0].uri = { regex: '(?<=/api)/x' }),
    ['VirtualService/reviews: spec.http[0].match[0].uri.regex'],
  ],
  [
    'a regex with a backreference',
    (d) => void (d.vs.spec.http[0].match[0].headers['end-user'] = { regex: '(a)\\1' }),
    ['VirtualService/reviews: spec.http[0].match[0].headers[end-user].regex'],
  ],
  [
    'a regex that does not compile',
    (d) => void (d.vs.spec.http[0].match[0].uri = { regex: '/api/(' }),
    ['VirtualService/reviews: spec.http[0].match[0].uri.regex'],
  ],
  [
    'a regex over 1024 characters',
    (d) => void (d.vs.spec.http[0].match[0].uri = { regex: 'a'.repeat(1025) }),
    ['VirtualService/reviews: spec.http[0].match[0].uri.regex'],
  ],
  [
    'a string match with two kinds',
    (d) => void (d.vs.spec.http[0].match[0].uri = { exact: '/a', prefix: '/b' }),
    ['VirtualService/reviews: spec.http[0].match[0].uri'],
  ],
  [
    'an empty header prefix',
    (d) => void (d.vs.spec.http[0].match[0].headers['end-user'] = { prefix: '' }),
    ['VirtualService/reviews: spec.http[0].match[0].headers[end-user].prefix'],
  ],
  [
    'a header name that is not a token',
    (d) => void (d.vs.spec.http[0].match[0].headers['end user'] = { exact: 'x' }),
    ['VirtualService/reviews: spec.http[0].match[0].headers[end user]'],
  ],
  [
    'a header set on Host',
    (d) => void (d.vs.spec.http[0].headers = { request: { set: { Host: 'x' } } }),
    ['VirtualService/reviews: spec.http[0].headers.request.set[Host]'],
  ],
  [
    'an Envoy header substitution',
    (d) => void (d.vs.spec.http[0].headers = { request: { add: { 'x-host': '%HOSTNAME%' } } }),
    ['VirtualService/reviews: spec.http[0].headers.request.add[x-host]'],
  ],
  ['match on the source port', (d) => void (d.vs.spec.http[0].match[0].port = 80), ['VirtualService/reviews: spec.http[0].match[0].port']],
  [
    'consistentHash with two keys',
    (d) => void (d.dr.spec.trafficPolicy.loadBalancer = { consistentHash: { httpHeaderName: 'x-user', useSourceIp: true } }),
    ['DestinationRule/reviews: spec.trafficPolicy.loadBalancer.consistentHash'],
  ],
  [
    'consistentHash with no key',
    (d) => void (d.dr.spec.trafficPolicy.loadBalancer = { consistentHash: { minimumRingSize: 10 } }),
    ['DestinationRule/reviews: spec.trafficPolicy.loadBalancer.consistentHash'],
  ],
  [
    'simple and consistentHash together',
    (d) => void (d.dr.spec.trafficPolicy.loadBalancer.consistentHash = { useSourceIp: true }),
    ['DestinationRule/reviews: spec.trafficPolicy.loadBalancer'],
  ],
  [
    'an unknown load balancer',
    (d) => void (d.dr.spec.trafficPolicy.loadBalancer.simple = 'FASTEST'),
    ['DestinationRule/reviews: spec.trafficPolicy.loadBalancer.simple'],
  ],
  [
    'a negative connection limit',
    (d) => void (d.dr.spec.trafficPolicy.connectionPool.tcp.maxConnections = -1),
    ['DestinationRule/reviews: spec.trafficPolicy.connectionPool.tcp.maxConnections'],
  ],
  [
    'a fractional pending-request limit',
    (d) => void (d.dr.spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests = 2.5),
    ['DestinationRule/reviews: spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests'],
  ],
  ['an empty connection pool', (d) => void (d.dr.spec.trafficPolicy.connectionPool = {}), ['DestinationRule/reviews: spec.trafficPolicy.connectionPool']],
  [
    'maxEjectionPercent above 100',
    (d) => void (d.dr.spec.trafficPolicy.outlierDetection.maxEjectionPercent = 150),
    ['DestinationRule/reviews: spec.trafficPolicy.outlierDetection.maxEjectionPercent'],
  ],
  [
    'negative consecutive errors',
    (d) => void (d.dr.spec.trafficPolicy.outlierDetection.consecutive5xxErrors = -1),
    ['DestinationRule/reviews: spec.trafficPolicy.outlierDetection.consecutive5xxErrors'],
  ],
  [
    'a bad ejection time',
    (d) => void (d.dr.spec.trafficPolicy.outlierDetection.baseEjectionTime = '-30s'),
    ['DestinationRule/reviews: spec.trafficPolicy.outlierDetection.baseEjectionTime'],
  ],
  ['an unknown TLS mode', (d) => void (d.dr.spec.trafficPolicy.tls.mode = 'STRICT'), ['DestinationRule/reviews: spec.trafficPolicy.tls.mode']],
  ['MUTUAL TLS without certificates', (d) => void (d.dr.spec.trafficPolicy.tls.mode = 'MUTUAL'), ['DestinationRule/reviews: spec.trafficPolicy.tls.mode']],
  [
    'client certificates',
    (d) => void (d.dr.spec.trafficPolicy.tls.caCertificates = '/etc/ca.pem'),
    ['DestinationRule/reviews: spec.trafficPolicy.tls.caCertificates'],
  ],
  ['DestinationRule.exportTo', (d) => void (d.dr.spec.exportTo = ['*']), ['DestinationRule/reviews: spec.exportTo']],
  [
    'portLevelSettings',
    (d) => void (d.dr.spec.trafficPolicy.portLevelSettings = [{ port: { number: 80 } }]),
    ['DestinationRule/reviews: spec.trafficPolicy.portLevelSettings'],
  ],
  ['an empty traffic policy', (d) => void (d.dr.spec.subsets[0].trafficPolicy = {}), ['DestinationRule/reviews: spec.subsets[0].trafficPolicy']],
  [
    'duplicate subset names',
    (d) => void (d.dr.spec.subsets[1].name = 'v1'),
    [
      'DestinationRule/reviews: spec.subsets[1].name',
      'VirtualService/reviews: spec.http[0].route[0].destination.subset',
      'VirtualService/reviews: spec.http[1].route[1].destination.subset',
    ],
  ],
  ['a subset without labels', (d) => void delete d.dr.spec.subsets[0].labels, ['DestinationRule/reviews: spec.subsets[0].labels']],
  ['a subset with empty labels', (d) => void (d.dr.spec.subsets[0].labels = {}), ['DestinationRule/reviews: spec.subsets[0].labels']],
  [
    'a subset label Concord instances do not carry',
    (d) => void (d.dr.spec.subsets[0].labels = { track: 'stable' }),
    ['DestinationRule/reviews: spec.subsets[0].labels[track]'],
  ],
  [
    'a subset whose app is another service',
    (d) => void (d.dr.spec.subsets[0].labels.app = 'ratings'),
    ['DestinationRule/reviews: spec.subsets[0].labels[app]'],
  ],
  [
    'an invalid subset name',
    (d) => void (d.dr.spec.subsets[0].name = 'v_1'),
    ['DestinationRule/reviews: spec.subsets[0].name', 'VirtualService/reviews: spec.http[1].route[0].destination.subset'],
  ],
  ['two DestinationRules for one host', (d) => [d.vs, d.dr, { ...d.dr, metadata: { name: 'reviews-2' } }], ['DestinationRule/reviews-2: spec.host']],
  ['two VirtualServices for one host', (d) => [d.vs, d.dr, { ...d.vs, metadata: { name: 'reviews-2' } }], ['VirtualService/reviews-2: spec.hosts[0]']],
  ['a wrong apiVersion', (d) => void (d.vs.apiVersion = 'security.istio.io/v1'), ['VirtualService/reviews: apiVersion']],
  ['an unknown kind', (d) => [{ ...d.vs, kind: 'VirtualServise' }], ['document 1: kind']],
  ['an Istio kind Concord does not implement', (d) => [{ ...d.vs, kind: 'Gateway', apiVersion: 'networking.istio.io/v1' }], ['document 1: kind']],
  [
    'a sampling percentage over 100',
    (d) => void (d.tel.spec.tracing[0].randomSamplingPercentage = 100.5),
    ['Telemetry/order-tracing: spec.tracing[0].randomSamplingPercentage'],
  ],
  [
    'a negative sampling percentage',
    (d) => void (d.tel.spec.tracing[0].randomSamplingPercentage = -1),
    ['Telemetry/order-tracing: spec.tracing[0].randomSamplingPercentage'],
  ],
  [
    'a sampling percentage as a string',
    (d) => void (d.tel.spec.tracing[0].randomSamplingPercentage = '10%'),
    ['Telemetry/order-tracing: spec.tracing[0].randomSamplingPercentage'],
  ],
  ['two tracing entries', (d) => void d.tel.spec.tracing.push({ randomSamplingPercentage: 1 }), ['Telemetry/order-tracing: spec.tracing']],
  ['a named trace provider', (d) => void (d.tel.spec.tracing[0].providers = [{ name: 'zipkin' }]), ['Telemetry/order-tracing: spec.tracing[0].providers']],
  ['disableSpanReporting', (d) => void (d.tel.spec.tracing[0].disableSpanReporting = true), ['Telemetry/order-tracing: spec.tracing[0].disableSpanReporting']],
  ['a SERVER-only tracing match', (d) => void (d.tel.spec.tracing[0].match = { mode: 'SERVER' }), ['Telemetry/order-tracing: spec.tracing[0].match.mode']],
  ['Telemetry metrics overrides', (d) => void (d.tel.spec.metrics = [{ providers: [{ name: 'prometheus' }] }]), ['Telemetry/order-tracing: spec.metrics']],
  [
    'a Telemetry selecting an unknown app',
    (d) => void (d.tel.spec.selector.matchLabels.app = 'ordr'),
    ['Telemetry/order-tracing: spec.selector.matchLabels[app]'],
  ],
  ['a Telemetry in another namespace', (d) => void (d.tel.metadata.namespace = 'prod'), ['Telemetry/order-tracing: metadata.namespace']],
  ['a workload selector in istio-system', (d) => void (d.tel.metadata.namespace = 'istio-system'), ['Telemetry/order-tracing: spec.selector']],
  ['two Telemetry resources for one selector', (d) => [d.tel, { ...d.tel, metadata: { name: 'order-2' } }], ['Telemetry/order-2: spec.selector']],
  [
    'two mesh-wide Telemetry resources',
    (d) => [
      { ...d.tel, metadata: { name: 'mesh-a' }, spec: { tracing: [{ randomSamplingPercentage: 1 }] } },
      { ...d.tel, metadata: { name: 'mesh-b' }, spec: { tracing: [{ randomSamplingPercentage: 2 }] } },
    ],
    ['Telemetry/mesh-b: spec'],
  ],
  ['a name that is not DNS-1123', (d) => [{ ...d.dr, metadata: { name: 'Reviews_1' } }], ['document 1: metadata.name']],
  ['a missing name', (d) => [{ ...d.dr, metadata: {} }], ['document 1: metadata.name']],
  ['another namespace', (d) => void (d.vs.metadata.namespace = 'prod'), ['VirtualService/reviews: metadata.namespace']],
  ['server-set metadata', (d) => void (d.vs.metadata.resourceVersion = '12345'), ['VirtualService/reviews: metadata.resourceVersion']],
  ['the same resource twice', (d) => [d.vs, d.dr, d.dr], ['DestinationRule/reviews: spec.host']],
  ['an unknown mTLS mode', (d) => void (d.pa.spec.mtls.mode = 'ON'), ['PeerAuthentication/default: spec.mtls.mode']],
  ['portLevelMtls', (d) => void (d.pa.spec.portLevelMtls = { 8080: { mode: 'DISABLE' } }), ['PeerAuthentication/default: spec.portLevelMtls']],
  ['two mesh-wide PeerAuthentications', (d) => [d.pa, { ...d.pa, metadata: { name: 'mesh' } }], ['PeerAuthentication/mesh: spec']],
  [
    'a selector on an unknown app',
    (d) => void (d.ap.spec.selector.matchLabels.app = 'paymnet'),
    ['AuthorizationPolicy/payment: spec.selector.matchLabels[app]'],
  ],
  [
    'AuthorizationPolicy.when',
    (d) => void (d.ap.spec.rules[0].when = [{ key: 'request.headers[x]', values: ['y'] }]),
    ['AuthorizationPolicy/payment: spec.rules[0].when'],
  ],
  ['a CUSTOM action', (d) => void (d.ap.spec.action = 'CUSTOM'), ['AuthorizationPolicy/payment: spec.action']],
  ['an AUDIT action', (d) => void (d.ap.spec.action = 'AUDIT'), ['AuthorizationPolicy/payment: spec.action']],
  ['DENY without rules', (d) => void Object.assign(d.ap.spec, { action: 'DENY', rules: [] }), ['AuthorizationPolicy/payment: spec.rules']],
  [
    'namespaces in a source',
    (d) => void (d.ap.spec.rules[0].from[0].source.namespaces = ['default']),
    ['AuthorizationPolicy/payment: spec.rules[0].from[0].source.namespaces'],
  ],
  [
    'a principal in another namespace',
    (d) => void (d.ap.spec.rules[0].from[0].source.principals = ['cluster.local/ns/prod/sa/order']),
    ['AuthorizationPolicy/payment: spec.rules[0].from[0].source.principals[0]'],
  ],
  [
    'a principal of an unknown service',
    (d) => void (d.ap.spec.rules[0].from[0].source.principals = ['cluster.local/ns/default/sa/ordr']),
    ['AuthorizationPolicy/payment: spec.rules[0].from[0].source.principals[0]'],
  ],
  [
    'an empty principal',
    (d) => void (d.ap.spec.rules[0].from[0].source.principals = ['']),
    ['AuthorizationPolicy/payment: spec.rules[0].from[0].source.principals[0]'],
  ],
  [
    'a lower-case method',
    (d) => void (d.ap.spec.rules[0].to[0].operation.methods = ['post']),
    ['AuthorizationPolicy/payment: spec.rules[0].to[0].operation.methods[0]'],
  ],
  [
    'a path template',
    (d) => void (d.ap.spec.rules[0].to[0].operation.paths = ['/internal/{*}/x']),
    ['AuthorizationPolicy/payment: spec.rules[0].to[0].operation.paths[0]'],
  ],
  ['an empty from', (d) => void (d.ap.spec.rules[0].from = []), ['AuthorizationPolicy/payment: spec.rules[0].from']],
  ['an empty source', (d) => void (d.ap.spec.rules[0].from[0].source = {}), ['AuthorizationPolicy/payment: spec.rules[0].from[0].source']],
  [
    'ports in an operation',
    (d) => void (d.ap.spec.rules[0].to[0].operation.ports = ['8080']),
    ['AuthorizationPolicy/payment: spec.rules[0].to[0].operation.ports'],
  ],
];

describe('every kind of invalid input is refused with its field path', () => {
  test('the base documents are valid', () => {
    const d = base();
    ok(yamlOf([d.vs, d.dr, d.pa, d.ap, d.tel]));
  });
  for (const [name, mutate, expected] of INVALID) {
    test(name, () => {
      const d = base();
      const docs = mutate(d) ?? [d.vs, d.dr, d.pa, d.ap, d.tel];
      assert.deepEqual(paths(yamlOf(docs)).sort(), [...expected].sort());
    });
  }

  test('every problem of a resource is reported, not only the first', () => {
    const d = base();
    d.vs.spec.http[1].route[1].weight = -1;
    d.vs.spec.http[0].timeout = 'soon';
    d.vs.spec.http[0].route[0].destination.subset = 'v7';
    d.dr.spec.trafficPolicy.tls.mode = 'NOPE';
    assert.deepEqual(paths(yamlOf([d.vs, d.dr])).sort(), [
      'DestinationRule/reviews: spec.trafficPolicy.tls.mode',
      'VirtualService/reviews: spec.http[0].route[0].destination.subset',
      'VirtualService/reviews: spec.http[0].timeout',
      'VirtualService/reviews: spec.http[1].route[1].weight',
    ]);
  });

  test('messages say why, and "not supported" says so', () => {
    const d = base();
    d.vs.spec.gateways = ['ingress'];
    d.vs.spec.http[1].route[1].weight = -10;
    const issues = run(yamlOf([d.vs, d.dr])).issues;
    const msg = (field: string) => issues.find((i) => i.field === field)?.message ?? '';
    assert.match(msg('spec.gateways'), /not supported by Concord/);
    assert.match(msg('spec.http[1].route[1].weight'), /negative/);
  });

  test('an unknown field that differs only in case gets a suggestion', () => {
    const d = base();
    d.vs.spec.http[0].retries.pertrytimeout = '1s';
    const issue = run(yamlOf([d.vs, d.dr])).issues.find((i) => i.field === 'spec.http[0].retries.pertrytimeout');
    assert.match(issue?.message ?? '', /did you mean "perTryTimeout"/);
  });

  test('host checks use the known services; without a registry they are skipped', () => {
    const d = base();
    assert.deepEqual(
      run(yamlOf([d.vs, d.dr]), new Set(['ratings']))
        .issues.map((i) => i.field)
        .sort(),
      [
        'spec.host',
        'spec.hosts[0]',
        'spec.http[0].route[0].destination.host',
        'spec.http[1].route[0].destination.host',
        'spec.http[1].route[1].destination.host',
      ],
    );
  });
});

test('the examples shipped in deploy/mesh are valid together', () => {
  const dir = new URL('../../../../deploy/mesh/', import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 3);
  const c = ok(files.map((f) => readFileSync(new URL(f, dir), 'utf8')).join('\n---\n'));
  const canary = c.virtualServices.find((v) => v.hosts.includes('recommendation'))!;
  assert.deepEqual(
    canary.http.map((r) => r.route.map((d) => `${d.destination.subset}:${d.weight}`).join(',')),
    ['v2:100', 'v1:90,v2:10'],
  );
  assert.equal(c.peerAuthentications[0]!.mode, 'STRICT');
  assert.deepEqual(c.authorizationPolicies[0]!.rules[0]!.from, [{ principals: ['concord.local/ns/default/sa/order'] }]);
});

describe('regular expressions work on both RE2 and JavaScript', () => {
  test('ordinary patterns pass', () => {
    for (const p of ['/api/v[0-9]+/.*', '^/x$', '(?:a|b)', '[ab]+', '[^/]+\\.json', 'a{2,5}', '(?<id>[0-9]+)', '\\d+\\.\\d+'])
      assert.equal(regexProblem(p), null, p);
  });
  test('patterns the data plane would refuse at request time (catastrophic backtracking risks) are refused here too', () => {
    for (const p of ['(a+)+', '(?:a|b)+', '(a|aa)*']) assert.match(regexProblem(p) ?? '', /not allowed|backtrack|repetition/, p);
  });
  test('RE2-only or JavaScript-only constructs are refused', () => {
    for (const p of ['(?=a)', '(?!a)', '(?<=a)b', '(?<!a)b', '(a)\\1', '\\k<x>', '(?i)abc', '\\pL', 'a{1001}', '[]a]', '\\u0041', '*']) {
      assert.notEqual(regexProblem(p), null, p);
    }
  });
});

describe('YAML streams', () => {
  test('a syntax error is reported with line and column, by document', () => {
    const r = parseStream('a: 1\n---\nkind: VirtualService\nmetadata: {name: x\n', 'api');
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.errors[0]!.where, 'document 2');
    assert.equal(typeof r.errors[0]!.line, 'number');
    assert.ok(r.errors[0]!.line! >= 4, JSON.stringify(r.errors));
  });

  test('duplicate keys are an error (as strict Kubernetes decoding)', () => {
    const r = parseStream('kind: A\nkind: B\n', 'api');
    assert.equal(r.ok, false);
  });

  test('alias expansion is bounded', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 0; i < 10; i++) {
      const prev = String.fromCharCode(97 + i);
      const next = String.fromCharCode(98 + i);
      lines.push(`${next}: &${next} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const r = parseStream(lines.join('\n'), 'api');
    assert.equal(r.ok, false);
  });

  test('size, document count and depth are limited', () => {
    assert.equal(parseStream('x'.repeat(2000), 'api', { maxBytes: 1000 }).ok, false);
    assert.equal(parseStream(Array(6).fill('a: 1').join('\n---\n'), 'api', { maxDocuments: 5 }).ok, false);
    assert.equal(parseStream(`${'['.repeat(40)}${']'.repeat(40)}`, 'api').ok, false);
  });

  test('empty documents are skipped but keep their numbers; fields map back to lines', () => {
    const r = parseStream('---\n# nothing\n---\nkind: VirtualService\nspec:\n  http:\n  - route:\n    - weight: -1\n---\n', 'api');
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.equal(r.documents.length, 1);
    assert.equal(r.documents[0]!.number, 2);
    assert.deepEqual(r.documents[0]!.locate(['spec', 'http', 0, 'route', 0, 'weight']), { line: 8, col: 15 });
    assert.equal(r.documents[0]!.locate(['spec', 'http', 0, 'missing'])?.line, 7);
  });
});
