// Preloaded into a memdb server by bench/cluster.ts (`node --expose-gc -r bench/heap-probe.js
// dist/main.js`, spawned with an IPC channel): on the message 'heap' it collects garbage (full
// GCs until the heap stops shrinking, 5 at most) and answers with process.memoryUsage(). Plain
// JavaScript so that nothing (ts-node) is loaded into the heap it measures; it adds nothing to
// the server but this listener.
'use strict';

process.on('message', (message) => {
  if (message !== 'heap' || typeof global.gc !== 'function') return;
  let used = Infinity;
  for (let i = 0; i < 5 && process.memoryUsage().heapUsed < used; i++) {
    used = process.memoryUsage().heapUsed;
    global.gc();
  }
  process.send({ heap: process.memoryUsage() });
});
// The channel must not keep the server alive once it has shut down.
process.channel?.unref();
