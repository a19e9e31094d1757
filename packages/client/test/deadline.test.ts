/**
 * Regression: deadlines made with AbortSignal.any([AbortSignal.timeout(ms), signal]) can
 * silently never fire on Node 20: the garbage collector takes the timeout signal inside the
 * composite and its timer goes with it (nodejs/node#57736). Found when a webhook test whose
 * receiver hung waited 30 s for a 200 ms timeout under load; reproduced with a fetch to a server
 * that never answers while gc() runs every 20 ms: no abort after 5 s. Pop3Client.connect had
 * the same construction for its connect deadline. deadline() keeps its timer's target alive.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createServer, type Socket } from 'node:net';
import { Pop3Client } from '../src/client.ts';
import { deadline } from '../src/deadline.ts';
import { Pop3TimeoutError } from '../src/errors.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('deadline', () => {
  it('aborts with a TimeoutError when the time is up, even after a garbage collection', async () => {
    const { signal } = deadline(100);
    const aborted = once(signal, 'abort');
    // The deadline's timer is unref'd by design; this one keeps the test's event loop alive.
    const keepAlive = setTimeout(() => {}, 10_000);
    for (let i = 0; i < 3; i++) gc();
    await aborted;
    clearTimeout(keepAlive);
    assert.equal((signal.reason as Error).name, 'TimeoutError');
  });

  it('aborts with the reason of the signal it follows', async () => {
    const controller = new AbortController();
    const limit = deadline(60_000, controller.signal);
    controller.abort(new Error('caller gave up'));
    assert.equal(limit.signal.aborted, true);
    assert.equal((limit.signal.reason as Error).message, 'caller gave up');
    limit.clear();
  });

  it('is aborted at once when the signal it follows already is', () => {
    assert.equal(deadline(60_000, AbortSignal.abort('early')).signal.reason, 'early');
  });

  it('never fires once cleared, and lets go of the signal it follows', async () => {
    const controller = new AbortController();
    const limit = deadline(20, controller.signal);
    limit.clear();
    await new Promise((resolve) => setTimeout(resolve, 60));
    controller.abort();
    assert.equal(limit.signal.aborted, false);
  });

  it('ends a connect to a server that never greets, on time, while the garbage collector runs', async () => {
    const sockets: Socket[] = [];
    const server = createServer((socket) => sockets.push(socket)).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const collector = setInterval(gc, 20);
    try {
      const { port } = server.address() as { port: number };
      const started = Date.now();
      await assert.rejects(Pop3Client.connect({ host: '127.0.0.1', port, tls: 'none', connectTimeout: 200, timeout: 60_000 }), Pop3TimeoutError);
      assert.ok(Date.now() - started < 5_000, 'the 200 ms deadline fired');
    } finally {
      clearInterval(collector);
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });
});
