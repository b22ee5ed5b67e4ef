// Node: JSON, Map/Set, crypto hashing, promises and timers, a worker thread, a child process,
// and an exit code set at the end.
const crypto = require('crypto');
const { execFileSync } = require('child_process');
const { Worker } = require('worker_threads');

const items = Array.from({ length: 50000 }, (_, i) => ({ id: i, tag: `t${(i * 31) % 97}` }));
const byTag = new Map();
for (const it of items) byTag.set(it.tag, (byTag.get(it.tag) || 0) + 1);
console.log('tags', byTag.size, 'json bytes', JSON.stringify(items).length);
console.log('sha256', crypto.createHash('sha256').update(JSON.stringify(items)).digest('hex'));
console.log('child:', execFileSync('/bin/echo', ['from echo']).toString().trim());

const worker = new Worker(`
  const { parentPort } = require('worker_threads');
  let s = 0n; for (let i = 0n; i < 100000n; i++) s += i * i;
  parentPort.postMessage(s.toString());`, { eval: true });
const fromWorker = new Promise((resolve) => worker.on('message', resolve));
const later = new Promise((resolve) => setTimeout(() => resolve('timer fired'), 50));
Promise.all([fromWorker, later]).then(([w, t]) => {
  console.log('worker:', w);
  console.log(t);
  console.error('to stderr');
  process.exitCode = 6;
});
