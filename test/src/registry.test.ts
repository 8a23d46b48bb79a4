/**
 * The control plane's registry against the unmodified npm `consul` client, over real sockets.
 */
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { RegistryClient, createLogger } from '@concord/platform';
import Consul from 'consul';
import { type System, http, pollUntil, startSystem } from './harness.js';

let sys: System;
let consul: Consul;
let target: Server;
let targetStatus = 200;
let targetPort = 0;

before(async () => {
  sys = await startSystem({ name: 'registry', topology: 'services: []' });
  const u = new URL(sys.controlUrl);
  consul = new Consul({ host: u.hostname, port: Number(u.port) });
  target = createServer((_req, res) => {
    res.statusCode = targetStatus;
    res.end(`status ${targetStatus}`);
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  targetPort = (target.address() as { port: number }).port;
});

after(async () => {
  target?.close();
  await sys?.stop();
});

async function passingIds(service: string): Promise<string[]> {
  const entries = (await consul.health.service({ service, passing: true })) as Array<{ Service: { ID: string } }>;
  return entries.map((e) => e.Service.ID);
}

describe('Consul client compatibility', () => {
  test('registers with an HTTP check, is found passing, leaves passing when the check fails, deregisters', async () => {
    targetStatus = 200;
    await consul.agent.service.register({
      name: 'web',
      id: 'web-1',
      address: '127.0.0.1',
      port: targetPort,
      tags: ['v1'],
      meta: { version: 'v1' },
      check: { http: `http://127.0.0.1:${targetPort}/health`, interval: '200ms', timeout: '200ms' },
    } as never);
    await pollUntil('web-1 passing', async () => (await passingIds('web')).includes('web-1'), 5000);

    const entries = (await consul.health.service({ service: 'web', passing: true })) as Array<Record<string, any>>;
    const e = entries[0]!;
    assert.equal(e.Node.Node, 'concord');
    assert.equal(e.Service.Service, 'web');
    assert.equal(e.Service.Port, targetPort);
    assert.deepEqual(e.Service.Tags, ['v1']);
    assert.equal(e.Service.Meta.version, 'v1');
    const check = e.Checks.find((c: { CheckID: string }) => c.CheckID === 'service:web-1');
    assert.equal(check.Status, 'passing');
    assert.equal(check.ServiceID, 'web-1');

    targetStatus = 500;
    await pollUntil('web-1 no longer passing', async () => !(await passingIds('web')).includes('web-1'), 2000);
    const all = (await consul.health.service({ service: 'web' })) as Array<Record<string, any>>;
    assert.equal(all[0]!.Checks.find((c: { CheckID: string }) => c.CheckID === 'service:web-1').Status, 'critical');

    const services = (await consul.catalog.service.list()) as Record<string, string[]>;
    assert.deepEqual(services.web, ['v1']);

    await consul.agent.service.deregister('web-1');
    assert.deepEqual(await consul.health.service({ service: 'web' }), []);
    targetStatus = 200;
  });

  test('a 429 from the check target makes the check warning (not passing)', async () => {
    targetStatus = 429;
    await consul.agent.service.register({ name: 'busy', id: 'busy-1', port: targetPort, check: { http: `http://127.0.0.1:${targetPort}/h`, interval: '200ms' } } as never);
    await pollUntil('warning', async () => {
      const all = (await consul.health.service({ service: 'busy' })) as Array<Record<string, any>>;
      return all[0]?.Checks.some((c: { Status: string }) => c.Status === 'warning');
    });
    assert.deepEqual(await passingIds('busy'), []);
    await consul.agent.service.deregister('busy-1');
    targetStatus = 200;
  });

  test('a blocking query returns within 1 s of a change, with X-Consul-Index', async () => {
    const first = await http(`${sys.controlUrl}/v1/health/service/blocky`);
    const index = Number(first.headers.get('x-consul-index'));
    assert.ok(index > 0);
    const t0 = Date.now();
    const pending = http(`${sys.controlUrl}/v1/health/service/blocky?index=${index}&wait=30s`);
    await new Promise((r) => setTimeout(r, 300)); // the query must actually be blocking when the change happens
    const changedAt = Date.now();
    await consul.agent.service.register({ name: 'blocky', id: 'blocky-1', port: 1, ttl: '30s' } as never);
    const res = await pending;
    const returnedAt = Date.now();
    assert.ok(returnedAt - changedAt < 1000, `returned ${returnedAt - changedAt} ms after the change`);
    assert.ok(returnedAt - t0 >= 250, 'the query blocked until the change');
    assert.ok(Number(res.headers.get('x-consul-index')) > index);
    assert.equal((res.body as unknown[]).length, 1);
    await consul.agent.service.deregister('blocky-1');
  });

  test('a blocking query without a change returns after its wait', async () => {
    const first = await http(`${sys.controlUrl}/v1/health/service/quiet`);
    const index = first.headers.get('x-consul-index');
    const t0 = Date.now();
    const res = await http(`${sys.controlUrl}/v1/health/service/quiet?index=${index}&wait=300ms`);
    const took = Date.now() - t0;
    assert.equal(res.status, 200);
    assert.ok(took >= 290 && took < 2000, `took ${took} ms`);
  });

  test('the consul watch helper sees registrations', async () => {
    const watch = consul.watch({ method: consul.health.service, options: { service: 'watched', passing: true } as never });
    const seen: number[] = [];
    watch.on('change', (data: unknown[]) => seen.push(data.length));
    watch.on('error', () => {});
    try {
      await pollUntil('first answer', () => seen.length > 0);
      await consul.agent.service.register({ name: 'watched', id: 'watched-1', port: 1, check: { ttl: '30s', status: 'passing' } } as never);
      await pollUntil('watch saw the instance', () => seen.at(-1) === 1, 3000);
    } finally {
      watch.end();
      await consul.agent.service.deregister('watched-1');
    }
  });
});

describe('TTL checks and reaping', () => {
  test('check/pass|warn|fail move a TTL check; an expired TTL turns critical', async () => {
    await consul.agent.service.register({ name: 'ttl', id: 'ttl-1', port: 1, check: { ttl: '400ms' } } as never);
    assert.deepEqual(await passingIds('ttl'), [], 'a new TTL check starts critical');
    await consul.agent.check.pass('service:ttl-1');
    assert.deepEqual(await passingIds('ttl'), ['ttl-1']);
    await consul.agent.check.warn('service:ttl-1');
    assert.deepEqual(await passingIds('ttl'), []);
    await consul.agent.check.pass({ id: 'service:ttl-1', note: 'ok again' } as never);
    assert.deepEqual(await passingIds('ttl'), ['ttl-1']);
    await pollUntil('TTL expiry', async () => (await passingIds('ttl')).length === 0, 3000);
    await consul.agent.check.fail('service:ttl-1');
    await consul.agent.service.deregister('ttl-1');
  });

  test('an instance critical longer than DeregisterCriticalServiceAfter is reaped', async () => {
    await consul.agent.service.register({
      name: 'doomed',
      id: 'doomed-1',
      port: 1,
      check: { ttl: '10s', deregistercriticalserviceafter: '500ms' },
    } as never);
    const t0 = Date.now();
    await pollUntil('reaped', async () => ((await consul.health.service({ service: 'doomed' })) as unknown[]).length === 0, 5000);
    assert.ok(Date.now() - t0 >= 400, 'not reaped before its time');
  });

  test('an unreachable check target makes the check critical, and the control plane keeps serving', async () => {
    await consul.agent.service.register({ name: 'ghost', id: 'ghost-1', port: 1, check: { http: 'http://127.0.0.1:1/health', interval: '200ms', timeout: '200ms' } } as never);
    await pollUntil('critical with output', async () => {
      const all = (await consul.health.service({ service: 'ghost' })) as Array<Record<string, any>>;
      const c = all[0]?.Checks.find((x: { CheckID: string }) => x.CheckID === 'service:ghost-1');
      return c?.Status === 'critical' && /ECONNREFUSED/.test(c.Output);
    });
    const live = await http(`${sys.controlUrl}/health/live`);
    assert.equal(live.status, 200);
    await consul.agent.service.deregister('ghost-1');
  });
});

describe('bad input', () => {
  const register = (body: unknown) => http(`${sys.controlUrl}/v1/agent/service/register`, { method: 'PUT', json: body });

  test('malformed registrations answer 400 problem+json naming the field', async () => {
    const cases: Array<[unknown, string]> = [
      [{ Port: 80 }, '/body/Name'],
      [{ Name: 'a', Port: 99999 }, '/body/Port'],
      [{ Name: 'a', Check: { HTTP: 'http://x/h', Interval: '10x' } }, '/body/Check/Interval'],
      [{ Name: 'a', Tags: 'v1' }, '/body/Tags'],
      [{ Name: ['a'] }, '/body/Name'],
    ];
    for (const [body, path] of cases) {
      const r = await register(body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.ok(r.body.errors.some((e: { path: string }) => e.path === path), `${JSON.stringify(r.body)} names ${path}`);
    }
  });

  test('a body that is not JSON answers 400 and writes nothing', async () => {
    const r = await http(`${sys.controlUrl}/v1/agent/service/register`, { method: 'PUT', body: '{"Name": "x",', headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 400);
    assert.equal(r.body.status, 400);
    assert.deepEqual(await consul.health.service({ service: 'x' }), []);
  });

  test('an unknown service answers [] ; unknown check and service ids 404', async () => {
    assert.deepEqual((await http(`${sys.controlUrl}/v1/health/service/nope`)).body, []);
    assert.equal((await http(`${sys.controlUrl}/v1/agent/check/pass/nope`, { method: 'PUT' })).status, 404);
    assert.equal((await http(`${sys.controlUrl}/v1/agent/service/deregister/nope`, { method: 'PUT' })).status, 404);
  });

  test('bad blocking parameters answer 400; wait above 10 minutes is accepted and clamped', async () => {
    assert.equal((await http(`${sys.controlUrl}/v1/health/service/x?index=abc`)).status, 400);
    assert.equal((await http(`${sys.controlUrl}/v1/health/service/x?wait=forever`)).status, 400);
    // A clamped wait still blocks; a change ends it at once.
    const idx = (await http(`${sys.controlUrl}/v1/health/service/clamp`)).headers.get('x-consul-index');
    const pending = http(`${sys.controlUrl}/v1/health/service/clamp?index=${idx}&wait=9999m`);
    await new Promise((r) => setTimeout(r, 100));
    await consul.agent.service.register({ name: 'clamp', id: 'clamp-1', port: 1, ttl: '30s' } as never);
    assert.equal((await pending).status, 200);
    await consul.agent.service.deregister('clamp-1');
  });
});

describe('self-registration', () => {
  test('an instance whose entry holds an older address (a registry restored from an older file) registers again at once', async () => {
    const client = new RegistryClient({ controlUrl: sys.controlUrl, log: createLogger({ service: 'reg-test', instance: 'reg-test-1', version: 'v1' }, 'silent') });
    try {
      await client.registerSelf({ ID: 'reborn-1', Name: 'reborn', Address: '127.0.0.1', Port: targetPort, Check: { HTTP: `http://127.0.0.1:${targetPort}/`, Interval: '1s' } });
      await pollUntil('registered', async () => (await passingIds('reborn')).includes('reborn-1'), 5000);
      // What a control plane restored from an older file holds: the same id at its previous port.
      await consul.agent.service.register({ name: 'reborn', id: 'reborn-1', address: '127.0.0.1', port: 1, check: { http: 'http://127.0.0.1:1/', interval: '1s' } } as never);
      const portOf = async () => ((await consul.health.service({ service: 'reborn' })) as Array<{ Service: { Port: number } }>)[0]?.Service.Port;
      await pollUntil('registered again at its own port', async () => (await portOf()) === targetPort, 5000);
    } finally {
      await client.deregisterSelf().catch(() => {});
      client.close();
    }
  });
});
