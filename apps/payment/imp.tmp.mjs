await import(process.argv[2]);
globalThis.gc(); globalThis.gc();
await new Promise(r => setTimeout(r, 200));
const fs = await import('node:fs');
const s = fs.readFileSync('/proc/self/smaps_rollup','utf8');
const g = (k) => Math.round(+s.match(new RegExp('^'+k+':\\s+(\\d+)','m'))[1]/1024);
console.log(process.argv[2].padEnd(32), 'rss', g('Rss'), 'anon', g('Anonymous'), 'file', g('Rss')-g('Anonymous'), 'heap', (process.memoryUsage().heapUsed/1048576).toFixed(1));
