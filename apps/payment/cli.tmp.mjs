const kind = process.argv[2], N = +process.argv[3];
const fs = await import('node:fs');
const rssOf = () => { const s = fs.readFileSync('/proc/self/smaps_rollup','utf8'); const g = (k) => Math.round(+s.match(new RegExp('^'+k+':\\s+(\\d+)','m'))[1]/1024); return `rss ${g('Rss')} anon ${g('Anonymous')}`; };
const body = JSON.stringify({ orderId: '0190abcd-1234-7000-8000-000000000000', items: [{ productId: 'p1', quantity: 2 }] });
let send;
if (kind === 'undici') {
  const { Client } = await import('undici');
  const cs = Array.from({length: 8}, () => new Client('http://127.0.0.1:18999', { pipelining: 1, keepAliveTimeout: 60000 }));
  let i = 0;
  send = () => new Promise((res, rej) => { const c = cs[i++ % 8]; const chunks = []; c.dispatch({ path: '/x', method: 'POST', headers: ['content-type','application/json','traceparent','00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'], body }, { onRequestStart(){}, onResponseStart(){}, onResponseData(_c, d){ chunks.push(d); }, onResponseEnd(){ res(Buffer.concat(chunks)); }, onResponseError(_c, e){ rej(e); } }); });
} else {
  const http = await import('node:http');
  const agents = Array.from({length: 8}, () => new http.Agent({ keepAlive: true, maxSockets: 1, keepAliveMsecs: 60000 }));
  let i = 0;
  send = () => new Promise((res, rej) => { const r = http.request({ host: '127.0.0.1', port: 18999, path: '/x', method: 'POST', agent: agents[i++ % 8], headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } }, (resp) => { const chunks = []; resp.on('data', d => chunks.push(d)); resp.on('end', () => res(Buffer.concat(chunks))); resp.on('error', rej); }); r.on('error', rej); r.end(body); });
}
const c0 = process.cpuUsage(); const t0 = performance.now();
let done = 0;
await Promise.all(Array.from({length: 8}, async () => { while (done < N) { done++; await send(); } }));
const c1 = process.cpuUsage(c0); const ms = performance.now() - t0;
globalThis.gc(); await new Promise(r => setTimeout(r, 100));
console.log(kind.padEnd(7), `${N} req ${(N/ms*1000).toFixed(0)}/s cpu ${((c1.user+c1.system)/N).toFixed(1)} us/req`, rssOf(), 'heap', (process.memoryUsage().heapUsed/1048576).toFixed(1));
process.exit(0);
