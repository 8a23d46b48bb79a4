const kind = process.argv[2];
if (kind === 'fetch') { const r = await fetch('http://127.0.0.1:18999/x', { method: 'POST', body: '{}' }); await r.text(); }
else if (kind === 'lite') { const { Agent, request } = (await import('./lite.tmp.cjs')).default; const a = new Agent(); const r = await request.call(a, { origin: 'http://127.0.0.1:18999', path: '/x', method: 'POST', body: '{}' }); await r.body.text(); }
else if (kind === 'http') { const http = await import('node:http'); await new Promise(res => http.request({ host: '127.0.0.1', port: 18999, path: '/x', method: 'POST' }, r => { r.resume(); r.on('end', res); }).end('{}')); }
globalThis.gc(); globalThis.gc();
await new Promise(r => setTimeout(r, 300));
const fs = await import('node:fs');
const s = fs.readFileSync('/proc/self/smaps_rollup','utf8');
const g = (k) => Math.round(+s.match(new RegExp('^'+k+':\\s+(\\d+)','m'))[1]/1024);
console.log(kind.padEnd(8), 'rss', g('Rss'), 'anon', g('Anonymous'), 'file', g('Rss')-g('Anonymous'), 'heap', (process.memoryUsage().heapUsed/1048576).toFixed(1));
process.exit(0);
